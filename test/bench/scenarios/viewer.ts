/**
 * Scenario 10: what a viewer sees. The HTTP example serves a generated
 * 720p match; its player page runs in Debian's Chromium and Firefox ESR
 * (puppeteer-core, headless), and the time from a click to the first
 * painted frame of the new rally is read in the page (the frame probe of
 * the browser tests: `requestVideoFrameCallback`, or the first animation
 * frame in which the visible element holds a decoded frame of the rally).
 *
 * Three cases, each beside the baseline, the one-element page
 * (`?player=single`: one `<video>` whose `src` is swapped), in the same
 * run, the two pages taking turns:
 * - a neighbour the page prepared (every clip cached on the server);
 * - a rally cached on the server but not prepared in the page (a jump of
 *   five rallies through the timeline);
 * - a miss: a rally still queued on the server when clicked (fresh keys);
 *   its goal is the copy export's time, measured here, plus 150 ms.
 * The clip bytes the page downloads are counted by a proxy in front of the
 * server, from the click on "next" to one second after the jump that
 * follows it, per switch, against the mean size of the clips switched to.
 */
import { mkdirSync, rmSync } from "node:fs"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import { basename, dirname, join } from "node:path"
import { NodeContext } from "@effect/platform-node"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { type BrowserName, browserNames, firstPaintedFrame, type Launched, launch } from "../../../examples/http-server/test/browsers.js"
import { startServer, type TestServer } from "../../../examples/http-server/test/fixtures.js"
import type { BenchContext, Expected, Scenario } from "../lib/context.js"
import { atMost, figure } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import { fixturesDir, makeRallies, type RallySpan } from "../lib/fixture.js"
import { log } from "../lib/log.js"
import { median, nowMs, quantile } from "../lib/stats.js"

const cases = ["prepared", "notPrepared", "miss"] as const
type Case = (typeof cases)[number]

/** A 2-minute 1280x720 30 fps match, keyframe every 2 s, 12 rallies of 6-25 s. */
const matchOptions = { duration: 120, width: 1280, height: 720, fps: 30, gop: 2, audio: true, clock: false, preset: "veryfast" }
const spec = { durationSec: 120, rallyCount: 12, seed: 20261206 }

const match = (): Promise<string> => {
  mkdirSync(fixturesDir, { recursive: true })
  return Effect.runPromise(
    SampleVideo.cached({ ...matchOptions, dir: fixturesDir }).pipe(
      Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
    )
  )
}

