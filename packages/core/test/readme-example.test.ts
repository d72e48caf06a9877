// The examples of packages/core/README.md: their bodies verbatim (the imports
// are gathered here, and the README shows some tests without their
// `describe`). If one changes, change the other with it.
import { describe, expect, it } from "@effect/vitest"
import {
  CacheEvent,
  CacheKey,
  Cleanup,
  Config,
  Domain,
  Errors,
  ExportQueue,
  MemoryCacheStore,
  MemoryFileSystem,
  Metrics,
  PreloadPolicy,
  RallyCache
} from "@rallycache/core"
import { TestExporter } from "@rallycache/core/testing"
import { Effect, Fiber, Layer, TestClock } from "effect"

const match = "/videos/final.mp4"

describe("README", () => {
  it.effect("navigate, let virtual time pass, then a cache hit", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const video = yield* cache.openVideo({
        path: match,
        rallies: [{ start: 0, end: 12 }, { start: 20, end: 31 }, { start: 40, end: 52 }]
      })
      const id = video.source.id

      // Rally 0 is queued at high priority, 1 and 2 at normal; two exports run at once.
      yield* cache.navigate(id, 0)
      expect((yield* cache.status(id)).rallies.map((r) => r._tag)).toEqual(["Running", "Running", "Queued"])

      // Each export takes 3 virtual seconds: no real time passes.
      yield* TestClock.adjust("3 seconds")
      const clip = yield* cache.getClip(id, 0)
      expect(clip.cached).toBe(true)
      expect(clip.clipStart).toBe(0)

      // Rally 2 took the freed slot; 3 more seconds and every clip is ready.
      yield* TestClock.adjust("3 seconds")
      expect((yield* cache.status(id)).rallies.map((r) => r._tag)).toEqual(["Cached", "Cached", "Cached"])
      const { metrics } = yield* cache.stats
      expect(metrics.hits).toBe(1)
      expect(metrics.exports).toBe(3)
    }).pipe(
      Effect.provide(RallyCache.layerTest({ sources: { [match]: { duration: 60 } }, exportTime: "3 seconds" }))
    ))
})

// ---------------------------------------------------------------------------
// "Injecting failures" in the README.

describe("README: injecting failures", () => {
  it.effect("a transient failure is retried after a backoff", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const control = yield* TestExporter.Control
      const video = yield* cache.openVideo({ path: match, rallies: [{ start: 0, end: 12 }] })

      // The next export of rally 0 fails like a killed ffmpeg.
      yield* control.failNext(0, new Errors.ExportFailed({ reason: "signal", detail: "SIGKILL", transient: true }))
      yield* cache.navigate(video.source.id, 0)
      yield* TestClock.adjust("5 seconds") // the backoff (about 250 ms), then 3 s of export

      const clip = yield* cache.getClip(video.source.id, 0)
      expect(clip.cached).toBe(true)
      const { metrics } = yield* cache.stats
      expect(metrics.exportRetries).toBe(1)
      expect(metrics.exportFailures).toBe(0)
    }).pipe(
      Effect.provide(RallyCache.layerTest({ sources: { [match]: { duration: 60 } }, exportTime: "3 seconds" }))
    ))
})

// ---------------------------------------------------------------------------
// "Writing your own PreloadPolicy" in the README.

// The current rally, and the one before it for viewers who replay; nothing else.
const ReplayPolicy = PreloadPolicy.layerFrom(({ current }) => [
  { index: current, priority: "high" },
  { index: current - 1, priority: "normal" }
])

const base = Layer.mergeAll(
  Config.CacheConfig.layer({ concurrency: 1 }),
  CacheEvent.CacheEvents.layer(),
  Metrics.layer,
  MemoryFileSystem.MemoryFileSystem.layer,
  ReplayPolicy
)
const services = Layer.mergeAll(
  TestExporter.layer({ sources: { [match]: { duration: 60 } }, exportTime: "3 seconds" }),
  MemoryCacheStore.layer
).pipe(Layer.provideMerge(base))
const CacheWithReplayPolicy = RallyCache.layer.pipe(
  Layer.provideMerge(Cleanup.layer),
  Layer.provideMerge(services)
)

