/**
 * Scenario 5b: preload in real time. Scenario 5's hit rates are modelled
 * (virtual time, exports that never slow each other down); here a viewer
 * watches a short generated match through `@rallycache/node`'s default
 * layer, with real ffmpeg exports sharing the machine, at the speed of
 * the clock: the watcher plays each rally in full, the skipper 30% of
 * each, both from the first rally to the last. Accurate mode, where an
 * export takes long enough for preload to matter.
 *
 * Hit: `getClip` answered from the cache. Wait: wall time from the request
 * to the clip (0 on a hit). The first navigation is left out of both.
 */
import { NodeContext } from "@effect/platform-node"
import { RallyCache } from "@rallycache/core"
import { FfmpegResolver, NodeRallyCache, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import type { BenchContext, Scenario } from "../lib/context.js"
import { figure } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import type { RallySpan } from "../lib/fixture.js"
import { fixturesDir } from "../lib/fixture.js"
import { log } from "../lib/log.js"
import { nowMs, quantile } from "../lib/stats.js"

type Trace = "watcher" | "skipper"
const traces: ReadonlyArray<Trace> = ["watcher", "skipper"]

/** A 40 s 640x360 match with eight rallies of 3-4.5 s. */
const matchOptions = { duration: 40, width: 640, height: 360, fps: 25, gop: 1, audio: true, clock: false, preset: "veryfast" }
const rallies: ReadonlyArray<RallySpan> = Array.from({ length: 8 }, (_, i) => {
  const start = 1 + i * 4.6
  return { start, end: Math.round((start + 3 + (i % 4) * 0.5) * 100) / 100 }
})

const shortMatch = (): Promise<string> => {
  mkdirSync(fixturesDir, { recursive: true })
  return Effect.runPromise(
    SampleVideo.cached({ ...matchOptions, dir: fixturesDir }).pipe(
      Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
    )
  )
}

interface Outcome {
  readonly hitRate: number
  readonly waitP50Ms: number
  readonly waitP99Ms: number
}

let runs = 0

const watch = (context: BenchContext, path: string, trace: Trace): Promise<Outcome> => {
  const cacheDir = join(context.tmpRoot, `preload-live-${trace}-${runs++}`)
  return Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const services = yield* Layer.build(NodeRallyCache.layer({ cacheDir, mode: "accurate" }))
        const cache = yield* Effect.provide(RallyCache.RallyCache, services)
        const video = yield* cache.openVideo({ path, rallies, id: `live-${trace}`, mode: "accurate" })
        const id = video.source.id
        const waits: Array<number> = []
        let hits = 0
        for (let i = 0; i < rallies.length; i++) {
          yield* cache.navigate(id, i)
          const asked = nowMs()
          const clip = yield* cache.getClip(id, i)
          const wait = nowMs() - asked
          if (i > 0) {
            waits.push(clip.cached ? 0 : wait)
            if (clip.cached) hits++
          }
          const length = rallies[i]!.end - rallies[i]!.start
          yield* Effect.sleep(Math.round((trace === "watcher" ? 1 : 0.3) * length * 1000))
        }
        return { hitRate: hits / waits.length, waitP50Ms: quantile(waits, 0.5), waitP99Ms: quantile(waits, 0.99) }
      })
    )
  ).finally(() => rmSync(cacheDir, { recursive: true, force: true }))
}

export const preloadLiveScenario: Scenario = {
  name: "preloadLive",
  title: "5b. Preload in real time: a watcher and a skipper on a short match, real ffmpeg, default layer",
  expected: traces.flatMap((trace) => [
    { key: `preload.live.${trace}.hitRate`, unit: "" },
    { key: `preload.live.${trace}.waitP50Ms`, unit: "ms" },
    { key: `preload.live.${trace}.waitP99Ms`, unit: "ms" }
  ]),
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const path = await shortMatch()
    const figures: Array<Figure> = []
    for (const trace of traces) {
      const outcome = await watch(context, path, trace)
      log(`preload live ${trace}: ${(outcome.hitRate * 100).toFixed(0)}% hits, wait p50 ${outcome.waitP50Ms.toFixed(0)} ms p99 ${outcome.waitP99Ms.toFixed(0)} ms`)
      figures.push(
        figure({
          key: `preload.live.${trace}.hitRate`,
          value: outcome.hitRate,
          unit: "",
          note: `measured in real time: ${rallies.length - 1} navigations over a 40 s 640x360 match, accurate mode`
        }),
        figure({ key: `preload.live.${trace}.waitP50Ms`, value: outcome.waitP50Ms, unit: "ms" }),
        figure({ key: `preload.live.${trace}.waitP99Ms`, value: outcome.waitP99Ms, unit: "ms" })
      )
    }
    return figures
  }
}
