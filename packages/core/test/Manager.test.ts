import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Deferred, Duration, Effect, Exit, Fiber, Layer, Option, Scope, Stream, TestClock } from "effect"
import type { CacheEvent } from "../src/CacheEvent.js"
import { CacheEvents } from "../src/CacheEvent.js"
import { CacheStore } from "../src/CacheStore.js"
import * as Cleanup from "../src/Cleanup.js"
import { CacheConfig } from "../src/Config.js"
import type * as Config from "../src/Config.js"
import type { Clip } from "../src/Domain.js"
import { ExportCancelled, ExportFailed, InvalidRally, RallyNotFound, SourceNotFound, UnknownVideo } from "../src/Errors.js"
import * as MemoryCacheStore from "../src/MemoryCacheStore.js"
import { MemoryFileSystem } from "../src/MemoryFileSystem.js"
import * as Metrics from "../src/Metrics.js"
import * as PreloadPolicy from "../src/PreloadPolicy.js"
import * as RallyCache from "../src/RallyCache.js"
import * as TestExporter from "../src/TestExporter.js"

const path = "/videos/match.mp4"

/** 30 rallies of 10 to 25 s (a fixed spread), 5 s apart. */
const rallies30 = (() => {
  const rallies: Array<{ start: number; end: number }> = []
  let t = 2
  for (let i = 0; i < 30; i++) {
    const length = 10 + ((i * 7) % 16)
    rallies.push({ start: t, end: t + length })
    t += length + 5
  }
  return rallies
})()
const videoDuration = rallies30.at(-1)!.end + 10

const baseOptions: RallyCache.TestOptions = {
  sources: { [path]: { duration: videoDuration } },
  exportTime: "3 seconds",
  // Each progress report is a TestClock wake-up; a few keep the suite fast.
  progressSteps: 4,
  concurrency: 2
}

/**
 * The pieces of `layerTest`, with a policy or metrics of the test's choosing.
 */
const customLayer = (
  options: Config.Options,
  overrides: {
    readonly policy?: Layer.Layer<PreloadPolicy.PreloadPolicy>
    readonly metrics?: Layer.Layer<Metrics.Metrics>
  }
) => {
  const base = Layer.mergeAll(
    CacheConfig.layer(options),
    CacheEvents.layer(),
    overrides.metrics ?? Metrics.layer,
    overrides.policy ?? PreloadPolicy.layer,
    MemoryFileSystem.layer
  )
  const services = Layer.mergeAll(
    TestExporter.layer({ sources: { [path]: { duration: videoDuration } }, exportTime: "3 seconds", progressSteps: 4 }),
    MemoryCacheStore.layer
  ).pipe(Layer.provideMerge(base))
  return RallyCache.layer.pipe(Layer.provideMerge(Cleanup.layer.pipe(Layer.provideMerge(services))))
}

/** Let forked fibers run until they block. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})

/** Advance virtual time in small steps until `fiber` is done. */
const awaitWithClock = <A, E>(
  fiber: Fiber.RuntimeFiber<A, E>,
  step: Duration.DurationInput = "100 millis",
  limit = 10_000
) =>
  Effect.gen(function*() {
    for (let i = 0; i < limit; i++) {
      yield* settle
      if (fiber.unsafePoll() !== null) break
      yield* TestClock.adjust(step)
    }
    return yield* Fiber.join(fiber)
  })

const open = Effect.gen(function*() {
  const cache = yield* RallyCache.RallyCache
  const video = yield* cache.openVideo({ path, rallies: rallies30, id: "match" })
  return { cache, id: video.source.id, video }
})

