/**
 * Disk faults: ENOSPC and EIO at random points of the store's writes,
 * fsyncs, renames, stats and removals (its `fs` option) and of the
 * exporter's folder creation, fsync, stat and rename (its platform
 * `FileSystem`), with real ffmpeg on a small generated video. Each run
 * injects at least one fault into the journal's write, the store's fsync,
 * and the exporter's fsync and rename (checked at the end).
 *
 * Held, each round:
 * - every failure is typed (`CacheIOError`, `ExportFailed` io/no-space), never a defect;
 * - every clip served during the faults is a complete, playable file;
 * - a fresh store opened on the folder (a restart) finds an index whose
 *   every entry is a complete, playable file of the recorded size;
 * - once the faults stop, the same running instance serves every rally.
 */
import { describe, expect, it } from "@effect/vitest"
import { RallyCache } from "@rallycache/core"
import { Cause, Context, Effect, Exit, Layer, Option } from "effect"
import * as NodeFs from "node:fs"
import {
  binaries,
  Faults,
  faultyFs,
  faultyPlatformFs,
  mediaCheck,
  nodeStack,
  reloadCheck,
  report,
  sampleVideo,
  seed,
  size,
  tempDir
} from "./support.js"

// SourceUnreadable: an EIO while reading the source's metadata (the exporter stats it through the same FileSystem).
const typedTags = new Set(["CacheIOError", "ExportFailed", "SourceUnreadable"])

/** Rallies of round `r`: distinct ranges (so distinct keys) inside an 8 s video. */
const ralliesOf = (round: number, count: number) =>
  Array.from({ length: count }, (_, i) => {
    const start = Math.round(((i * 0.37 + round * 0.013) % 6) * 1000) / 1000
    return { start, end: Math.round((start + 0.6 + (i % 3) * 0.4) * 1000) / 1000 }
  })

