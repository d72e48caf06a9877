/**
 * Load in virtual time: the whole engine (`RallyCache.layerTest`: manager,
 * queue, in-memory store, `TestExporter` whose exports take TestClock time)
 * under a churn of getClip / navigate / leaseClip requests with a cache
 * small enough to evict all the time; and an idle service whose cleanup
 * fibers run for 30 virtual days.
 */
import { describe, expect, it } from "@effect/vitest"
import { CacheEvent, CacheStore, MemoryFileSystem, RallyCache } from "@rallycache/core"
import { TestExporter } from "@rallycache/core/testing"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Option, Ref, Stream, Supervisor, TestClock } from "effect"
import { forceGc, heapMiB, long, report, rng, seed, size } from "./support.js"

const videos = 5
const ralliesPerVideo = 60
const pathOf = (v: number) => `/videos/match-${v}.mp4`

/** 60 rallies of 5 to 20 s per video, with gaps. */
const ralliesOf = (v: number) => {
  const out: Array<{ start: number; end: number }> = []
  let t = 1 + v
  for (let i = 0; i < ralliesPerVideo; i++) {
    const length = 5 + ((i * 7 + v * 3) % 16)
    out.push({ start: t, end: t + length })
    t += length + 3
  }
  return out
}

const sources = Object.fromEntries(Array.from({ length: videos }, (_, v) => [pathOf(v), { duration: 2000 }]))
const concurrency = 2
// Clips are 250 kB per second: 1.25 to 5 MB. 24 MB holds about 8 of 300.
const maxBytes = 24_000_000

/**
 * Turns a hang into a failure; not a speed check. Each test is a few seconds of CPU, which a 2-core machine
 * shared with many busy processes stretched past 3 minutes in a full run.
 */
const hangBound = size(600_000, 1_800_000)

const churnLayer = RallyCache.layerTest({
  sources,
  exportTime: (rally) => `${1 + (rally.index % 4)} seconds`,
  progressSteps: 1,
  concurrency,
  maxBytes,
  preloadAhead: 2,
  cleanupInterval: "30 seconds"
})

/** Index, usage and files agree; returns the figures. */
const consistency = Effect.gen(function*() {
  const store = yield* CacheStore.CacheStore
  const fs = yield* MemoryFileSystem.MemoryFileSystem
  const entries = yield* Effect.orDie(store.list)
  const usage = yield* store.usage
  const files = (yield* fs.list).filter(([path]) => path.includes("/clips/"))
  const filePaths = new Map(files.map(([path, file]) => [path, file.sizeBytes]))
  const problems: Array<string> = []
  let sum = 0
  for (const entry of entries) {
    sum += entry.sizeBytes
    const size = filePaths.get(store.pathOf(entry.key))
    if (size === undefined) problems.push(`${entry.key}: no file`)
    else if (size !== entry.sizeBytes) problems.push(`${entry.key}: ${size} bytes on "disk", ${entry.sizeBytes} in the index`)
    filePaths.delete(store.pathOf(entry.key))
  }
  for (const path of filePaths.keys()) problems.push(`${path}: file without entry`)
  if (usage.bytes !== sum) problems.push(`usage says ${usage.bytes} bytes, entries sum to ${sum}`)
  if (usage.entries !== entries.length) problems.push(`usage says ${usage.entries} entries, the index has ${entries.length}`)
  const temp = (yield* fs.list).filter(([path]) => path.includes("/tmp/")).length
  return { entries: entries.length, bytes: usage.bytes, problems, temp }
})