describe("Manager", () => {
  it.effect("navigation: a viewer who watches each rally in full finds the next one cached", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      let hits = 0
      let navigations = 0
      for (let i = 0; i < rallies30.length; i++) {
        yield* cache.navigate(id, i)
        const fiber = yield* Effect.fork(cache.getClip(id, i))
        const clip: Clip = yield* awaitWithClock(fiber)
        expect(clip.rallyIndex).toBe(i)
        if (i > 0) {
          navigations++
          if (clip.cached) hits++
        }
        // Watch the rally in full.
        const rally = rallies30[i]!
        yield* TestClock.adjust(`${Math.round((rally.end - rally.start) * 1000)} millis`)
      }
      const hitRate = hits / navigations
      console.log(
        `navigation hit rate: ${hits}/${navigations} = ${(hitRate * 100).toFixed(1)}% (30 rallies of 10-25 s, export 3 s virtual, concurrency 2)`
      )
      expect(hitRate).toBeGreaterThanOrEqual(0.95)
      const counts = yield* control.counts
      // Every rally exported exactly once, never more than 2 at a time.
      expect(counts.succeeded).toBe(30)
      expect(counts.started).toBe(30)
      expect(counts.maxRunning).toBeLessThanOrEqual(2)
      const stats = yield* cache.stats
      expect(stats.metrics.hits).toBe(hits)
      expect(stats.usage.entries).toBe(30)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))), 30_000)

  it.effect("concurrent getClip of the same missing clip share one export", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      const fiber = yield* Effect.fork(
        Effect.all(Array.from({ length: 5 }, () => cache.getClip(id, 7)), { concurrency: "unbounded" })
      )
      const clips = yield* awaitWithClock(fiber)
      expect(clips.map((c) => c.cached)).toEqual([false, false, false, false, false])
      expect(new Set(clips.map((c) => c.path)).size).toBe(1)
      const counts = yield* control.counts
      expect(counts.started).toBe(1)
      const again = yield* cache.getClip(id, 7)
      expect(again.cached).toBe(true)
      expect(again.path).toBe(clips[0]!.path)
      expect((yield* control.counts).started).toBe(1)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("a cache hit is served while the actor is blocked by a slow message and its mailbox is full", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const blocked = yield* Deferred.make<void>()
      // Metrics whose snapshot (read by the Stats message, inside the actor)
      // hangs until the gate opens.
      const slowMetrics = Layer.effect(
        Metrics.Metrics,
        Effect.map(Metrics.make(), (metrics) => ({
          ...metrics,
          snapshot: Effect.zipRight(
            Effect.zipRight(Deferred.succeed(blocked, undefined), Deferred.await(gate)),
            metrics.snapshot
          )
        }))
      )
      yield* Effect.gen(function*() {
        const { cache, id } = yield* open
        const first = yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 0)))
        expect(first.cached).toBe(false)

        const stats = yield* Effect.fork(cache.stats)
        yield* Deferred.await(blocked)
        // A miss needs the actor: it must wait...
        const miss = yield* Effect.fork(cache.getClip(id, 1))
        // The mailbox (capacity 1) is full now: this caller waits even to get in.
        const navigate = yield* Effect.fork(cache.navigate(id, 2))
        yield* settle
        yield* TestClock.adjust("1 minute")
        yield* settle
        expect(miss.unsafePoll()).toBeNull()
        expect(navigate.unsafePoll()).toBeNull()
        // ...while a hit does not.
        const hit = yield* cache.getClip(id, 0)
        expect(hit.cached).toBe(true)
        expect(hit.path).toBe(first.path)
        expect(stats.unsafePoll()).toBeNull()

        yield* Deferred.succeed(gate, undefined)
        const clip = yield* awaitWithClock(miss)
        expect(clip.rallyIndex).toBe(1)
        expect((yield* Fiber.join(stats)).videos).toBe(1)
        yield* Fiber.join(navigate)
      }).pipe(Effect.provide(customLayer({ concurrency: 2, mailboxCapacity: 1 }, { metrics: slowMetrics })))
    }))

  it.effect("a slow probe does not hold the actor", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      yield* control.addSource("/videos/slow.mp4", { duration: 100, probeTime: "10 minutes" })
      const opening = yield* Effect.fork(cache.openVideo({ path: "/videos/slow.mp4", rallies: [{ start: 0, end: 10 }] }))
      yield* settle
      const clip = yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 4)))
      expect(clip.rallyIndex).toBe(4)
      expect(opening.unsafePoll()).toBeNull()
      yield* cache.navigate(id, 5)
      expect(opening.unsafePoll()).toBeNull()
      yield* TestClock.adjust("10 minutes")
      const opened = yield* Fiber.join(opening)
      expect(opened.rallies.length).toBe(1)
      expect(opened.source.id.length).toBeGreaterThan(0)
      expect((yield* cache.stats).videos).toBe(2)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))), 30_000)

  it.effect("navigate cancels queued work that is no longer wanted", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      const status0 = yield* cache.status(id)
      const events = yield* Effect.fork(
        cache.events.pipe(
          Stream.filter((e): e is Extract<CacheEvent, { _tag: "JobCancelled" }> => e._tag === "JobCancelled"),
          Stream.take(2),
          Stream.runCollect
        )
      )
      yield* settle
      yield* cache.navigate(id, 0)
      yield* settle
      // concurrency 1: rally 0 runs, 1 and 2 wait.
      yield* cache.navigate(id, 10)
      const cancelled = Chunk.toReadonlyArray(yield* Fiber.join(events))
      expect(cancelled.map((e) => [e.rallyIndex, e.reason])).toEqual([[1, "cancelled"], [2, "cancelled"]])
      const stats = yield* cache.stats
      const keys = (i: number) => status0.rallies[i]!.key
      expect(stats.queue.queued.low).toEqual([])
      expect([...stats.queue.queued.high, ...stats.queue.running.map((r) => r.key)]).toContain(keys(10))
      yield* TestClock.adjust("1 minute")
      const exported = (yield* control.exports).filter((e) => e.outcome === "succeeded").map((e) => e.rallyIndex)
      expect(exported.sort((a, b) => a - b)).toEqual([0, 10, 11, 12])
      const status = yield* cache.status(id)
      expect(status.current).toBe(10)
      expect(status.rallies[1]?._tag).toBe("Idle")
      expect(status.rallies[11]?._tag).toBe("Cached")
    }).pipe(
      Effect.provide(customLayer({ concurrency: 1, preemption: false }, { policy: PreloadPolicy.layerWindow(2) }))
    ))

  it.effect("navigate re-ranks the queue: the new current rally and its window go first", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      yield* cache.navigate(id, 0)
      yield* settle
      let status = yield* cache.status(id)
      expect(status.rallies[0]?._tag).toBe("Running")
      expect(status.rallies[1]).toMatchObject({ _tag: "Queued", priority: "normal" })
      expect(status.rallies[5]).toMatchObject({ _tag: "Queued", priority: "low" })
      yield* cache.navigate(id, 20)
      status = yield* cache.status(id)
      expect(status.rallies[1]).toMatchObject({ _tag: "Queued", priority: "low" })
      expect(status.rallies[21]).toMatchObject({ _tag: "Queued", priority: "normal" })
      yield* TestClock.adjust("2 minutes")
      const order = (yield* control.exports).map((e) => e.rallyIndex)
      // 0 was already running; then the new position and its window.
      expect(order.slice(0, 4)).toEqual([0, 20, 21, 22])
    }).pipe(Effect.provide(RallyCache.layerTest({ ...baseOptions, concurrency: 1, preemption: false }))), 30_000)

  it.effect("invalid rallies, unknown sources and bad ids are rejected with typed errors", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const reversed = yield* Effect.flip(cache.openVideo({ path, rallies: [{ start: 0, end: 10 }, { start: 30, end: 20 }] }))
      expect(reversed).toBeInstanceOf(InvalidRally)
      expect(reversed).toMatchObject({ _tag: "InvalidRally", index: 1 })
      expect(reversed.message.split("\n").length).toBe(1)
      const past = yield* Effect.flip(cache.openVideo({ path, rallies: [{ start: videoDuration, end: videoDuration + 20 }] }))
      expect(past).toMatchObject({ _tag: "InvalidRally", index: 0 })
      const tooLong = yield* Effect.flip(cache.openVideo({ path, rallies: [{ start: 0, end: 700 }] }))
      expect(tooLong).toMatchObject({ _tag: "InvalidRally", index: 0 })
      const missing = yield* Effect.flip(cache.openVideo({ path: "/videos/none.mp4", rallies: [] }))
      expect(missing).toEqual(new SourceNotFound({ path: "/videos/none.mp4" }))
      const emptyId = yield* Effect.flip(cache.openVideo({ path, rallies: [], id: "" }))
      expect(emptyId._tag).toBe("InvalidInput")
      expect((yield* cache.stats).videos).toBe(0)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("unknown videos and rallies fail with UnknownVideo and RallyNotFound", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      expect(yield* Effect.flip(cache.getClip("nope", 0))).toEqual(new UnknownVideo({ videoId: "nope" }))
      expect(yield* Effect.flip(cache.navigate("nope", 0))).toEqual(new UnknownVideo({ videoId: "nope" }))
      expect(yield* Effect.flip(cache.status("nope"))).toEqual(new UnknownVideo({ videoId: "nope" }))
      expect(yield* Effect.flip(cache.getClip(id, 30))).toEqual(new RallyNotFound({ videoId: id, index: 30, count: 30 }))
      expect((yield* Effect.flip(cache.navigate(id, 1.5)))._tag).toBe("RallyNotFound")
      expect((yield* Effect.flip(cache.preload(id, { indexes: [0, -1] })))._tag).toBe("RallyNotFound")
      expect((yield* Effect.flip(cache.invalidate(id, 99)))._tag).toBe("RallyNotFound")
      yield* cache.close(id)
      expect(yield* Effect.flip(cache.getClip(id, 0))).toEqual(new UnknownVideo({ videoId: id }))
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("close cancels the video's queued work, lets running exports finish and forgets the video", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      yield* cache.preload(id)
      yield* settle
      let stats = yield* cache.stats
      expect(stats.queue.running.length).toBe(2)
      expect(stats.queue.queued.low.length).toBe(28)
      yield* cache.close(id)
      stats = yield* cache.stats
      expect(stats.queue.queued.low).toEqual([])
      expect(stats.videos).toBe(0)
      yield* TestClock.adjust("1 minute")
      expect((yield* control.counts).succeeded).toBe(2)
      expect(yield* Effect.flip(cache.status(id))).toEqual(new UnknownVideo({ videoId: id }))
      // Closing twice is harmless.
      yield* cache.close(id)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("a permanent failure fails getClip without a retry", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      const error = new ExportFailed({ reason: "exit", detail: "ffmpeg exited with code 1", transient: false })
      yield* control.failAlways(3, error)
      const exit = yield* Effect.exit(awaitWithClock(yield* Effect.fork(cache.getClip(id, 3))))
      expect(exit).toEqual(Exit.fail(error))
      yield* TestClock.adjust("10 minutes")
      expect((yield* control.counts).started).toBe(1)
      const status = yield* cache.status(id)
      expect(status.rallies[3]).toMatchObject({ _tag: "Failed" })
      const stats = yield* cache.stats
      expect(stats.metrics.exportFailures).toBe(1)
      expect(stats.metrics.exportRetries).toBe(0)
      // Asking again tries again (the failure may have been fixed since).
      yield* control.clearFailures
      const clip = yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 3)))
      expect(clip.cached).toBe(false)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("a transient failure is retried and the caller gets the clip", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      const error = new ExportFailed({ reason: "signal", detail: "killed by SIGKILL", transient: true })
      yield* control.failNext(3, error, { times: 2 })
      const clip = yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 3)))
      expect(clip.rallyIndex).toBe(3)
      const counts = yield* control.counts
      expect(counts.started).toBe(3)
      expect(counts.failed).toBe(2)
      const stats = yield* cache.stats
      expect(stats.metrics.exportRetries).toBe(2)
      expect(stats.metrics.exportFailures).toBe(0)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("a corrupt clip is dropped by the lookup and exported again on the next getClip", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      const fs = yield* MemoryFileSystem
      const first = yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 2)))
      expect((yield* cache.getClip(id, 2)).cached).toBe(true)
      yield* fs.truncate(first.path)
      const again = yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 2)))
      expect(again.cached).toBe(false)
      expect((yield* control.counts).started).toBe(2)
      const file = yield* fs.stat(again.path)
      expect(Option.map(file, (f) => f.sizeBytes)).toEqual(Option.some(again.sizeBytes))
      expect((yield* cache.getClip(id, 2)).cached).toBe(true)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("invalidate removes cached clips; they are exported again on demand", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const control = yield* TestExporter.Control
      yield* cache.preload(id, { indexes: [0, 1, 2] })
      yield* settle
      yield* TestClock.adjust("10 seconds")
      expect((yield* cache.status(id)).rallies.slice(0, 3).map((r) => r._tag)).toEqual(["Cached", "Cached", "Cached"])
      expect(yield* cache.invalidate(id, 1)).toBe(1)
      expect((yield* cache.status(id)).rallies.slice(0, 3).map((r) => r._tag)).toEqual(["Cached", "Idle", "Cached"])
      expect(yield* cache.invalidate(id)).toBe(2)
      const clip = yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 1)))
      expect(clip.cached).toBe(false)
      expect((yield* control.counts).started).toBe(4)
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("progress, start and ready events are published", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const collected = yield* Effect.fork(
        cache.events.pipe(Stream.takeUntil((e) => e._tag === "ClipReady"), Stream.runCollect)
      )
      yield* settle
      yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 6)))
      const tags = Chunk.toReadonlyArray(yield* Fiber.join(collected)).map((e) => e._tag)
      expect(tags[0]).toBe("JobQueued")
      expect(tags[1]).toBe("JobStarted")
      expect(tags.filter((t) => t === "JobProgress").length).toBe(4)
      expect(tags.at(-1)).toBe("ClipReady")
    }).pipe(Effect.provide(RallyCache.layerTest(baseOptions))))

  it.effect("closing the layer's scope leaves no export running and no partial file", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(RallyCache.layerTest(baseOptions), scope)
      const cache = Context.get(context, RallyCache.RallyCache)
      const control = Context.get(context, TestExporter.Control)
      const fs = Context.get(context, MemoryFileSystem)
      const video = yield* cache.openVideo({ path, rallies: rallies30 })
      yield* cache.navigate(video.source.id, 0)
      const waiter = yield* Effect.fork(cache.getClip(video.source.id, 5))
      yield* settle
      yield* TestClock.adjust("1 second")
      expect((yield* control.counts).running).toBe(2)
      expect((yield* fs.list).some(([p]) => p.endsWith(".part"))).toBe(true)
      yield* Scope.close(scope, Exit.void)
      expect((yield* control.counts).running).toBe(0)
      expect((yield* fs.list).some(([p]) => p.endsWith(".part"))).toBe(false)
      const exit = yield* Fiber.await(waiter)
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const failure = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        expect(failure === undefined || failure instanceof ExportCancelled).toBe(true)
      }
      // Time passing after shutdown starts nothing.
      yield* TestClock.adjust("10 minutes")
      expect((yield* control.counts).running).toBe(0)
      expect((yield* control.counts).started).toBe(2)
    }))

  it.effect("leaseClip keeps the clip from eviction while its scope is open", () =>
    Effect.gen(function*() {
      const { cache, id } = yield* open
      const store = yield* CacheStore
      yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 0)))
      yield* Effect.scoped(Effect.gen(function*() {
        const clip = yield* cache.leaseClip(id, 0)
        expect(clip.cached).toBe(true)
        yield* TestClock.adjust("2 hours")
        // Pinned entries are exempt from the age rule.
        expect(Option.isSome(yield* store.lookup(clip.key))).toBe(true)
      }))
      // Released: the expired clip is dropped and exported again.
      const clip = yield* awaitWithClock(yield* Effect.fork(cache.getClip(id, 0)))
      expect(clip.cached).toBe(false)
    }).pipe(Effect.provide(RallyCache.layerTest({ ...baseOptions, maxAge: "1 hour", cleanupInterval: "1 hour" }))))
})

