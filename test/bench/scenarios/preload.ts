/**
 * Scenario 5: preload effectiveness, modelled in virtual time (scenario 5b
 * measures it in real time with real ffmpeg). The manager runs
 * over core's in-memory services (as in `RallyCache.layerTest`) under
 * `TestClock`, with `TestExporter` export times set from the real export
 * durations measured in scenario 2, so a trace of a whole match takes
 * milliseconds and gives the same answer on every run.
 *
 * Three viewer traces (seeded):
 * - watcher: plays each rally in full, then moves to the next;
 * - skipper: watches 30% of each rally, then moves to the next;
 * - jumper: after 30-100% of a rally, moves to the next one 70% of the
 *   time, else jumps to a random rally.
 *
 * Three preload policies: rallycache's default (current high, next 2
 * normal, the rest low), none (only what is asked for, at high), and
 * "next only" (current high, the next one normal).
 *
 * Hit: `getClip` answered from the cache. Wait: virtual time from the
 * request to the clip (0 on a hit). The first navigation of a trace is
 * left out of both (nothing can be cached yet).
 */
import {
  CacheEvent,
  Cleanup,
  Config,
  MemoryCacheStore,
  MemoryFileSystem,
  Metrics,
  PreloadPolicy,
  RallyCache
} from "@rallycache/core"
import { TestExporter } from "@rallycache/core/testing"
import type { Domain } from "@rallycache/core"
import { Clock, Duration, Effect, Fiber, Layer, TestClock, TestContext } from "effect"
import type { BenchContext, ExportDurations, Scenario } from "../lib/context.js"
import { figure } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import type { RallySpan } from "../lib/fixture.js"
import { fullSpec, makeRallies } from "../lib/fixture.js"
import { log } from "../lib/log.js"
import { prng, quantile } from "../lib/stats.js"
import { measureMode, rallyNear } from "./export.js"

type Trace = "watcher" | "skipper" | "jumper"
type PolicyName = "rallycache" | "none" | "nextOnly"

interface Step {
  readonly index: number
  /** Seconds watched before the next navigation. */
  readonly watch: number
}

const traces: ReadonlyArray<Trace> = ["watcher", "skipper", "jumper"]
const policyNames: ReadonlyArray<PolicyName> = ["rallycache", "none", "nextOnly"]

export const makeTrace = (trace: Trace, rallies: ReadonlyArray<RallySpan>, seed: number): ReadonlyArray<Step> => {
  const length = (i: number) => rallies[i]!.end - rallies[i]!.start
  if (trace === "watcher") return rallies.map((_, i) => ({ index: i, watch: length(i) }))
  if (trace === "skipper") return rallies.map((_, i) => ({ index: i, watch: 0.3 * length(i) }))
  const rand = prng(seed)
  const steps: Array<Step> = []
  let i = 0
  for (let n = 0; n < rallies.length; n++) {
    steps.push({ index: i, watch: (0.3 + 0.7 * rand()) * length(i) })
    if (rand() < 0.7 && i + 1 < rallies.length) i = i + 1
    else {
      let j = Math.floor(rand() * (rallies.length - 1))
      if (j >= i) j++
      i = j
    }
  }
  return steps
}

const policies: Readonly<Record<PolicyName, Layer.Layer<PreloadPolicy.PreloadPolicy>>> = {
  rallycache: PreloadPolicy.layer,
  none: PreloadPolicy.layerFrom(({ current }) => [{ index: current, priority: "high" }]),
  nextOnly: PreloadPolicy.layerFrom(({ current, rallies }) =>
    current + 1 < rallies.length
      ? [{ index: current, priority: "high" }, { index: current + 1, priority: "normal" }]
      : [{ index: current, priority: "high" }]
  )
}

const sourcePath = "/videos/match.mp4"

/** The pieces of `RallyCache.layerTest`, with the preload policy under test. */
const virtualLayer = (
  policy: Layer.Layer<PreloadPolicy.PreloadPolicy>,
  durationSec: number,
  exportMs: (rally: Domain.Rally) => number
) => {
  const base = Layer.mergeAll(
    Config.CacheConfig.layer({ mode: "accurate", concurrency: 2 }),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer,
    policy,
    MemoryFileSystem.MemoryFileSystem.layer
  )
  const services = Layer.mergeAll(
    TestExporter.layer({
      sources: { [sourcePath]: { duration: durationSec, keyframeInterval: 2 } },
      exportTime: (rally) => Duration.millis(Math.max(1, Math.round(exportMs(rally)))),
      // Each progress report is a virtual-clock wake-up; two keep a trace fast.
      progressSteps: 2
    }),
    MemoryCacheStore.layer
  ).pipe(Layer.provideMerge(base))
  return RallyCache.layer.pipe(Layer.provideMerge(Cleanup.layer.pipe(Layer.provideMerge(services))))
}

interface Outcome {
  readonly hitRate: number
  readonly waitP50Ms: number
  readonly waitP99Ms: number
}

