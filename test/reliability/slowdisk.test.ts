/**
 * A slow disk: every file operation of the in-memory file system (the
 * store's stats on the hit path, the exporter's writes and renames, the
 * store's checks at reserve and commit) costs `latency` of virtual time.
 * The navigation scenario of the engine's acceptance test (30 rallies of
 * 10-25 s watched in full, exports of 3 s, concurrency 2) is run for
 * several latencies and preload windows; the hit rates and waits are
 * reported as they are.
 *
 * Found: a hit waits for one stat whatever the latency, but `navigate`
 * costs one quick-validation lookup (a stat) per planned rally inside the
 * actor (the default policy plans every rally), so with latency L it takes
 * 30 x L here, and a miss's GetClip waits behind it in the mailbox.
 */
import { describe, expect, it } from "@effect/vitest"
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
import { Chunk, Context, Duration, Effect, Fiber, Layer, TestClock } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { binaries, faultyPlatformFs, long, mediaCheck, nodeStack, report, sampleVideo, slowFs, tempDir } from "./support.js"

const path = "/videos/match.mp4"
const rallies = (() => {
  const out: Array<{ start: number; end: number }> = []
  let t = 2
  for (let i = 0; i < 30; i++) {
    const length = 10 + ((i * 7) % 16)
    out.push({ start: t, end: t + length })
    t += length + 5
  }
  return out
})()

const slowFileSystem = (latency: Duration.Duration): Layer.Layer<MemoryFileSystem.MemoryFileSystem> =>
  Layer.effect(
    MemoryFileSystem.MemoryFileSystem,
    Effect.map(MemoryFileSystem.make, (fs): MemoryFileSystem.MemoryFileSystemShape => {
      if (Duration.toMillis(latency) === 0) return fs
      const slow = <A>(effect: Effect.Effect<A>) => Effect.zipRight(Effect.sleep(latency), effect)
      return {
        write: (p, f) => slow(fs.write(p, f)),
        stat: (p) => slow(fs.stat(p)),
        rename: (a, b) => slow(fs.rename(a, b)),
        remove: (p) => slow(fs.remove(p)),
        truncate: (p, n) => slow(fs.truncate(p, n)),
        corrupt: (p) => slow(fs.corrupt(p)),
        list: slow(fs.list)
      }
    })
  )

const stack = (latency: Duration.Duration, preloadAhead: number) => {
  const base = Layer.mergeAll(
    Config.CacheConfig.layer({ concurrency: 2, preloadAhead }),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer,
    PreloadPolicy.layer,
    slowFileSystem(latency)
  )
  const services = Layer.mergeAll(
    TestExporter.layer({ sources: { [path]: { duration: rallies.at(-1)!.end + 10 } }, exportTime: "3 seconds", progressSteps: 4 }),
    MemoryCacheStore.layer
  ).pipe(Layer.provideMerge(base))
  return RallyCache.layer.pipe(Layer.provideMerge(Cleanup.layer.pipe(Layer.provideMerge(services))))
}

/**
 * Advance the TestClock straight to its next pending sleep until `fiber` is
 * done (each wake-up costs real milliseconds of TestClock bookkeeping, so
 * small fixed steps would be slow).
 */
const awaitFiber = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function*() {
    while (fiber.unsafePoll() === null) {
      // First let every fiber run until it waits for time, so that only real waits advance the clock.
      yield* TestClock.adjust(0)
      if (fiber.unsafePoll() !== null) break
      const pending = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      const now = yield* TestClock.currentTimeMillis
      yield* TestClock.adjust(pending.length === 0 ? 10 : Math.max(1, Math.min(...pending) - now))
    }
    return fiber.unsafePoll()!
  })

/** The viewer of the acceptance test: navigate, get the clip, watch it in full, next. */
const watch = (latency: Duration.Duration, preloadAhead: number) =>
  Effect.scoped(Effect.gen(function*() {
    const cache = Context.get(yield* Layer.build(stack(latency, preloadAhead)), RallyCache.RallyCache)
    yield* awaitFiber(yield* Effect.fork(cache.openVideo({ path, rallies, id: "slow" })))
    let hits = 0
    const waits: Array<number> = []
    const navigations: Array<number> = []
    for (let i = 0; i < rallies.length; i++) {
      // The player asks for the clip and reports the position at the same time.
      const asked = yield* TestClock.currentTimeMillis
      const navigate = yield* Effect.fork(Effect.zipRight(cache.navigate("slow", i), TestClock.currentTimeMillis))
      const get = yield* Effect.fork(Effect.zip(cache.getClip("slow", i), TestClock.currentTimeMillis))
      const clip = yield* awaitFiber(get)
      if (clip._tag === "Failure") return yield* Effect.die(new Error(`rally ${i} failed`))
      const navigated = yield* awaitFiber(navigate)
      if (navigated._tag === "Failure") return yield* Effect.die(new Error(`navigate ${i} failed`))
      if (i > 0) {
        waits.push(clip.value[1] - asked)
        if (clip.value[0].cached) hits++
      }
      navigations.push(navigated.value - asked)
      yield* TestClock.adjust(`${Math.round((rallies[i]!.end - rallies[i]!.start) * 1000)} millis`)
    }
    const sorted = [...waits].sort((a, b) => a - b)
    const navSorted = [...navigations].sort((a, b) => a - b)
    return {
      hitRate: Math.round((hits / (rallies.length - 1)) * 1000) / 1000,
      p50WaitMs: sorted[Math.floor(sorted.length * 0.5)]!,
      p99WaitMs: sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!,
      navigateP50Ms: navSorted[Math.floor(navSorted.length * 0.5)]!
    }
  }))

