/**
 * The player page in a real browser: Debian's Chromium driven by
 * playwright-core. Opens a generated video, waits for the next rally to be
 * cached, clicks "next", and checks that the new clip really plays and was
 * served from the cache; moves with the arrow keys; and reads back from a
 * canvas that an exact clip shows the rally's first frame at currentTime 0.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type BrowserContext, chromium, type Page } from "playwright-core"
import { cases, type CutCase, generateArgs } from "../../../packages/node/test/corpus/corpus.js"
import { sampleVideo, startServer, type TestServer, workspace } from "./fixtures.js"

const executablePath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium"
// The committed screenshot (linked from the README) is refreshed only on
// request, so a test run leaves the work tree clean.
const screenshotPath = process.env.UPDATE_SCREENSHOT === "1"
  ? path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "screenshot.png")
  : path.join(path.dirname(fileURLToPath(import.meta.url)), "artifacts", "screenshot.png")

interface VideoState {
  readonly currentSrc: string
  readonly readyState: number
  readonly currentTime: number
  readonly paused: boolean
  readonly error: string | null
}

// In-page code is written as strings: the test program has no DOM types.
const videoState = (page: Page): Promise<VideoState> =>
  page.evaluate<VideoState>(`(() => {
    const video = document.getElementById("video")
    return {
      currentSrc: video.currentSrc,
      readyState: video.readyState,
      currentTime: video.currentTime,
      paused: video.paused,
      error: video.error === null ? null : video.error.code + " " + video.error.message
    }
  })()`)

const playing = (page: Page, rally: number, options?: { readonly ready?: boolean }) =>
  page.waitForFunction(
    `(() => {
      const video = document.getElementById("video")
      return video.currentSrc.endsWith("/rallies/${rally}/clip")${options?.ready === true ? " && video.readyState >= 3" : ""}
    })()`,
    undefined,
    { timeout: 30_000 }
  )

describe("player page in Chromium", () => {
  let ws: ReturnType<typeof workspace>
  let server: TestServer
  let context: BrowserContext
  let userDataDir: string

  beforeAll(async () => {
    if (!fs.existsSync(executablePath)) {
      throw new Error(`no Chromium at ${executablePath} (apt-get install -y chromium, or set CHROMIUM_PATH)`)
    }
    ws = workspace(await sampleVideo({ duration: 12 }))
    // The corpus' H.264 source with its frame number in stripes (2 s GOP, B-frames).
    const striped = cases.find((c): c is CutCase => c._tag === "Cut" && c.file === "h264-aac.mp4")!
    const ffmpeg = await Effect.runPromise(
      Effect.map(FfmpegResolver.Ffmpeg, (f) => f.ffmpeg.path).pipe(
        Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
      )
    )
    ChildProcess.execFileSync(ffmpeg, [
      "-nostdin",
      "-y",
      "-v",
      "error",
      ...generateArgs(striped, path.join(ws.mediaRoot, "stripes.mp4"), ws.mediaRoot)
    ])
    server = await startServer({ cacheDir: ws.cacheDir, server: { mediaRoot: ws.mediaRoot } })
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "http-server-chromium-"))
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath,
      headless: true,
      viewport: { width: 1100, height: 640 },
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run"
      ]
    })
  })

  afterAll(async () => {
    await context?.close()
    await server?.dispose()
    ws?.cleanup()
    if (userDataDir !== undefined) fs.rmSync(userDataDir, { recursive: true, force: true })
  })

  it("plays the next rally from the cache after clicking next", async () => {
    const rallies = SampleVideo.sampleRallies(12, 4).map(({ start, end }) => ({ start, end }))
    const { id } = await server.register({ path: "match.mp4", rallies })
    const page = context.pages()[0] ?? (await context.newPage())
    const clipResponses: Array<{ url: string; status: number; cache: string | undefined }> = []
    page.on("response", (response) => {
      if (response.url().includes("/clip")) {
        clipResponses.push({ url: response.url(), status: response.status(), cache: response.headers()["x-cache"] })
      }
    })

    await page.goto(`${server.url}/?video=${encodeURIComponent(id)}`)
    // The browser can decode the clips at all (H.264 + AAC in mp4).
    expect(await page.evaluate(`document.createElement("video").canPlayType('video/mp4; codecs="avc1.64001E, mp4a.40.2"')`))
      .not.toBe("")

    // Opening the page plays rally 0 and preloads the next ones.
    await playing(page, 0)
    await page.locator("#rallies li[data-index=\"1\"][data-state=\"cached\"]").waitFor({ timeout: 60_000 })
    const before = await videoState(page)

    await page.click("#next")

    await playing(page, 1, { ready: true })
    const first = await videoState(page)
    expect(first.currentSrc).not.toBe(before.currentSrc)
    expect(first.error).toBeNull()
    await page.waitForFunction(`document.getElementById("video").currentTime > ${first.currentTime + 0.2}`, undefined, {
      timeout: 30_000
    })
    const later = await videoState(page)
    expect(later.currentTime).toBeGreaterThan(first.currentTime)
    expect(later.readyState).toBeGreaterThanOrEqual(3)
    expect(later.paused).toBe(false)

    // The server answered rally 1 from the cache, and counted it.
    const rally1 = clipResponses.filter((r) => r.url.endsWith("/rallies/1/clip"))
    expect(rally1.length).toBeGreaterThan(0)
    expect(rally1.every((r) => r.cache === "hit" && (r.status === 200 || r.status === 206))).toBe(true)
    const status = await server.json<{ stats: { hits: number } }>(`/api/videos/${id}/status`)
    expect(status.body.stats.hits).toBeGreaterThan(0)
    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    expect(metrics).toMatch(/^rallycache_http_clip_responses_total\{status="20[06]",cache="hit"[^}]*\} [1-9]/m)

    // The panel and the list reflect it.
    await page.waitForFunction(`document.getElementById("hit-rate").textContent !== "0%"`)
    expect(await page.locator("#rallies li[aria-current=\"true\"]").getAttribute("data-index")).toBe("1")
    await page.screenshot({ path: screenshotPath })
  })

  it("moves between rallies with the arrow keys", async () => {
    const rallies = SampleVideo.sampleRallies(12, 4).map(({ start, end }) => ({ start, end }))
    const { id } = await server.register({ path: "match.mp4", rallies })
    const page = await context.newPage()
    try {
      await page.goto(`${server.url}/?video=${encodeURIComponent(id)}`)
      await playing(page, 0)
      await page.keyboard.press("ArrowRight")
      await playing(page, 1)
      await page.keyboard.press("ArrowRight")
      await playing(page, 2)
      await page.keyboard.press("ArrowLeft")
      await playing(page, 1)
      expect(await page.locator("#rallies li[aria-current=\"true\"]").getAttribute("data-index")).toBe("1")
    } finally {
      await page.close()
    }
  })

  it("an exact clip shows the rally's first frame at currentTime 0 (canvas read-back)", async () => {
    // Rally from mid-frame 37 (1.5 s) of a 2 s GOP: the clip stores 1.5 s of
    // lead-in from the keyframe at 0 and its edit list starts at frame 38.
    const rally = { start: (37 + 0.5) / 25, end: (80 + 0.5) / 25 }
    const registered = await server.post("/api/videos", { path: "stripes.mp4", rallies: [rally], mode: "exact" })
    expect(registered.status).toBe(201)
    const id = (registered.body as { id: string }).id
    const page = await context.newPage()
    try {
      await page.goto(`${server.url}/?video=${encodeURIComponent(id)}`)
      await playing(page, 0, { ready: true })
      // In-page code as a string (no DOM types here): pause, seek to 0, draw, read the ten stripes.
      const shown = await page.evaluate<{ n: number; t: number; width: number }>(`(async () => {
        const video = document.getElementById("video")
        video.pause()
        if (video.currentTime !== 0) {
          await new Promise((resolve) => { video.addEventListener("seeked", resolve, { once: true }); video.currentTime = 0 })
        }
        const canvas = document.createElement("canvas")
        canvas.width = video.videoWidth
        canvas.height = video.videoHeight
        const ctx = canvas.getContext("2d")
        ctx.drawImage(video, 0, 0)
        const row = ctx.getImageData(0, Math.floor(canvas.height / 2), canvas.width, 1).data
        let n = 0
        for (let bit = 0; bit < 10; bit++) {
          const x = Math.floor(((16 * bit + 8) * canvas.width) / 160)
          if (row[x * 4] > 128) n |= 1 << bit
        }
        return { n, t: video.currentTime, width: canvas.width }
      })()`)
      expect(shown.width).toBe(160)
      expect(shown.t).toBe(0)
      expect(shown.n).toBe(38)
    } finally {
      await page.close()
    }
  })
})
