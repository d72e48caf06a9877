/**
 * The player page in a real browser: Debian's Chromium driven by
 * playwright-core. Opens a generated video, waits for the next rally to be
 * cached, clicks "next", and checks that the new clip really plays and was
 * served from the cache.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { SampleVideo } from "@rallycache/node"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { type BrowserContext, chromium, type Page } from "playwright-core"
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
    const page = context.pages()[0]!
    await page.keyboard.press("ArrowLeft")
    await playing(page, 0)
    await page.keyboard.press("ArrowRight")
    await page.keyboard.press("ArrowRight")
    await playing(page, 2)
    expect(await page.locator("#rallies li[aria-current=\"true\"]").getAttribute("data-index")).toBe("2")
  })
})
