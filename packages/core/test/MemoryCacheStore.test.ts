import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck as fc, Fiber, Layer, Option, Ref, Scope, Stream, TestClock } from "effect"
import type { CacheEvent } from "../src/CacheEvent.js"
import { CacheEvents } from "../src/CacheEvent.js"
import * as CacheKey from "../src/CacheKey.js"
import { CacheStore } from "../src/CacheStore.js"
import type { Reservation } from "../src/CacheStore.js"
import { CacheConfig } from "../src/Config.js"
import type { Options as ConfigOptions } from "../src/Config.js"
import type { VideoId } from "../src/Domain.js"
import * as MemoryCacheStore from "../src/MemoryCacheStore.js"
import { MemoryFileSystem } from "../src/MemoryFileSystem.js"
import * as Metrics from "../src/Metrics.js"

const testLayer = (options: ConfigOptions = {}) =>
  MemoryCacheStore.layerWithFileSystem.pipe(
    Layer.provideMerge(Layer.mergeAll(CacheConfig.layer(options), CacheEvents.layer(), Metrics.layer))
  )

const keyOf = (n: number) =>
  CacheKey.make({ fingerprint: "test-source", start: n, end: n + 1, mode: "copy", settingsVersion: "v1" })

const video = (id: string) => id as VideoId

/** Collects every event published from now on (while the test's scope is open). */
const recordEvents = Effect.gen(function*() {
  const events = yield* CacheEvents
  const seen = yield* Ref.make<ReadonlyArray<CacheEvent>>([])
  const stream = yield* events.subscribe
  yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Ref.update(seen, (all) => [...all, event])))
  yield* Effect.yieldNow()
  return Effect.zipRight(Effect.yieldNow(), Ref.get(seen))
})

/** Reserve `key`, put a clip of `sizeBytes` at its final path and commit it. */
const store = (key: ReturnType<typeof keyOf>, sizeBytes = 100, videoId = "v1", rallyIndex = 0) =>
  Effect.gen(function*() {
    const cache = yield* CacheStore
    const fs = yield* MemoryFileSystem
    const result = yield* cache.reserve(key)
    if (result._tag !== "Reserved") return result.entry
    yield* fs.write(result.reservation.finalPath, { sizeBytes })
    return yield* cache.commit(result.reservation, {
      videoId: video(videoId),
      rallyIndex,
      mode: "copy",
      clipStart: 0,
      clipEnd: 1,
      sizeBytes,
      priority: "normal"
    })
  })

const reserved = (key: ReturnType<typeof keyOf>) =>
  Effect.flatMap(CacheStore, (cache) => cache.reserve(key)).pipe(
    Effect.flatMap((r) => r._tag === "Reserved" ? Effect.succeed(r.reservation) : Effect.dieMessage("expected Reserved"))
  )