const simulate = (
  policy: PolicyName,
  steps: ReadonlyArray<Step>,
  rallies: ReadonlyArray<RallySpan>,
  durationSec: number,
  exportMs: (rally: Domain.Rally) => number
): Promise<Outcome> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const video = yield* cache.openVideo({ path: sourcePath, rallies, id: "match", mode: "accurate" })
      const id = video.source.id
      const viewer = yield* Effect.fork(Effect.gen(function*() {
        const waits: Array<number> = []
        let hits = 0
        for (let n = 0; n < steps.length; n++) {
          const step = steps[n]!
          yield* cache.navigate(id, step.index)
          const asked = yield* Clock.currentTimeMillis
          const clip = yield* cache.getClip(id, step.index)
          const wait = (yield* Clock.currentTimeMillis) - asked
          if (n > 0) {
            waits.push(clip.cached ? 0 : wait)
            if (clip.cached) hits++
          }
          yield* Effect.sleep(Duration.millis(Math.round(step.watch * 1000)))
        }
        return { waits, hits }
      }))
      // Let virtual time run until the viewer is done, a minute at a time.
      while (viewer.unsafePoll() === null) yield* TestClock.adjust("1 minute")
      const { hits, waits } = yield* Fiber.join(viewer)
      return {
        hitRate: waits.length === 0 ? Number.NaN : hits / waits.length,
        waitP50Ms: quantile(waits, 0.5),
        waitP99Ms: quantile(waits, 0.99)
      }
    }).pipe(
      Effect.provide(virtualLayer(policies[policy], durationSec, exportMs)),
      Effect.provide(TestContext.TestContext)
    )
  )

const exportKeys = (trace: Trace) => [
  { key: `preload.${trace}.hitRate`, unit: "" },
  { key: `preload.${trace}.none.hitRate`, unit: "" },
  { key: `preload.${trace}.nextOnly.hitRate`, unit: "" },
  { key: `preload.${trace}.waitP50Ms`, unit: "ms" },
  { key: `preload.${trace}.waitP99Ms`, unit: "ms" },
  { key: `preload.${trace}.none.waitP50Ms`, unit: "ms" },
  { key: `preload.${trace}.none.waitP99Ms`, unit: "ms" },
  { key: `preload.${trace}.nextOnly.waitP50Ms`, unit: "ms" },
  { key: `preload.${trace}.nextOnly.waitP99Ms`, unit: "ms" }
]

/** Scenario 2's figures, or (with `--only preload`) a short measurement of them. */
const exportDurations = async (context: BenchContext): Promise<ExportDurations> => {
  if (context.exportDurations !== undefined) return context.exportDurations
  log("preload: the export scenario did not run; measuring one accurate export")
  const fixture = await context.fixture()
  const accurate = await measureMode(context, "accurate", rallyNear(fixture.rallies, 6), 1)
  return {
    copyMs: Number.NaN,
    accurateMs: accurate.cacheMs,
    accurateMsPerClipSecond: accurate.cacheMs / accurate.rallySeconds,
    rallySeconds: accurate.rallySeconds,
    source: "measured by preload"
  }
}

export const preloadScenario: Scenario = {
  name: "preload",
  title: "5. Preload effectiveness, modelled in virtual time (watcher / skipper / jumper) vs none and next-only",
  expected: [{ key: "preload.exportMsPerClipSecond", unit: "ms" }, ...traces.flatMap(exportKeys)],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const durations = await exportDurations(context)
    // Always the full match: virtual time makes it cheap, even with --quick.
    const rallies = makeRallies(fullSpec)
    const exportMs = (rally: Domain.Rally) => durations.accurateMsPerClipSecond * (rally.end - rally.start)
    const figures: Array<Figure> = [
      figure({
        key: "preload.exportMsPerClipSecond",
        value: durations.accurateMsPerClipSecond,
        unit: "ms",
        note: `virtual export time per second of rally (accurate mode, ${durations.source}); virtual exports do not slow each other down, real ones share 2 cores`
      })
    ]
    for (const trace of traces) {
      const steps = makeTrace(trace, rallies, 7)
      const outcomes = {} as Record<PolicyName, Outcome>
      for (const policy of policyNames) {
        outcomes[policy] = await simulate(policy, steps, rallies, fullSpec.durationSec, exportMs)
      }
      log(`preload ${trace}: ${policyNames.map((p) => `${p} ${(outcomes[p].hitRate * 100).toFixed(0)}% hits, wait p50 ${outcomes[p].waitP50Ms.toFixed(0)} ms p99 ${outcomes[p].waitP99Ms.toFixed(0)} ms`).join("; ")}`)
      const ours = outcomes.rallycache
      const none = outcomes.none
      const next = outcomes.nextOnly
      figures.push(
        figure({
          key: `preload.${trace}.hitRate`,
          value: ours.hitRate,
          unit: "",
          baseline: next.hitRate,
          baselineLabel: "next only",
          goal: { text: ">= next only", test: (value) => value >= next.hitRate },
          note: `modelled: virtual time, ${steps.length} navigations, exports that do not slow each other down`
        }),
        figure({ key: `preload.${trace}.none.hitRate`, value: none.hitRate, unit: "" }),
        figure({ key: `preload.${trace}.nextOnly.hitRate`, value: next.hitRate, unit: "" }),
        figure({ key: `preload.${trace}.waitP50Ms`, value: ours.waitP50Ms, unit: "ms", baseline: none.waitP50Ms, baselineLabel: "none" }),
        figure({ key: `preload.${trace}.waitP99Ms`, value: ours.waitP99Ms, unit: "ms", baseline: none.waitP99Ms, baselineLabel: "none" }),
        figure({ key: `preload.${trace}.none.waitP50Ms`, value: none.waitP50Ms, unit: "ms" }),
        figure({ key: `preload.${trace}.none.waitP99Ms`, value: none.waitP99Ms, unit: "ms" }),
        figure({ key: `preload.${trace}.nextOnly.waitP50Ms`, value: next.waitP50Ms, unit: "ms", baseline: none.waitP50Ms, baselineLabel: "none" }),
        figure({ key: `preload.${trace}.nextOnly.waitP99Ms`, value: next.waitP99Ms, unit: "ms", baseline: none.waitP99Ms, baselineLabel: "none" })
      )
    }
    return figures
  }
}