describe("slow disk (virtual time)", () => {
  it.effect("navigation hit rate and waits with latency on every file operation, for preload windows of 2 and 4", () =>
    Effect.gen(function*() {
      const rows: Array<
        { latencyMs: number; window: number; hitRate: number; p50WaitMs: number; p99WaitMs: number; navigateP50Ms: number }
      > = []
      const cases: ReadonlyArray<readonly [number, number]> = [[0, 2], [200, 2], [2000, 4], [5000, 4]]
      for (const [latencyMs, window] of cases) {
        const result = yield* watch(Duration.millis(latencyMs), window)
        rows.push({ latencyMs, window, ...result })
      }
      report("slowdisk", { rows })
      const at = (latencyMs: number, window: number) => rows.find((r) => r.latencyMs === latencyMs && r.window === window)!
      // The engine's acceptance figure holds on a fast disk...
      expect(at(0, 2).hitRate).toBeGreaterThanOrEqual(0.95)
      // ...and with a slow one, the bigger window reaches it.
      expect(at(200, 2).hitRate).toBeGreaterThanOrEqual(0.95)
      expect(at(2000, 4).hitRate).toBeGreaterThanOrEqual(0.95)
      // A hit costs one stat, whatever the disk: it does not wait behind navigation's work in the actor.
      for (const row of rows) expect(row.p50WaitMs).toBeLessThanOrEqual(row.latencyMs)
    }), { timeout: 180_000 })
})

describe("slow disk (real ffmpeg, real folder)", () => {
  it.live("latency on every file operation of the store and the exporter: every rally still served, hit rate reported", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const video = yield* sampleVideo({ duration: 8 })
      const rows: Array<Record<string, number>> = []
      const cases: ReadonlyArray<readonly [number, number, number]> = long
        ? [[0, 0, 2], [3, 30, 2], [3, 30, 4], [10, 100, 4]]
        : [[3, 30, 2]]
      for (const [storeMs, exporterMs, window] of cases) {
        const dir = tempDir("slow")
        // Eight rallies of 1.2 s, watched at real speed.
        const real = Array.from({ length: 8 }, (_, i) => ({ start: 0.2 + i * 0.9, end: 0.2 + i * 0.9 + 1.2 }))
          .filter((r) => r.end < 7.9)
        const stack = nodeStack({
          cacheDir: NodePath.join(dir, "cache"),
          storeFs: slowFs(storeMs),
          exporterFs: faultyPlatformFs(undefined, exporterMs),
          config: { preloadAhead: window }
        })
        const result = yield* Effect.scoped(Effect.gen(function*() {
          const cache = Context.get(yield* Layer.build(stack), RallyCache.RallyCache)
          const id = (yield* cache.openVideo({ path: video, rallies: real, id: "slow-real" })).source.id
          let hits = 0
          const waits: Array<number> = []
          for (let i = 0; i < real.length; i++) {
            const asked = Date.now()
            yield* Effect.fork(cache.navigate(id, i))
            const clip = yield* cache.getClip(id, i)
            expect(mediaCheck(bins.ffmpeg.path, bins.ffprobe.path, clip.path).ok).toBe(true)
            if (i > 0) {
              waits.push(Date.now() - asked)
              if (clip.cached) hits++
            }
            yield* Effect.sleep(Math.round((real[i]!.end - real[i]!.start) * 1000))
          }
          const sorted = [...waits].sort((a, b) => a - b)
          return { hitRate: Math.round((hits / (real.length - 1)) * 1000) / 1000, p50WaitMs: sorted[Math.floor(sorted.length / 2)]!, maxWaitMs: sorted.at(-1)! }
        }))
        rows.push({ storeLatencyMs: storeMs, exporterLatencyMs: exporterMs, window, rallies: real.length, ...result })
        NodeFs.rmSync(dir, { recursive: true, force: true })
      }
      report("slowdisk.real", { rows })
    }), { timeout: 240_000 })
})
