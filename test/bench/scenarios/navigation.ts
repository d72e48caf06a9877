/**
 * Scenario 1: navigation latency. `getClip` on a cache hit, 10,000 calls
 * with 10,000 entries in the index (the match's real clips plus synthetic
 * entries seeded in the store's journal format), against cutting the same
 * rally on demand with ffmpeg in copy mode (what a player does without a
 * cache). rallycache runs as users get it: `@rallycache/node`'s default
 * layer. The on-demand cut is what a player would run: a plain input seek
 * and stream copy of the rally.
 */
import { RallyCache } from "@rallycache/core"
import { NodeRallyCache } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { rmSync } from "node:fs"
import { join } from "node:path"
import type { BenchContext, Scenario } from "../lib/context.js"
import { atLeast, atMost, figure } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import { runRaw } from "../lib/ffmpeg.js"
import { log } from "../lib/log.js"
import { seedFolder } from "../lib/seed.js"
import { max, median, nowMs, quantile } from "../lib/stats.js"

/** A plain copy-mode cut, as a player without a cache would run it. */
const playerCut = (input: string, start: number, end: number, output: string): ReadonlyArray<string> => [
  "-nostdin",
  "-y",
  "-v",
  "error",
  "-ss",
  start.toFixed(3),
  "-i",
  input,
  "-t",
  (end - start).toFixed(3),
  "-map",
  "0:v:0",
  "-map",
  "0:a:0",
  "-c",
  "copy",
  "-f",
  "mp4",
  output
]

const indexEntries = 10_000
const calls = 10_000

export const navigationScenario: Scenario = {
  name: "navigation",
  title: "1. getClip on a hit (10k entries, 10k calls) vs a copy-mode cut on demand",
  expected: [
    { key: "navigation.hitP50Ms", unit: "ms" },
    { key: "navigation.hitP99Ms", unit: "ms" },
    { key: "navigation.hitMaxMs", unit: "ms" },
    { key: "navigation.onDemandP50Ms", unit: "ms" },
    { key: "navigation.speedupVsOnDemand", unit: "x" }
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const fixture = await context.fixture()
    const rallies = fixture.rallies.length
    const cacheDir = join(context.tmpRoot, "navigation")
    seedFolder(cacheDir, indexEntries - rallies)
    const videoId = "bench-navigation"
    const rawOut = join(context.tmpRoot, "navigation-on-demand.mp4")

    const result = await Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const services = yield* Layer.build(NodeRallyCache.layer({ cacheDir, mode: "copy" }))
          const cache = yield* Effect.provide(RallyCache.RallyCache, services)
          yield* cache.openVideo({ path: fixture.path, rallies: fixture.rallies, id: videoId, mode: "copy" })
          // Export every rally once.
          for (let i = 0; i < rallies; i++) yield* cache.getClip(videoId, i)
          const stats = yield* cache.stats
          const entries = stats.usage.entries
          if (entries < indexEntries * 0.9) {
            return yield* Effect.dieMessage(`the index holds ${entries} entries, expected ${indexEntries}`)
          }

          // Warm-up, then the timed calls, cycling through the rallies.
          for (let i = 0; i < 2_000; i++) yield* cache.getClip(videoId, i % rallies)
          const samples: Array<number> = new Array(calls)
          let misses = 0
          for (let i = 0; i < calls; i++) {
            const started = nowMs()
            const clip = yield* cache.getClip(videoId, i % rallies)
            samples[i] = nowMs() - started
            if (!clip.cached) misses++
          }
          if (misses > 0) return yield* Effect.dieMessage(`${misses} of ${calls} getClip calls missed`)
          return { samples, entries }
        })
      )
    )

    // On demand: what a player does without a cache, cycling through the rallies.
    const onDemand: Array<number> = []
    const cuts = context.quick ? 10 : 40
    for (let i = 0; i < cuts; i++) {
      const rally = fixture.rallies[i % rallies]!
      onDemand.push((await runRaw(context.binaries.ffmpeg, playerCut(fixture.path, rally.start, rally.end, rawOut))).ms)
      rmSync(rawOut, { force: true })
    }
    const hitP50 = quantile(result.samples, 0.5)
    const hitP99 = quantile(result.samples, 0.99)
    const hitMax = max(result.samples)
    const onDemandP50 = median(onDemand)
    log(`navigation: ${result.entries} entries; hit p50 ${(hitP50 * 1000).toFixed(1)} µs, p99 ${(hitP99 * 1000).toFixed(1)} µs, max ${hitMax.toFixed(2)} ms; on demand p50 ${onDemandP50.toFixed(1)} ms`)
    const onDemandLabel = "copy cut on demand p50"
    return [
      figure({ key: "navigation.hitP50Ms", value: hitP50, unit: "ms", baseline: onDemandP50, baselineLabel: onDemandLabel }),
      figure({
        key: "navigation.hitP99Ms",
        value: hitP99,
        unit: "ms",
        baseline: onDemandP50,
        baselineLabel: onDemandLabel,
        goal: atMost(0.2, "ms"),
        note: `${calls} calls, ${result.entries} entries in the index`
      }),
      figure({ key: "navigation.hitMaxMs", value: hitMax, unit: "ms", baseline: onDemandP50, baselineLabel: onDemandLabel }),
      figure({ key: "navigation.onDemandP50Ms", value: onDemandP50, unit: "ms", note: `${cuts} cuts: ffmpeg -ss <start> -i <match> -t <length> -c copy` }),
      figure({
        key: "navigation.speedupVsOnDemand",
        value: onDemandP50 / hitP99,
        unit: "x",
        ratio: onDemandP50 / hitP99,
        goal: atLeast(100, "x"),
        note: "on-demand cut p50 / hit p99"
      })
    ]
  }
}
