import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Logger, Ref, Scope, Stream, TestClock } from "effect"
import type { CacheEvent } from "../src/CacheEvent.js"
import { CacheEvents } from "../src/CacheEvent.js"
import * as CacheKey from "../src/CacheKey.js"
import { CacheStore } from "../src/CacheStore.js"
import * as Cleanup from "../src/Cleanup.js"
import { CacheConfig } from "../src/Config.js"
import type { VideoId } from "../src/Domain.js"
import { CacheIOError } from "../src/Errors.js"
import * as MemoryCacheStore from "../src/MemoryCacheStore.js"
import { MemoryFileSystem } from "../src/MemoryFileSystem.js"
import * as Metrics from "../src/Metrics.js"
import * as TestExporter from "../src/TestExporter.js"

/** Counts `enforce` runs of the store and can make the next ones fail. */
class Probe extends Context.Tag("test/CleanupProbe")<Probe, {
  readonly enforceRuns: Ref.Ref<number>
  readonly failNext: Ref.Ref<number>
  readonly logs: Ref.Ref<ReadonlyArray<string>>
}>() {}

const probeLayer = Layer.effect(
  Probe,
  Effect.all({ enforceRuns: Ref.make(0), failNext: Ref.make(0), logs: Ref.make<ReadonlyArray<string>>([]) })
)

const probedStore = Layer.effect(
  CacheStore,
  Effect.gen(function*() {
    const probe = yield* Probe
    const inner = yield* MemoryCacheStore.make()
    return {
      ...inner,
      enforce: Effect.gen(function*() {
        yield* Ref.update(probe.enforceRuns, (n) => n + 1)
        const fail = yield* Ref.getAndUpdate(probe.failNext, (n) => Math.max(0, n - 1))
        if (fail > 0) return yield* new CacheIOError({ op: "enforce", path: "/cache", reason: "disk on fire" })
        return yield* inner.enforce
      })
    }
  })
)

const interval = "1 minute"
const validation = "1 hour"

const services = Layer.mergeAll(probedStore, TestExporter.layer()).pipe(
  Layer.provideMerge(MemoryFileSystem.layer),
  Layer.provideMerge(
    Layer.mergeAll(
      CacheConfig.layer({ maxBytes: 250, cleanupInterval: interval, validationInterval: validation }),
      CacheEvents.layer(),
      Metrics.layer
    )
  ),
  Layer.provideMerge(probeLayer)
)

const withCleanup = Cleanup.layer.pipe(Layer.provideMerge(services))

/** Warnings logged by the program go to the probe. */
const captureLogs = Layer.unwrapEffect(
  Effect.map(Probe, (probe) =>
    Logger.replace(
      Logger.defaultLogger,
      Logger.make(({ logLevel, message }) =>
        Effect.runSync(Ref.update(probe.logs, (all) => [...all, `${logLevel.label} ${String(message)}`]))
      )
    ))
)

const testLayer = withCleanup.pipe(Layer.provideMerge(captureLogs), Layer.provideMerge(probeLayer))

// Forked fibers need a few turns to reach their next step.
const settle = Effect.repeatN(Effect.yieldNow(), 10)

const keyOf = (n: number) => CacheKey.make({ fingerprint: "cleanup", start: n, end: n + 1, mode: "copy", settingsVersion: "v1" })

const store = (n: number, sizeBytes = 100) =>
  Effect.gen(function*() {
    const cache = yield* CacheStore
    const fs = yield* MemoryFileSystem
    const result = yield* cache.reserve(keyOf(n))
    if (result._tag !== "Reserved") return
    yield* fs.write(result.reservation.finalPath, { sizeBytes })
    yield* cache.commit(result.reservation, {
      videoId: "v" as VideoId,
      rallyIndex: n,
      mode: "copy",
      clipStart: 0,
      clipEnd: 1,
      sizeBytes,
      priority: "low"
    })
  })

const runs = Effect.flatMap(Probe, (p) => Ref.get(p.enforceRuns))
const keys = Effect.flatMap(CacheStore, (s) => s.list).pipe(Effect.map((l) => l.map((e) => e.rallyIndex).sort()))