describe("README: a PreloadPolicy of your own", () => {
  it.effect("rallies the policy leaves out are not exported; queued work for them is cancelled", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const video = yield* cache.openVideo({
        path: match,
        rallies: [{ start: 0, end: 12 }, { start: 20, end: 31 }, { start: 40, end: 52 }]
      })
      const id = video.source.id
      const states = Effect.map(cache.status(id), (s) => s.rallies.map((r) => r._tag))

      yield* cache.navigate(id, 2) // 2 high (running), 1 normal (queued)
      expect(yield* states).toEqual(["Idle", "Queued", "Running"])

      yield* cache.navigate(id, 0) // 0 high; 1 is no longer wanted: its queued job is cancelled
      expect(yield* states).toEqual(["Queued", "Idle", "Running"])

      yield* TestClock.adjust("6 seconds")
      expect(yield* states).toEqual(["Cached", "Idle", "Cached"])
    }).pipe(Effect.provide(CacheWithReplayPolicy)))
})

// ---------------------------------------------------------------------------
// "ExportQueue on its own" in the README.

const keyOf = (n: number) =>
  CacheKey.make({ fingerprint: "queue-demo", start: n, end: n + 1, mode: "copy", settingsVersion: "v1" })

describe("README: ExportQueue on its own", () => {
  it.effect("strict priority, preemption, dedup and cancel", () =>
    Effect.scoped(Effect.gen(function*() {
      const done: Array<number> = []
      const queue = yield* ExportQueue.make<number, Errors.ExportFailed>({ concurrency: 1 })
      const job = (n: number, priority: Domain.Priority) => ({
        key: keyOf(n),
        videoId: Domain.VideoId.make("queue-demo"),
        rallyIndex: n,
        priority,
        run: () => Effect.sleep("1 second").pipe(Effect.as(n), Effect.tap(() => done.push(n)))
      })

      const a = yield* queue.submit(job(1, "low")) // takes the only slot
      yield* queue.submit(job(2, "low")) // waits
      const c = yield* queue.submit(job(3, "normal")) // waits, ahead of every low job
      const again = yield* queue.submit(job(3, "high")) // same key: joins job 3 and raises it to high,
      // which preempts job 1 (the slot runs low work): 1 goes back to the front of the low queue
      yield* queue.cancel(keyOf(2)) // dropped; its waiters fail with ExportCancelled

      yield* TestClock.adjust("3 seconds")
      expect(done).toEqual([3, 1])
      expect(yield* c).toBe(3)
      expect(yield* again).toBe(3)
      expect(yield* a).toBe(1)
      const status = yield* queue.status
      expect([status.completed, status.cancelled]).toEqual([2, 1])
    })))
})

describe("README: corrupting a clip", () => {
  it.effect("a truncated clip is caught by the next request and exported again", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const files = yield* MemoryFileSystem.MemoryFileSystem
      const video = yield* cache.openVideo({ path: match, rallies: [{ start: 0, end: 12 }] })
      const id = video.source.id
      yield* cache.navigate(id, 0)
      yield* TestClock.adjust("3 seconds")
      const first = yield* cache.getClip(id, 0)

      yield* files.truncate(first.path) // what a crash in the middle of a copy leaves
      const again = yield* Effect.fork(cache.getClip(id, 0)) // a miss now: it waits for a new export
      yield* Effect.yieldNow()
      yield* TestClock.adjust("3 seconds")
      const clip = yield* Fiber.join(again)
      expect(clip.cached).toBe(false)
      expect(clip.sizeBytes).toBe(first.sizeBytes)
      expect((yield* cache.stats).metrics.evictions.invalid).toBe(1)
    }).pipe(
      Effect.provide(RallyCache.layerTest({ sources: { [match]: { duration: 60 } }, exportTime: "3 seconds" }))
    ))
})
