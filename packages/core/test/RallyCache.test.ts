import { describe, expect, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Option, Stream, TestClock } from "effect"
import type { CacheEvent } from "../src/CacheEvent.js"
import { CacheStore } from "../src/CacheStore.js"
import * as RallyCache from "../src/RallyCache.js"
import * as TestExporter from "../src/TestExporter.js"

const path = "/videos/match.mp4"
// 8 rallies of 10 s: each clip is 10-12 s of video, 2.5-3 MB at the test exporter's 250 kB/s.
const rallies = Array.from({ length: 8 }, (_, i) => ({ start: 1 + i * 15, end: 11 + i * 15 }))

const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})

/**
 * Advance virtual time in steps, letting every fiber settle after each: much
 * happens at the same virtual instant here (commits, cleanup, next starts),
 * and one big jump would let it interleave differently from run to run.
 */
const advance = (millis: number, step = 250) =>
  Effect.gen(function*() {
    for (let t = 0; t < millis; t += step) {
      yield* TestClock.adjust(Math.min(step, millis - t))
      yield* settle
    }
  })

describe("RallyCache", () => {
  it.effect("a commit over the byte limit cleans up at once, least recently used first, never the current rally", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const store = yield* CacheStore
      const evicted = yield* Effect.fork(
        cache.events.pipe(
          Stream.filter((e): e is Extract<CacheEvent, { _tag: "Evicted" }> => e._tag === "Evicted"),
          Stream.take(3),
          Stream.runCollect
        )
      )
      yield* settle
      const video = yield* cache.openVideo({ path, rallies, id: "m", mode: "copy" })
      const id = video.source.id
      // The viewer stays on rally 0 (pinned) while everything else is preloaded.
      yield* cache.navigate(id, 0)
      yield* settle
      // 8 exports of 3 s, 2 at a time: 12 s. The periodic cleanup is an hour away.
      yield* advance(13_000)
      const usage = yield* store.usage
      expect(usage.bytes).toBeLessThanOrEqual(10_000_000)
      const status = yield* cache.status(id)
      expect(status.rallies[0]?._tag).toBe("Cached")
      const events = Chunk.toReadonlyArray(yield* Fiber.join(evicted))
      expect(events.every((e) => e.reason === "size")).toBe(true)
      expect(events.map((e) => e.rallyIndex)).not.toContain(0)
      // The first clips exported after the pinned one are the least recently used.
      expect(events.map((e) => e.rallyIndex).slice(0, 2)).toEqual([1, 2])
    }).pipe(
      Effect.provide(
        RallyCache.layerTest({
          sources: { [path]: { duration: 200 } },
          exportTime: "3 seconds",
          maxBytes: 10_000_000,
          cleanupInterval: "1 hour",
          validationInterval: "1 day"
        })
      )
    ))

  it.effect("clips and ClipReady events carry times rounded to the microsecond, without float noise", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const ready = yield* Effect.fork(
        cache.events.pipe(
          Stream.filter((e): e is Extract<CacheEvent, { _tag: "ClipReady" }> => e._tag === "ClipReady"),
          Stream.take(1),
          Stream.runCollect
        )
      )
      yield* settle
      // A keyframe every 0.3 s: the keyframe before 1.0 is at 3 * 0.3 = 0.8999999999999999 in floats.
      const video = yield* cache.openVideo({ path: "/videos/gop.mp4", rallies: [{ start: 1, end: 2.2 }], mode: "copy" })
      const waiting = yield* Effect.fork(cache.getClip(video.source.id, 0))
      yield* advance(4_000)
      const clip = yield* Fiber.join(waiting)
      const [event] = Chunk.toReadonlyArray(yield* Fiber.join(ready))
      expect(clip.clipStart).toBe(0.9)
      expect(event?.clip.clipStart).toBe(0.9)
      expect(JSON.stringify(event?.clip)).toContain(`"clipStart":0.9,`)
    }).pipe(
      Effect.provide(
        RallyCache.layerTest({ sources: { "/videos/gop.mp4": { duration: 10, keyframeInterval: 0.3 } }, exportTime: "1 second" })
      )
    ))

  it.effect("a commit over the per-video limit cleans up at once", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const store = yield* CacheStore
      const video = yield* cache.openVideo({ path, rallies, id: "m" })
      yield* cache.preload(video.source.id)
      yield* settle
      yield* advance(13_000)
      const entries = yield* store.list
      expect(entries.length).toBeLessThanOrEqual(3)
      expect((yield* cache.stats).metrics.evictions["per-video"]).toBe(8 - entries.length)
    }).pipe(
      Effect.provide(
        RallyCache.layerTest({
          sources: { [path]: { duration: 200 } },
          exportTime: "3 seconds",
          maxEntriesPerVideo: 3,
          cleanupInterval: "1 hour",
          validationInterval: "1 day"
        })
      )
    ))

  it.effect("status follows a clip from queued to running (with progress) to cached", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const video = yield* cache.openVideo({ path, rallies, id: "m" })
      const id = video.source.id
      yield* cache.preload(id, { indexes: [0, 1, 2], priority: "normal" })
      yield* settle
      let status = yield* cache.status(id)
      expect(status.current).toBeNull()
      expect(status.rallies.slice(0, 4).map((r) => r._tag)).toEqual(["Running", "Running", "Queued", "Idle"])
      yield* TestClock.adjust("1500 millis")
      status = yield* cache.status(id)
      const running = status.rallies[0]
      expect(running?._tag === "Running" ? running.progress : -1).toBe(0.5)
      yield* TestClock.adjust("1500 millis")
      yield* settle
      status = yield* cache.status(id)
      expect(status.rallies.slice(0, 3).map((r) => r._tag)).toEqual(["Cached", "Cached", "Running"])
      const stats = yield* cache.stats
      expect(stats.queue.running.length).toBe(1)
      expect(stats.metrics.exports).toBe(2)
      expect(stats.usage.entries).toBe(2)
      expect(stats.videos).toBe(1)
    }).pipe(
      Effect.provide(
        RallyCache.layerTest({ sources: { [path]: { duration: 200 } }, exportTime: "3 seconds", progressSteps: 4 })
      )
    ))

  it.effect("reopening a video with new rallies replaces them; clips of unchanged rallies stay cached", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const control = yield* TestExporter.Control
      const first = yield* cache.openVideo({ path, rallies: rallies.slice(0, 2), id: "m" })
      const fiber = yield* Effect.fork(cache.getClip("m", 1))
      yield* settle
      yield* TestClock.adjust("3 seconds")
      const clip = yield* Fiber.join(fiber)
      const second = yield* cache.openVideo({ path, rallies: [rallies[5]!, rallies[1]!], id: "m" })
      expect(second.rallies.length).toBe(2)
      expect(second.source).toEqual(first.source)
      const again = yield* cache.getClip("m", 1)
      expect(again.cached).toBe(true)
      expect(again.key).toBe(clip.key)
      expect(Option.isNone(yield* Effect.option(cache.getClip("m", 2)))).toBe(true)
      expect((yield* control.counts).started).toBe(1)
    }).pipe(
      Effect.provide(RallyCache.layerTest({ sources: { [path]: { duration: 200 } }, exportTime: "3 seconds" }))
    ))

  it.effect("the default video id derives from the source fingerprint, never from the path", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const a = yield* cache.openVideo({ path, rallies })
      const b = yield* cache.openVideo({ path: "/other/copy.mp4", rallies })
      expect(a.source.id).toMatch(/^[0-9a-f]{32}$/)
      expect(a.source.id).toBe(b.source.id)
    }).pipe(
      Effect.provide(
        RallyCache.layerTest({
          sources: {
            [path]: { duration: 200, fingerprint: "same-file" },
            "/other/copy.mp4": { duration: 200, fingerprint: "same-file" }
          }
        })
      )
    ))
})