describe("load (virtual time)", () => {
  it.effect("churn: 2,000 requests over 300 rallies, tiny cache: concurrency kept, leased clips kept, heap flat, nothing left after shutdown", () =>
    Effect.gen(function*() {
      // Two rounds on one instance (so the heap can be compared between them): 2,000 requests in all.
      const requestsPerRound = size(1000, 5000)
      const tracker = yield* Supervisor.track
      const random = rng(seed)
      const heap: Record<string, number> = {}
      forceGc()
      heap["beforeMiB"] = heapMiB()
      const figures = { requests: 0, navigations: 0, getClips: 0, leases: 0, failures: 0, leaseViolations: [] as Array<string> }

      const outcome = yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(churnLayer)
        const cache = Context.get(context, RallyCache.RallyCache)
        const control = Context.get(context, TestExporter.Control)
        const fs = Context.get(context, MemoryFileSystem.MemoryFileSystem)
        const events = Context.get(context, CacheEvent.CacheEvents)
        const provide = <A, E>(effect: Effect.Effect<A, E, CacheStore.CacheStore | MemoryFileSystem.MemoryFileSystem>) =>
          Effect.provide(effect, context)

        // Every eviction, checked against the leases held at that moment.
        const leased = new Map<string, number>()
        let evictions = 0
        const subscription = yield* events.subscribe
        yield* subscription.pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event._tag !== "Evicted") return
              evictions++
              if ((leased.get(event.key) ?? 0) > 0) figures.leaseViolations.push(`${event.key} evicted (${event.reason}) while leased`)
            })
          ),
          Effect.forkScoped
        )

        const ids: Array<string> = []
        for (let v = 0; v < videos; v++) {
          ids.push((yield* cache.openVideo({ path: pathOf(v), rallies: ralliesOf(v), id: `video-${v}` })).source.id)
        }
        const settled = { samples: 0, maxActive: 0 }

        const lease = (videoId: string, index: number, holdMs: number) =>
          Effect.scoped(Effect.gen(function*() {
            const clip = yield* cache.leaseClip(videoId, index)
            leased.set(clip.key, (leased.get(clip.key) ?? 0) + 1)
            yield* Effect.addFinalizer(() => Effect.sync(() => leased.set(clip.key, (leased.get(clip.key) ?? 1) - 1)))
            yield* Effect.sleep(holdMs)
            // Still there, whole, at the end of the "response".
            const file = yield* fs.stat(clip.path)
            if (Option.isNone(file) || file.value.sizeBytes !== clip.sizeBytes) {
              figures.leaseViolations.push(`${clip.key}: file gone or changed while leased`)
            }
          }))

        /** One viewer: moves through a video (mostly next, sometimes a jump), asks for clips, streams some. */
        const viewer = (quota: Ref.Ref<number>) =>
          Effect.gen(function*() {
            let videoId = random.pick(ids)
            let current = random.int(0, ralliesPerVideo - 1)
            while ((yield* Ref.getAndUpdate(quota, (n) => n - 1)) > 0) {
              figures.requests++
              const r = random.next()
              if (r < 0.35) {
                const roll = random.next()
                if (roll < 0.05) videoId = random.pick(ids)
                current = roll < 0.7 ? Math.min(current + 1, ralliesPerVideo - 1) : random.int(0, ralliesPerVideo - 1)
                figures.navigations++
                yield* cache.navigate(videoId, current)
              } else if (r < 0.8) {
                figures.getClips++
                const index = random.next() < 0.7 ? current : random.int(0, ralliesPerVideo - 1)
                const exit = yield* Effect.exit(cache.getClip(videoId, index))
                if (Exit.isFailure(exit)) figures.failures++
              } else {
                figures.leases++
                const exit = yield* Effect.exit(lease(videoId, current, random.int(0, 8000)))
                if (Exit.isFailure(exit)) figures.failures++
              }
              // Bursts and pauses; each virtual sleep costs a few real ms of TestClock bookkeeping.
              if (random.next() < 0.4) yield* Effect.sleep(random.int(200, 3000))
            }
          })

        const round = Effect.gen(function*() {
          const quota = yield* Ref.make(requestsPerRound)
          const done = yield* Deferred.make<void>()
          const fibers = yield* Effect.forEach(
            Array.from({ length: 8 }),
            () => Effect.fork(viewer(quota)),
            { concurrency: "unbounded" }
          )
          yield* Effect.fork(Effect.zipRight(Fiber.joinAll(fibers), Deferred.succeed(done, undefined)))
          yield* Effect.yieldNow()
          while (!(yield* Deferred.isDone(done))) {
            yield* TestClock.adjust("250 millis")
            // Settled (every fiber waits for time): what runs now runs for a while.
            yield* TestClock.adjust(0)
            settled.samples++
            settled.maxActive = Math.max(settled.maxActive, (yield* control.counts).active)
          }
        })

        yield* round
        forceGc()
        heap["afterRound1GcMiB"] = heapMiB()
        yield* round
        heap["afterRound2MiB"] = heapMiB()
        forceGc()
        heap["afterRound2GcMiB"] = heapMiB()

        const counts = yield* control.counts
        const state = yield* provide(consistency)
        return { counts, state, evictions, settled }
      }).pipe(Effect.supervised(tracker)))

      // The layer's scope is closed: every fiber it started has ended.
      yield* TestClock.adjust("1 second")
      const alive = (yield* tracker.value).filter((fiber) => fiber.unsafePoll() === null)

      report("load.churn", {
        requests: figures.requests,
        navigations: figures.navigations,
        getClips: figures.getClips,
        leases: figures.leases,
        exportsStarted: outcome.counts.started,
        maxActiveSettled: outcome.settled.maxActive,
        settledSamples: outcome.settled.samples,
        maxActiveInstantaneous: outcome.counts.maxActive,
        maxRunningInclPaused: outcome.counts.maxRunning,
        evictions: outcome.evictions,
        failures: figures.failures,
        leaseViolations: figures.leaseViolations.length,
        entriesAtEnd: outcome.state.entries,
        bytesAtEnd: outcome.state.bytes,
        maxBytes,
        fibersLeft: alive.length,
        heap
      })
      expect(figures.requests).toBe(requestsPerRound * 2)
      // At every settled moment (sampled each 250 virtual ms, once every fiber waits for time) no more
      // than `concurrency` exports work. TestExporter's own instantaneous maximum can read
      // concurrency + 1 during a preemption hand-over: the queue frees the paused job's slot at once,
      // and the new export may count itself before the paused one has seen its pause signal (with
      // ffmpeg, the SIGSTOP lands long before a new process has spawned; the real-ffmpeg load test
      // samples the process table).
      expect(outcome.settled.maxActive).toBeLessThanOrEqual(concurrency)
      expect(outcome.counts.maxActive).toBeLessThanOrEqual(concurrency + 1)
      expect(outcome.evictions, "the cache must be small enough to evict").toBeGreaterThan(100)
      expect(figures.leaseViolations).toEqual([])
      expect(figures.failures).toBe(0)
      expect(outcome.state.problems).toEqual([])
      expect(outcome.state.bytes).toBeLessThanOrEqual(maxBytes + 5_000_000)
      expect(alive.length, "fibers still running after shutdown").toBe(0)
      // Flat: the second round (same instance, same load) keeps no more than a little.
      expect(heap["afterRound2GcMiB"]! - heap["afterRound1GcMiB"]!).toBeLessThan(24)
    }), { timeout: hangBound })

  it.effect("idle service: 30 virtual days of cleanup cycles keep usage within limits, no drift in the index", () =>
    Effect.gen(function*() {
      const days = size(30, 90)
      const random = rng(seed + 1)
      const maxIdleBytes = 30_000_000
      const layer = RallyCache.layerTest({
        sources,
        exportTime: "2 seconds",
        progressSteps: 1,
        maxBytes: maxIdleBytes,
        maxAge: "7 days",
        maxEntriesPerVideo: 10,
        // Each cycle is a TestClock wake-up costing a few real ms: every 15 minutes in CI (2,880 cycles
        // in 30 days), every minute (the default) in a soak run.
        cleanupInterval: long ? "1 minute" : "15 minutes",
        validationInterval: "1 hour"
      })
      const daily: Array<{ day: number; entries: number; bytes: number }> = []
      const problems: Array<string> = []
      let oldestAgeDays = 0
      yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(layer)
        const cache = Context.get(context, RallyCache.RallyCache)
        const store = Context.get(context, CacheStore.CacheStore)
        const control = Context.get(context, TestExporter.Control)
        const ids: Array<string> = []
        for (let v = 0; v < videos; v++) {
          ids.push((yield* cache.openVideo({ path: pathOf(v), rallies: ralliesOf(v), id: `idle-${v}` })).source.id)
        }
        for (let day = 0; day < days; day++) {
          // A little traffic on most days (none in the last 8, so everything ages out), then a quiet day.
          if (day < days - 8 && random.next() < 0.7) {
            const videoId = random.pick(ids)
            const count = random.int(1, 12)
            yield* Effect.forEach(Array.from({ length: count }), () =>
              Effect.fork(Effect.exit(cache.getClip(videoId, random.int(0, ralliesPerVideo - 1)))), { discard: true })
            yield* Effect.yieldNow()
            yield* TestClock.adjust("1 minute")
          }
          for (let hour = 0; hour < 24; hour++) {
            yield* TestClock.adjust("1 hour")
            const usage = yield* store.usage
            if (usage.bytes > maxIdleBytes) problems.push(`day ${day} hour ${hour}: ${usage.bytes} bytes over ${maxIdleBytes}`)
          }
          const state = yield* Effect.provide(consistency, context)
          for (const p of state.problems) problems.push(`day ${day}: ${p}`)
          if (state.temp > 0) problems.push(`day ${day}: ${state.temp} temp files`)
          const now = yield* TestClock.currentTimeMillis
          for (const entry of yield* Effect.orDie(store.list)) {
            oldestAgeDays = Math.max(oldestAgeDays, (now - entry.createdAt) / 86_400_000)
          }
          const perVideo = new Map<string, number>()
          for (const entry of yield* Effect.orDie(store.list)) perVideo.set(entry.videoId, (perVideo.get(entry.videoId) ?? 0) + 1)
          for (const [video, n] of perVideo) if (n > 10) problems.push(`day ${day}: ${n} entries of ${video}`)
          daily.push({ day, entries: state.entries, bytes: state.bytes })
        }
        const counts = yield* control.counts
        report("load.idle", {
          virtualDays: days,
          cleanupCycles: days * 24 * (long ? 60 : 4),
          validationSweeps: days * 24,
          exports: counts.succeeded,
          verifies: counts.verifies,
          maxEntries: Math.max(...daily.map((d) => d.entries)),
          maxBytes: Math.max(...daily.map((d) => d.bytes)),
          limitBytes: maxIdleBytes,
          oldestEntryDays: Math.round(oldestAgeDays * 100) / 100,
          entriesAtEnd: daily.at(-1)?.entries,
          problems: problems.length
        })
      }))
      expect(problems).toEqual([])
      expect(oldestAgeDays).toBeLessThanOrEqual(7 + 1 / 24)
      expect(daily.at(-1)?.entries, "everything ages out after 8 quiet days").toBe(0)
      expect(Math.max(...daily.map((d) => d.entries))).toBeGreaterThan(0)
    }), { timeout: hangBound })
})