/** A proxy in front of the server that counts the clip bytes sent to the browser. */
const countingProxy = async (target: string) => {
  const upstream = new URL(target)
  let clipBytes = 0
  const server = http.createServer((request, response) => {
    const forward = http.request(
      { hostname: upstream.hostname, port: upstream.port, path: request.url, method: request.method, headers: request.headers },
      (answer) => {
        response.writeHead(answer.statusCode ?? 502, answer.headers)
        const isClip = (request.url ?? "").includes("/clip")
        answer.on("data", (chunk: Buffer) => {
          if (isClip) clipBytes += chunk.length
        })
        answer.pipe(response)
      }
    )
    forward.on("error", () => response.destroy())
    request.pipe(forward)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    bytes: () => clipBytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

interface Painted {
  readonly frame: number
  readonly ms: number
  readonly via: string
}

type PageKind = "player" | "single"
type Page = Awaited<ReturnType<Launched["page"]>>

interface Samples {
  readonly ms: Record<PageKind, Record<Case, Array<number>>>
  /** Clip bytes downloaded and clip bytes switched to, per page, over the prepared and not-prepared switches. */
  readonly bytes: Record<PageKind, { downloaded: number; switched: number; switches: number }>
}

const emptySamples = (): Samples => ({
  ms: {
    player: { prepared: [], notPrepared: [], miss: [] },
    single: { prepared: [], notPrepared: [], miss: [] }
  },
  bytes: {
    player: { downloaded: 0, switched: 0, switches: 0 },
    single: { downloaded: 0, switched: 0, switches: 0 }
  }
})

const waitFor = (page: Page, condition: string, timeout = 60_000) =>
  page.waitForFunction(condition, { timeout, polling: 20 })

const shownReady = (rally: number) =>
  `(() => { const v = document.querySelector("#stage video.shown.ready"); return v !== null && v.dataset.rally === "${rally}" && v.readyState >= 2 })()`

const probe = (page: Page, rally: number, action: string): Promise<Painted> =>
  page.evaluate<[], () => Promise<Painted>>(firstPaintedFrame(rally, action))

/** Open the page of `player` kind at rally `at` (the server's current position), and wait for its picture. */
const openAt = async (
  launched: Launched,
  server: TestServer,
  base: string,
  id: string,
  kind: PageKind,
  at: number
): Promise<Page> => {
  // A fresh video (never navigated) opens at 0 by itself, and its exports start with the page.
  if (at !== 0) await server.post(`/api/videos/${id}/navigate`, { index: at })
  const page = await launched.page({ width: 1280, height: 800 })
  await page.goto(`${base}/?video=${encodeURIComponent(id)}${kind === "single" ? "&player=single" : ""}`)
  await waitFor(page, shownReady(at))
  // The player's play-through is on by default; a pause keeps the page where the bench put it.
  if (kind === "player") await page.evaluate(`document.getElementById("play").click()`)
  else await page.evaluate(`document.querySelector("#stage video").pause()`)
  return page
}

const action = (kind: PageKind, how: "next" | "jump", target: number): string =>
  how === "next"
    ? `() => document.getElementById("next").click()`
    : kind === "player"
    ? `() => document.querySelector('#timeline .marker[data-index="${target}"]').click()`
    : `() => { location.hash = "#${target}" }`

const measureBrowser = async (
  context: BenchContext,
  name: BrowserName,
  path: string,
  rallies: ReadonlyArray<RallySpan>,
  rounds: number
): Promise<{ samples: Samples; copyMs: number; clipSizes: ReadonlyArray<number> }> => {
  const root = join(context.tmpRoot, `viewer-${name}`)
  const server = await startServer({
    cacheDir: join(root, "cache"),
    server: { mediaRoot: dirname(path) }
  })
  const proxy = await countingProxy(server.url)
  const launched = await launch(name)
  const samples = emptySamples()
  try {
    const body = rallies.map(({ start, end }) => ({ start, end }))
    const { id } = await server.register({ path: basename(path), rallies: body })
    // Every clip cut and cached on the server first.
    const clipSizes: Array<number> = []
    for (let i = 0; i < rallies.length; i++) {
      clipSizes.push((await (await fetch(`${server.url}/api/videos/${id}/rallies/${i}/clip`)).arrayBuffer()).byteLength)
    }
    // The copy export's time: a miss served whole from Node, in copy mode, on fresh keys.
    const copy = await server.post("/api/videos", { path: basename(path), rallies: body, id: "viewer-copy", mode: "copy" })
    if (copy.status !== 201) throw new Error(`cannot register the copy-mode video: ${JSON.stringify(copy.body)}`)
    const copyTimes: Array<number> = []
    for (let i = 0; i < Math.min(6, rallies.length); i++) {
      const started = nowMs()
      await (await fetch(`${server.url}/api/videos/viewer-copy/rallies/${i}/clip`)).arrayBuffer()
      copyTimes.push(nowMs() - started)
    }
    const copyMs = median(copyTimes)

    for (let round = 0; round < rounds; round++) {
      const order: ReadonlyArray<PageKind> = round % 2 === 0 ? ["player", "single"] : ["single", "player"]
      const at = 1 + round % (rallies.length - 7)
      for (const kind of order) {
        const page = await openAt(launched, server, proxy.url, id, kind, at)
        try {
          if (kind === "player") await waitFor(page, `document.querySelector('#stage video.ready[data-rally="${at + 1}"]') !== null`)
          const before = proxy.bytes()
          const next = await probe(page, at + 1, action(kind, "next", at + 1))
          samples.ms[kind].prepared.push(next.ms)
          const far = at + 6
          const jump = await probe(page, far, action(kind, "jump", far))
          samples.ms[kind].notPrepared.push(jump.ms)
          // What the two switches made the page download (the new rallies, or the neighbours it prepares).
          await new Promise((resolve) => setTimeout(resolve, 1000))
          samples.bytes[kind].downloaded += proxy.bytes() - before
          samples.bytes[kind].switched += clipSizes[at + 1]! + clipSizes[far]!
          samples.bytes[kind].switches += 2
        } finally {
          await page.close()
        }
      }
      // A miss: fresh keys (the rallies shifted by a millisecond per round), the page at rally 0,
      // then a click on the last rally still queued on the server.
      for (const kind of order) {
        const shift = (round * 2 + (kind === "player" ? 1 : 2)) / 1000
        const missId = `viewer-miss-${round}-${kind}`
        const fresh = await server.post("/api/videos", {
          path: basename(path),
          id: missId,
          rallies: body.map(({ start, end }) => ({ start: start + shift, end: end + shift }))
        })
        if (fresh.status !== 201) throw new Error(`cannot register ${missId}: ${JSON.stringify(fresh.body)}`)
        const page = await openAt(launched, server, proxy.url, missId, kind, 0)
        try {
          const status = await server.json<{ rallies: Array<{ state: string }> }>(`/api/videos/${missId}/status`)
          const target = status.body.rallies.map((r, i) => ({ state: r.state, i })).reverse().find((r) => r.state !== "cached")
          if (target === undefined) continue
          const miss = await probe(page, target.i, action(kind, "jump", target.i))
          samples.ms[kind].miss.push(miss.ms)
        } finally {
          await page.close()
        }
      }
      log(`viewer ${name}: round ${round + 1}/${rounds}`)
    }
    return { samples, copyMs, clipSizes }
  } finally {
    await launched.close()
    await proxy.close()
    await server.dispose()
    rmSync(root, { recursive: true, force: true })
  }
}

const key = (browser: BrowserName, what: string) => `viewer.${browser}.${what}`

const expectedKeys: ReadonlyArray<Expected> = browserNames.flatMap((browser) => [
  ...cases.flatMap((c) => [
    { key: key(browser, `${c}P50Ms`), unit: "ms" },
    { key: key(browser, `${c}P99Ms`), unit: "ms" }
  ]),
  { key: key(browser, "bytesPerSwitch"), unit: "B" }
])

export const viewerScenario: Scenario = {
  name: "viewer",
  title: "10. The viewer: click to first painted frame in Chromium and Firefox ESR, preloading page vs one-element page",
  expected: expectedKeys,
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const path = await match()
    const rallies = makeRallies(spec)
    const rounds = context.quick ? 3 : 10
    const figures: Array<Figure> = []
    for (const browser of browserNames) {
      const { copyMs, samples } = await measureBrowser(context, browser, path, rallies, rounds)
      const goals: Record<Case, number> = { prepared: 20, notPrepared: 100, miss: Math.round(copyMs + 150) }
      for (const c of cases) {
        const ours = samples.ms.player[c]
        const base = samples.ms.single[c]
        log(
          `viewer ${browser} ${c}: p50 ${quantile(ours, 0.5).toFixed(0)} ms p99 ${quantile(ours, 0.99).toFixed(0)} ms (one element: p50 ${
            quantile(base, 0.5).toFixed(0)
          } ms, p99 ${quantile(base, 0.99).toFixed(0)} ms), ${ours.length}+${base.length} switches`
        )
        const note = c === "miss"
          ? `${ours.length} misses; goal: the copy export (${copyMs.toFixed(0)} ms, HTTP miss served whole) + 150 ms`
          : `${ours.length} switches per page; 1280x720 30 fps clips of 6-25 s, exact mode`
        figures.push(
          figure({
            key: key(browser, `${c}P50Ms`),
            value: quantile(ours, 0.5),
            unit: "ms",
            baseline: quantile(base, 0.5),
            baselineLabel: "one-element page"
          }),
          figure({
            key: key(browser, `${c}P99Ms`),
            value: quantile(ours, 0.99),
            unit: "ms",
            baseline: quantile(base, 0.99),
            baselineLabel: "one-element page",
            goal: atMost(goals[c], "ms"),
            note
          })
        )
      }
      const bytes = samples.bytes
      const perSwitch = bytes.player.downloaded / Math.max(1, bytes.player.switches)
      figures.push(
        figure({
          key: key(browser, "bytesPerSwitch"),
          value: perSwitch,
          unit: "B",
          baseline: bytes.player.switched / Math.max(1, bytes.player.switches),
          baselineLabel: "mean size of the clip switched to",
          note: `one-element page: ${(bytes.single.downloaded / Math.max(1, bytes.single.switches) / 1e6).toFixed(2)} MB per switch`
        })
      )
    }
    return figures
  }
}