describe("MemoryCacheStore", () => {
  it.effect("commit names a clip after its container; remove deletes that file", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      const key = keyOf(1)
      const reservation = yield* reserved(key)
      expect(reservation.finalPath).toMatch(new RegExp(`/clips/${key}\\.mp4$`))
      yield* fs.write(reservation.finalPath, { sizeBytes: 50 })
      const entry = yield* cache.commit(reservation, {
        videoId: video("v1"),
        rallyIndex: 0,
        mode: "copy",
        clipStart: 0,
        clipEnd: 1,
        container: "webm",
        sizeBytes: 50,
        priority: "normal"
      })
      expect(entry.container).toBe("webm")
      expect(cache.pathOf(key)).toMatch(new RegExp(`/clips/${key}\\.webm$`))
      expect(Option.isNone(yield* fs.stat(reservation.finalPath))).toBe(true)
      expect(Option.isSome(yield* cache.lookup(key))).toBe(true)
      const path = cache.pathOf(key)
      expect(yield* cache.remove(key, "manual")).toBe(true)
      expect(Option.isNone(yield* fs.stat(path))).toBe(true)
    }).pipe(Effect.provide(testLayer())))

  it.effect("reserve, commit, lookup, then reserve answers Cached", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      const key = keyOf(1)
      expect(Option.isNone(yield* cache.lookup(key))).toBe(true)
      yield* TestClock.setTime(5_000)
      const reservation = yield* reserved(key)
      expect(reservation.finalPath).toBe(cache.pathOf(key))
      expect(reservation.tempPath).toMatch(new RegExp(`/tmp/${key}\\.[0-9a-f-]{36}\\.part$`))
      yield* fs.write(reservation.tempPath, { sizeBytes: 250 })
      yield* fs.rename(reservation.tempPath, reservation.finalPath)
      const entry = yield* cache.commit(reservation, {
        videoId: video("v1"),
        rallyIndex: 3,
        mode: "copy",
        clipStart: 0,
        clipEnd: 4,
        sizeBytes: 250,
        priority: "high"
      })
      expect([entry.createdAt, entry.accessedAt, entry.validation, entry.rallyIndex]).toEqual([5_000, 5_000, "unchecked", 3])
      expect(Option.getOrThrow(yield* cache.lookup(key)).id).toBe(entry.id)
      expect(yield* cache.usage).toEqual({ bytes: 250, entries: 1 })
      expect((yield* Effect.flatMap(Metrics.Metrics, (m) => m.snapshot)).cacheBytes).toBe(250)
      const again = yield* cache.reserve(key)
      expect(again._tag === "Cached" && again.entry.id === entry.id).toBe(true)
      // A stale reservation cannot commit twice.
      const second = yield* Effect.exit(cache.commit(reservation, { ...entry, sizeBytes: 250 }))
      expect(Exit.isFailure(second)).toBe(true)
    }).pipe(Effect.provide(testLayer())))

  it.effect("abort removes the partial and uncommitted files and frees the key", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      const key = keyOf(2)
      const reservation = yield* reserved(key)
      yield* fs.write(reservation.tempPath, { sizeBytes: 10 })
      yield* fs.write(reservation.finalPath, { sizeBytes: 10 })
      yield* cache.abort(reservation)
      expect(yield* fs.list).toEqual([])
      yield* cache.abort(reservation) // idempotent
      const next = yield* reserved(key)
      expect(next.tempPath).not.toBe(reservation.tempPath)
      expect(Option.isNone(yield* cache.lookup(key))).toBe(true)
    }).pipe(Effect.provide(testLayer())))

  it.effect("a second reserve of the same key waits, then gets Cached when the first commits", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      const key = keyOf(3)
      const reservation = yield* reserved(key)
      const waiter = yield* Effect.fork(cache.reserve(key))
      yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(waiter))).toBe(true)
      yield* fs.write(reservation.finalPath, { sizeBytes: 42 })
      const entry = yield* cache.commit(reservation, {
        videoId: video("v1"),
        rallyIndex: 0,
        mode: "copy",
        clipStart: 0,
        clipEnd: 1,
        sizeBytes: 42,
        priority: "high"
      })
      const result = yield* Fiber.join(waiter)
      expect(result._tag).toBe("Cached")
      expect(result._tag === "Cached" ? result.entry.id : undefined).toBe(entry.id)
    }).pipe(Effect.provide(testLayer())))

  it.effect("a waiting reserve takes the key when the first writer aborts", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const key = keyOf(4)
      const first = yield* reserved(key)
      const waiter = yield* Effect.fork(cache.reserve(key))
      yield* Effect.yieldNow()
      expect(Option.isNone(yield* Fiber.poll(waiter))).toBe(true)
      yield* cache.abort(first)
      const result = yield* Fiber.join(waiter)
      expect(result._tag).toBe("Reserved")
    }).pipe(Effect.provide(testLayer())))

  it.effect("commit without the clip in place fails, and releases the key", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const key = keyOf(5)
      const reservation = yield* reserved(key)
      const error = yield* Effect.flip(cache.commit(reservation, {
        videoId: video("v1"),
        rallyIndex: 0,
        mode: "copy",
        clipStart: 0,
        clipEnd: 1,
        sizeBytes: 1,
        priority: "low"
      }))
      expect(error._tag).toBe("CacheIOError")
      expect(error.message).toContain("no clip at the final path")
      const next: Reservation = yield* reserved(key)
      expect(next.key).toBe(key)
    }).pipe(Effect.provide(testLayer())))

  it.scoped("lookup removes a truncated clip and publishes EntryInvalid and Evicted", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      const events = yield* recordEvents
      const key = keyOf(6)
      yield* store(key, 1000, "v9", 7)
      yield* fs.truncate(cache.pathOf(key), 400)
      expect(Option.isNone(yield* cache.lookup(key))).toBe(true)
      expect(Option.isNone(yield* fs.stat(cache.pathOf(key)))).toBe(true)
      expect(yield* cache.usage).toEqual({ bytes: 0, entries: 0 })
      const seen = yield* events
      expect(seen.map((e) => e._tag)).toEqual(["EntryInvalid", "Evicted"])
      const [invalid, evicted] = seen
      expect(invalid?._tag === "EntryInvalid" && invalid.reason).toBe("clip file is 400 bytes, the index says 1000")
      expect(evicted?._tag === "Evicted" && [evicted.reason, evicted.videoId, evicted.rallyIndex]).toEqual([
        "invalid",
        "v9",
        7
      ])
      expect((yield* Effect.flatMap(Metrics.Metrics, (m) => m.snapshot)).evictions.invalid).toBe(1)
      // The next reserve lets it be exported again.
      expect((yield* cache.reserve(key))._tag).toBe("Reserved")
    }).pipe(Effect.provide(testLayer())))

  it.scoped("lookup removes an entry whose file was deleted, or that a validation marked invalid", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      const events = yield* recordEvents
      yield* store(keyOf(7))
      yield* store(keyOf(8))
      yield* fs.remove(cache.pathOf(keyOf(7)))
      yield* cache.markValidated(keyOf(8), "invalid")
      expect(Option.isNone(yield* cache.lookup(keyOf(7)))).toBe(true)
      expect(Option.isNone(yield* cache.lookup(keyOf(8)))).toBe(true)
      const reasons = (yield* events).flatMap((e) => e._tag === "EntryInvalid" ? [e.reason] : [])
      expect(reasons).toEqual(["clip file is missing", "a deep validation found the clip broken"])
    }).pipe(Effect.provide(testLayer())))

  it.effect("markValidated records the status and the time", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      yield* store(keyOf(9))
      yield* TestClock.setTime(1234)
      yield* cache.markValidated(keyOf(9), "valid")
      const entry = Option.getOrThrow(yield* cache.lookup(keyOf(9)))
      expect([entry.validation, entry.validatedAt]).toEqual(["valid", 1234])
    }).pipe(Effect.provide(testLayer())))

  it.scoped("an entry aged exactly maxAge is served; one millisecond later it is gone", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const events = yield* recordEvents
      yield* store(keyOf(10))
      yield* TestClock.adjust("1 hour")
      expect(Option.isSome(yield* cache.lookup(keyOf(10)))).toBe(true)
      expect(yield* cache.enforce).toEqual([])
      yield* TestClock.adjust(1)
      expect(Option.isNone(yield* cache.lookup(keyOf(10)))).toBe(true)
      const evicted = (yield* events).flatMap((e) => e._tag === "Evicted" ? [e.reason] : [])
      expect(evicted).toEqual(["age"])
    }).pipe(Effect.provide(testLayer({ maxAge: "1 hour" }))))

  it.effect.prop(
    "for any maxAge and any wait, an entry is served exactly while its age is at most maxAge",
    { maxAge: fc.integer({ min: 1, max: 10 * 24 * 3600 * 1000 }), wait: fc.integer({ min: 0, max: 1000 }) },
    ({ maxAge, wait }) =>
      Effect.gen(function*() {
        const cache = yield* CacheStore
        yield* TestClock.adjust(wait)
        yield* store(keyOf(12))
        yield* TestClock.adjust(maxAge)
        expect(Option.isSome(yield* cache.lookup(keyOf(12)))).toBe(true)
        expect(yield* cache.enforce).toEqual([])
        yield* TestClock.adjust(1)
        expect((yield* cache.enforce).map((e) => e.reason)).toEqual(["age"])
      }).pipe(Effect.provide(testLayer({ maxAge }))),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect("age counts from creation: a clip used a moment ago still expires at maxAge", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      yield* store(keyOf(13))
      yield* TestClock.adjust("50 minutes")
      yield* cache.touch(keyOf(13))
      expect(Option.getOrThrow(yield* cache.lookup(keyOf(13))).accessedAt).toBe(50 * 60 * 1000)
      yield* TestClock.adjust(10 * 60 * 1000 + 1)
      // Used 10 minutes ago, created an hour and a millisecond ago.
      expect(Option.isNone(yield* cache.lookup(keyOf(13)))).toBe(true)
      expect((yield* cache.enforce).map((e) => e.reason)).toEqual([])
      yield* store(keyOf(14))
      yield* TestClock.adjust("50 minutes")
      yield* cache.touch(keyOf(14))
      yield* TestClock.adjust(10 * 60 * 1000 + 1)
      expect((yield* cache.enforce).map((e) => [e.entry.key, e.reason])).toEqual([[keyOf(14), "age"]])
    }).pipe(Effect.provide(testLayer({ maxAge: "1 hour" }))))

  it.effect("enforce applies the age boundary exactly", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      yield* store(keyOf(11))
      yield* TestClock.adjust("1 hour")
      expect(yield* cache.enforce).toEqual([])
      yield* TestClock.adjust(1)
      const evictions = yield* cache.enforce
      expect(evictions.map((e) => [e.entry.key, e.reason])).toEqual([[keyOf(11), "age"]])
      expect(yield* cache.list).toEqual([])
    }).pipe(Effect.provide(testLayer({ maxAge: "1 hour" }))))

  it.effect("enforce evicts the least recently used first; touch refreshes an entry", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      for (let i = 0; i < 4; i++) {
        yield* store(keyOf(20 + i), 100)
        yield* TestClock.adjust(10)
      }
      yield* cache.touch(keyOf(20))
      const evictions = yield* cache.enforce
      expect(evictions.map((e) => [e.entry.key, e.reason])).toEqual([[keyOf(21), "size"], [keyOf(22), "size"]])
      expect(yield* cache.usage).toEqual({ bytes: 200, entries: 2 })
      const snapshot = yield* Effect.flatMap(Metrics.Metrics, (m) => m.snapshot)
      expect([snapshot.evictions.size, snapshot.cacheBytes, snapshot.cacheEntries]).toEqual([2, 200, 2])
    }).pipe(Effect.provide(testLayer({ maxBytes: 250 }))))

  it.effect("enforce keeps each video within maxEntriesPerVideo", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      for (let i = 0; i < 3; i++) {
        yield* store(keyOf(30 + i), 10, "a", i)
        yield* store(keyOf(40 + i), 10, "b", i)
        yield* TestClock.adjust(10)
      }
      const evictions = yield* cache.enforce
      expect(evictions.map((e) => [e.entry.videoId, e.entry.rallyIndex, e.reason])).toEqual([
        ["a", 0, "per-video"],
        ["b", 0, "per-video"]
      ])
    }).pipe(Effect.provide(testLayer({ maxEntriesPerVideo: 2 }))))

  it.effect("pins are counted and keep entries from eviction and from the age rule", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      yield* store(keyOf(50), 100)
      yield* TestClock.adjust(10)
      yield* store(keyOf(51), 100)
      const first = yield* Scope.make()
      const second = yield* Scope.make()
      yield* Scope.extend(cache.pin(keyOf(50)), first)
      yield* Scope.extend(cache.pin(keyOf(50)), second)
      yield* TestClock.adjust("2 hours")
      // Pinned and older than maxAge: still served while it is watched.
      expect(Option.isSome(yield* cache.lookup(keyOf(50)))).toBe(true)
      const evictions = yield* cache.enforce
      expect(evictions.map((e) => [e.entry.key, e.reason])).toEqual([[keyOf(51), "age"]])
      yield* Scope.close(first, Exit.void)
      expect(yield* cache.enforce).toEqual([])
      yield* Scope.close(second, Exit.void)
      expect((yield* cache.enforce).map((e) => e.entry.key)).toEqual([keyOf(50)])
    }).pipe(Effect.provide(testLayer({ maxBytes: 150, maxAge: "1 hour" }))))

  it.scoped("remove deletes the entry and its file and reports the reason", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      const events = yield* recordEvents
      yield* store(keyOf(60))
      expect(yield* cache.remove(keyOf(60), "manual")).toBe(true)
      expect(yield* cache.remove(keyOf(60), "manual")).toBe(false)
      expect(yield* fs.list).toEqual([])
      const evicted = (yield* events).flatMap((e) => e._tag === "Evicted" ? [e.reason] : [])
      expect(evicted).toEqual(["manual"])
    }).pipe(Effect.provide(testLayer())))
})