describe("disk faults (ENOSPC / EIO)", () => {
  it.live("typed errors, consistent index after reload, no partial clip served, recovery once the fault clears", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const ffmpeg = bins.ffmpeg.path
      const ffprobe = bins.ffprobe.path
      const video = yield* sampleVideo({ duration: 8 })
      const cacheDir = tempDir("disk")
      const rounds = size(3, 12)
      const perRound = size(16, 30)
      const faults = new Faults(seed, new Set([
        "open",
        "write",
        "fsync",
        "rename",
        "stat",
        "rm",
        "platform.mkdir",
        "platform.open",
        "platform.fsync",
        "platform.stat",
        "platform.rename"
      ]))
      // The durability steps are under fire in every run, whatever the seed draws. (The store's own
      // rename, of a compaction, is not: the fault phase rarely compacts, so it is drawn at random only.)
      const durability = ["write", "fsync", "platform.fsync", "platform.rename"]
      for (const op of durability) faults.certain.add(op)
      faults.rate = 0.08
      // The journal is written and fsynced once per commit or removal: aim at it harder.
      faults.rates.set("write", 0.3)
      faults.rates.set("fsync", 0.2)
      const stack = nodeStack({
        cacheDir,
        storeFs: faultyFs(faults),
        exporterFs: faultyPlatformFs(faults),
        config: { maxRetries: 1, retryBaseDelay: 20, concurrency: 2 },
        // Compact often, so that the journal's rename is under fire too.
        store: { compactMinLines: 8, compactFactor: 2, touchFlushInterval: "50 millis" }
      })
      const totals = {
        requests: 0,
        served: 0,
        typedFailures: 0,
        defects: [] as Array<string>,
        partialServed: [] as Array<string>,
        byTag: {} as Record<string, number>,
        reloads: 0,
        droppedAtReload: 0,
        unknownAtReload: 0,
        recoveryRequests: 0,
        recoveryFailures: [] as Array<string>
      }

      for (let round = 0; round < rounds; round++) {
        const rallies = ralliesOf(round, perRound)
        yield* Effect.scoped(Effect.gen(function*() {
          const context = yield* Layer.build(stack)
          const cache = Context.get(context, RallyCache.RallyCache)
          const opened = yield* cache.openVideo({ path: video, rallies, id: `disk-${round}` })
          const videoId = opened.source.id

          // Faults on: every request either serves a playable file or fails with a typed error.
          // Two passes: the second one also hits committed entries (the quick validation's stat).
          faults.enabled = true
          yield* Effect.forEach([...rallies, ...rallies], (_, i) =>
            cache.getClip(videoId, i % rallies.length).pipe(
              Effect.exit,
              Effect.map((exit) => {
                totals.requests++
                if (Exit.isSuccess(exit)) {
                  totals.served++
                  const check = mediaCheck(ffmpeg, ffprobe, exit.value.path)
                  if (!check.ok) totals.partialServed.push(`${exit.value.path}: ${check.detail}`)
                  return
                }
                const failure = Cause.failureOption(exit.cause)
                if (Option.isSome(failure) && typedTags.has(failure.value._tag)) {
                  totals.typedFailures++
                  totals.byTag[failure.value._tag] = (totals.byTag[failure.value._tag] ?? 0) + 1
                  expect(failure.value.message).not.toContain("\n")
                } else {
                  totals.defects.push(Cause.pretty(exit.cause).split("\n").slice(0, 12).join(" | "))
                }
              })
            ), { concurrency: 3, discard: true })
          faults.enabled = false

          // A restart now (another process opening the folder) finds a consistent index.
          const reload = yield* reloadCheck(cacheDir, bins)
          totals.reloads++
          totals.droppedAtReload += reload.repaired.dropped
          totals.unknownAtReload += reload.left.unknown.length
          expect(reload.bad, "entries served as valid after reload").toEqual([])
          // A commit that failed removes its clip unless that removal failed too (faults hit rm):
          // then the start-up removes it, and nothing else.
          expect(reload.repaired.removedUnknown).toBe(reload.left.unknown.length)
          expect(reload.left.unknown.length).toBeLessThanOrEqual(faults.injected.get("rm") ?? 0)
          expect(reload.after.unknown, "clip files the index does not know, after a start").toEqual([])

          // The fault is gone: the same running instance serves every rally.
          yield* Effect.forEach(rallies, (_, index) =>
            cache.getClip(videoId, index).pipe(
              Effect.exit,
              Effect.map((exit) => {
                totals.recoveryRequests++
                if (Exit.isFailure(exit)) totals.recoveryFailures.push(`${index}: ${Cause.pretty(exit.cause).split("\n")[0]}`)
                else if (!mediaCheck(ffmpeg, ffprobe, exit.value.path).ok) totals.recoveryFailures.push(`${index}: not playable`)
              })
            ), { concurrency: 3, discard: true })
        }))

        // The instance closed with the faults off: it leaves nothing for the next start to repair.
        const after = yield* reloadCheck(cacheDir, bins)
        expect(after.bad).toEqual([])
        expect(after.left.unknown, "clip files the index does not know, after closing").toEqual([])
        expect(after.left.temp, "temp files after closing").toEqual([])
        expect(after.repaired).toMatchObject({ dropped: 0, removedUnknown: 0, removedTemp: 0, removedLocks: 0 })
        expect(after.entries).toBeGreaterThanOrEqual(perRound * (round + 1))
      }

      report("faults.disk", {
        rounds,
        requests: totals.requests,
        faultsInjected: faults.total,
        injectedByOp: Object.fromEntries(faults.injected),
        served: totals.served,
        typedFailures: totals.typedFailures,
        byTag: totals.byTag,
        defects: totals.defects.length,
        partialServed: totals.partialServed.length,
        reloads: totals.reloads,
        droppedAtReload: totals.droppedAtReload,
        unknownAtReload: totals.unknownAtReload,
        recoveryRequests: totals.recoveryRequests,
        recoveryFailures: totals.recoveryFailures.length
      })
      expect(totals.defects, "defects (untyped failures)").toEqual([])
      expect(totals.partialServed, "partial clips served").toEqual([])
      expect(totals.recoveryFailures, "failures after the fault cleared").toEqual([])
      for (const op of durability) expect(faults.injected.get(op) ?? 0, `${op} faults injected`).toBeGreaterThan(0)
      NodeFs.rmSync(cacheDir, { recursive: true, force: true })
    }), { timeout: size(600_000, 1_800_000) })
})
