/**
 * Load with real ffmpeg and a real cache folder: viewers churn through the
 * rallies of two generated videos with a cache limit of a few clips, while
 * the process table and the exporter are sampled every few milliseconds.
 */
import { describe, expect, it } from "@effect/vitest"
import { CacheEvent, RallyCache } from "@rallycache/core"
import { Context, Effect, Exit, Layer, Stream, Supervisor } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import {
  binaries,
  exportCounter,
  ffmpegIn,
  forceGc,
  heapMiB,
  mediaCheckOnce,
  nodeStack,
  reloadCheck,
  report,
  rng,
  sampleVideo,
  seed,
  size,
  tempDir
} from "./support.js"

const ralliesOf = (duration: number, count: number, shift: number) =>
  Array.from({ length: count }, (_, i) => {
    const start = Math.round(((i * 0.43 + shift) % (duration - 2)) * 1000) / 1000
    return { start, end: Math.round((start + 0.7 + (i % 4) * 0.25) * 1000) / 1000 }
  })

describe("load (real ffmpeg)", () => {
  it.live("churn over two videos with a tiny cache: at most `concurrency` ffmpeg at once, leased clips kept, nothing left after shutdown", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const videos = [yield* sampleVideo({ duration: 6 }), yield* sampleVideo({ duration: 8 })]
      const dir = tempDir("load")
      const cacheDir = NodePath.join(dir, "cache")
      const concurrency = 2
      // Clips are 50-120 kB: about 5 fit.
      const maxBytes = 500_000
      const requests = size(200, 1000)
      const random = rng(seed)
      const { activeNow, counter, runningNow, wrap } = exportCounter()
      const tracker = yield* Supervisor.track
      const stack = nodeStack({ cacheDir, config: { concurrency, maxBytes, cleanupInterval: "2 seconds" }, wrapExporter: wrap })
      const figures = { requests: 0, failures: [] as Array<string>, leaseViolations: [] as Array<string>, evictions: 0 }
      let maxActiveSampled = 0
      const sampler = setInterval(() => (maxActiveSampled = Math.max(maxActiveSampled, activeNow())), 3)
      const procs = { max: 0, maxActive: 0, samples: 0 }
      const procSampler = setInterval(() => {
        const list = ffmpegIn(cacheDir)
        procs.samples++
        procs.max = Math.max(procs.max, list.length)
        procs.maxActive = Math.max(procs.maxActive, runningNow(list).length)
      }, 4)
      forceGc()
      const heapBefore = heapMiB()
      let heapAfter = 0

      yield* Effect.scoped(Effect.gen(function*() {
        const context = yield* Layer.build(stack)
        const cache = Context.get(context, RallyCache.RallyCache)
        const events = Context.get(context, CacheEvent.CacheEvents)
        const leased = new Map<string, number>()
        yield* (yield* events.subscribe).pipe(
          Stream.runForEach((event) =>
            Effect.sync(() => {
              if (event._tag !== "Evicted") return
              figures.evictions++
              if ((leased.get(event.key) ?? 0) > 0) figures.leaseViolations.push(`${event.key} evicted while leased`)
            })
          ),
          Effect.forkScoped
        )
        const ids: Array<string> = []
        for (const [v, path] of videos.entries()) {
          const rallies = ralliesOf(v === 0 ? 6 : 8, 20, v * 0.11)
          ids.push((yield* cache.openVideo({ path, rallies, id: `load-${v}` })).source.id)
        }
        let left = requests
        const viewer = Effect.gen(function*() {
          let videoId = random.pick(ids)
          let current = random.int(0, 19)
          while (left-- > 0) {
            figures.requests++
            const r = random.next()
            if (r < 0.3) {
              if (random.next() < 0.1) videoId = random.pick(ids)
              current = random.next() < 0.7 ? Math.min(current + 1, 19) : random.int(0, 19)
              yield* cache.navigate(videoId, current)
            } else if (r < 0.75) {
              const exit = yield* Effect.exit(cache.getClip(videoId, random.next() < 0.6 ? current : random.int(0, 19)))
              if (Exit.isFailure(exit)) figures.failures.push(String(exit.cause))
            } else {
              const hold = random.int(0, 150)
              const exit = yield* Effect.exit(Effect.scoped(Effect.gen(function*() {
                const clip = yield* cache.leaseClip(videoId, current)
                leased.set(clip.key, (leased.get(clip.key) ?? 0) + 1)
                yield* Effect.addFinalizer(() => Effect.sync(() => leased.set(clip.key, (leased.get(clip.key) ?? 1) - 1)))
                yield* Effect.sleep(hold)
                // Still whole at the end of the "response".
                const check = mediaCheckOnce(bins.ffmpeg.path, bins.ffprobe.path, clip.path)
                if (!check.ok) figures.leaseViolations.push(`${clip.key}: not playable at the end of its lease`)
              })))
              if (Exit.isFailure(exit)) figures.failures.push(String(exit.cause))
            }
          }
        })
        yield* Effect.all(Array.from({ length: 4 }, () => viewer), { concurrency: "unbounded", discard: true })
        heapAfter = heapMiB()
      }).pipe(Effect.supervised(tracker)))

      clearInterval(sampler)
      clearInterval(procSampler)
      // Fibers interrupted by the shutdown end as their finalizers finish: wait for that, boundedly.
      const stillAlive = Effect.map(tracker.value, (fibers) => fibers.filter((fiber) => fiber.unsafePoll() === null))
      for (const deadline = Date.now() + 10_000; (yield* stillAlive).length > 0 && Date.now() < deadline;) {
        yield* Effect.sleep("10 millis")
      }
      const alive = yield* stillAlive
      forceGc()
      const heapAfterGc = heapMiB()
      const seen = yield* reloadCheck(cacheDir, bins)
      const left = ffmpegIn(cacheDir)
      report("load.ffmpeg", {
        requests: figures.requests,
        exports: counter.started,
        evictions: figures.evictions,
        maxExportsRunningInclPaused: counter.max,
        maxExportsActive: maxActiveSampled,
        processSamples: procs.samples,
        maxFfmpegProcesses: procs.max,
        maxFfmpegNotStopped: procs.maxActive,
        failures: figures.failures.length,
        leaseViolations: figures.leaseViolations.length,
        fibersLeft: alive.length,
        ffmpegLeft: left.length,
        entriesAtEnd: seen.entries,
        heapMiB: { before: heapBefore, after: heapAfter, afterGc: heapAfterGc }
      })
      expect(figures.failures).toEqual([])
      expect(figures.leaseViolations).toEqual([])
      expect(maxActiveSampled).toBeLessThanOrEqual(concurrency)
      expect(procs.maxActive).toBeLessThanOrEqual(concurrency)
      expect(counter.started).toBeGreaterThan(20)
      expect(figures.evictions).toBeGreaterThan(10)
      expect(alive.length, "fibers left after shutdown").toBe(0)
      expect(left, "ffmpeg left after shutdown").toEqual([])
      expect(seen.bad).toEqual([])
      // Shutdown leaves nothing for the next start to repair.
      expect(seen.left).toEqual({ unknown: [], temp: [], run: [], locks: [] })
      expect(seen.repaired).toMatchObject({ dropped: 0, removedUnknown: 0, removedTemp: 0, removedLocks: 0 })
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }), { timeout: size(300_000, 1_200_000) })
})