describe("Cleanup", () => {
  it.effect("runs the rules once at start, then every cleanupInterval", () =>
    Effect.gen(function*() {
      yield* settle
      expect(yield* runs).toBe(1)
      for (let i = 0; i < 4; i++) {
        yield* store(i)
        yield* TestClock.adjust(1)
      }
      yield* TestClock.adjust("59 seconds")
      yield* settle
      expect(yield* runs).toBe(1)
      expect(yield* keys).toEqual([0, 1, 2, 3])
      yield* TestClock.adjust("1 second")
      yield* settle
      expect(yield* runs).toBe(2)
      expect(yield* keys).toEqual([2, 3])
      yield* TestClock.adjust(interval)
      yield* settle
      expect(yield* runs).toBe(3)
    }).pipe(Effect.provide(testLayer)))

  it.effect("trigger runs the rules at once and merges triggers that pile up", () =>
    Effect.gen(function*() {
      const cleanup = yield* Cleanup.Cleanup
      yield* settle
      for (let i = 0; i < 4; i++) yield* store(i)
      const before = yield* runs
      for (let i = 0; i < 10; i++) yield* cleanup.trigger
      yield* settle
      const after = yield* runs
      expect(after - before).toBeGreaterThanOrEqual(1)
      expect(after - before).toBeLessThanOrEqual(2)
      expect((yield* keys).length).toBe(2)
    }).pipe(Effect.provide(testLayer)))

  it.effect("a failing run is logged and the next one still happens", () =>
    Effect.gen(function*() {
      const probe = yield* Probe
      const cleanup = yield* Cleanup.Cleanup
      yield* settle
      for (let i = 0; i < 4; i++) yield* store(i)
      yield* Ref.set(probe.failNext, 1)
      yield* cleanup.trigger
      yield* settle
      expect((yield* keys).length).toBe(4)
      const logs = yield* Ref.get(probe.logs)
      expect(logs.some((line) => line.startsWith("WARN") && line.includes("triggered cleanup failed"))).toBe(true)
      yield* TestClock.adjust(interval)
      yield* settle
      expect((yield* keys).length).toBe(2)
      // The trigger fiber survived its failure too.
      yield* store(10)
      yield* cleanup.trigger
      yield* settle
      expect((yield* keys).length).toBe(2)
    }).pipe(Effect.provide(testLayer)))

  it.effect("every fiber stops when the layer's scope closes", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(withCleanup, scope)
      const cleanup = Context.get(context, Cleanup.Cleanup)
      const probe = Context.get(context, Probe)
      const fs = Context.get(context, MemoryFileSystem)
      yield* settle
      expect(yield* Ref.get(probe.enforceRuns)).toBe(1)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("1 day")
      yield* cleanup.trigger
      yield* settle
      expect(yield* Ref.get(probe.enforceRuns)).toBe(1)
      // The validation sweep did not run either: nothing was verified.
      const control = Context.get(context, TestExporter.Control)
      expect((yield* control.counts).verifies).toBe(0)
      expect(yield* fs.list).toEqual([])
    }))

  it.scoped("sweep deep-checks every entry, removes the broken ones and counts validations", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      const cleanup = yield* Cleanup.Cleanup
      const events = yield* CacheEvents
      const seen = yield* Ref.make<ReadonlyArray<CacheEvent>>([])
      const stream = yield* events.subscribe
      yield* Effect.forkScoped(Stream.runForEach(stream, (e) => Ref.update(seen, (all) => [...all, e])))
      yield* settle
      yield* store(0, 50)
      yield* store(1, 50)
      yield* TestClock.adjust(1000)
      yield* fs.corrupt(cache.pathOf(keyOf(1)))
      const result = yield* cleanup.sweep
      expect(result).toEqual({ checked: 2, valid: 1, removed: 1 })
      const [entry] = yield* cache.list
      expect([entry?.rallyIndex, entry?.validation, entry?.validatedAt]).toEqual([0, "valid", 1000])
      const snapshot = yield* Effect.flatMap(Metrics.Metrics, (m) => m.snapshot)
      expect(snapshot.validations).toEqual({ valid: 1, invalid: 1, successRate: 0.5 })
      expect(snapshot.evictions.invalid).toBe(1)
      yield* settle
      const tags = (yield* Ref.get(seen)).map((e) => e._tag === "Evicted" ? `Evicted:${e.reason}` : e._tag)
      expect(tags).toEqual(["EntryInvalid", "Evicted:invalid"])
    }).pipe(Effect.provide(testLayer)))

  it.effect("the validation sweep runs every validationInterval", () =>
    Effect.gen(function*() {
      const cache = yield* CacheStore
      const fs = yield* MemoryFileSystem
      yield* settle
      yield* store(0, 50)
      yield* store(1, 50)
      yield* fs.corrupt(cache.pathOf(keyOf(0)))
      yield* TestClock.adjust("59 minutes")
      yield* settle
      expect(yield* keys).toEqual([0, 1])
      yield* TestClock.adjust("1 minute")
      yield* settle
      expect(yield* keys).toEqual([1])
      expect((yield* cache.list)[0]?.validation).toBe("valid")
    }).pipe(Effect.provide(testLayer)))
})
