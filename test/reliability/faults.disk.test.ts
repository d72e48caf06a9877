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
import { CacheEvent, CacheKey, Config, Metrics, RallyCache } from "@rallycache/core"
import type { CacheStore, Domain } from "@rallycache/core"
import { FileSystemCacheStore } from "@rallycache/node"
import { Cause, Context, Duration, Effect, Exit, Layer, Option, Scope, TestClock } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import {
  binaries,
  Faults,
  faultyFs,
  faultyPlatformFs,
  mediaCheckOnce,
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
      // rename, of a compaction, is drawn at random only here: the next test aims at it.)
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
                  const check = mediaCheckOnce(ffmpeg, ffprobe, exit.value.path)
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
                else if (!mediaCheckOnce(ffmpeg, ffprobe, exit.value.path).ok) totals.recoveryFailures.push(`${index}: not playable`)
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

  it.effect("a compaction whose rename fails leaves the old journal whole: the operation that asked for it stands, no entry is lost, the next start is clean, the next compaction runs", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir("compact")
      const faults = new Faults(seed, new Set(["rename"]))
      faults.rate = 1
      const attempts: Array<string> = []
      const faulty = faultyFs(faults)
      // Every rename the store tries (a commit of a clip in its own container renames too: none here).
      const fs: FileSystemCacheStore.SyncFs = {
        ...faulty,
        renameSync: (from, to) => {
          attempts.push(`${NodePath.basename(String(from))} -> ${NodePath.basename(String(to))}`)
          return faulty.renameSync(from, to)
        }
      }
      const services = Layer.mergeAll(Config.CacheConfig.layer(), CacheEvent.CacheEvents.layer(), Metrics.layer).pipe(Layer.orDie)
      const open = (withFaults: boolean) =>
        Effect.gen(function*() {
          const scope = yield* Scope.make()
          const store = yield* FileSystemCacheStore.make({
            cacheDir,
            compactMinLines: 8,
            compactFactor: 2,
            ...(withFaults ? { fs } : {})
          }).pipe(Scope.extend(scope), Effect.provide(services))
          return { store, close: Scope.close(scope, Exit.void) }
        })
      const keyOf = (i: number): Domain.CacheKey =>
        CacheKey.make({ fingerprint: "compact-fault", start: i, end: i + 1, mode: "copy", settingsVersion: "v1" })
      const put = (store: CacheStore.CacheStoreShape, i: number) =>
        Effect.gen(function*() {
          const reserved = yield* store.reserve(keyOf(i))
          if (reserved._tag !== "Reserved") throw new Error(`key ${i} was already cached`)
          NodeFs.writeFileSync(reserved.reservation.tempPath, Buffer.alloc(100 + i, i))
          NodeFs.renameSync(reserved.reservation.tempPath, reserved.reservation.finalPath)
          return yield* store.commit(reserved.reservation, {
            videoId: "compact" as Domain.VideoId,
            rallyIndex: i,
            mode: "copy",
            clipStart: i,
            clipEnd: i + 1,
            sizeBytes: 100 + i,
            priority: "normal"
          })
        })
      const seen = (entries: ReadonlyArray<Domain.CacheEntry>) =>
        entries.map((e) => `${e.key} ${e.sizeBytes} ${e.accessedAt}`).sort()
      const leftovers = () => NodeFs.readdirSync(cacheDir).filter((name) => name.endsWith(".tmp"))

      const a = yield* open(true)
      const journal = a.store.layout.journal
      for (let i = 0; i < 3; i++) yield* put(a.store, i)
      const inode = NodeFs.statSync(journal).ino
      expect(attempts).toEqual([])

      // Touches until the journal holds more than 8 lines and 2 per entry: the flush that appends
      // them asks for a compaction, whose rename fails.
      faults.enabled = true
      for (let round = 0; round < 6 && attempts.length === 0; round++) {
        yield* TestClock.adjust(Duration.seconds(1))
        for (let i = 0; i < 3; i++) yield* a.store.touch(keyOf(i))
        yield* a.store.flush
      }
      expect(attempts.length, "a compaction was attempted").toBeGreaterThan(0)
      expect(attempts.every((attempt) => attempt.endsWith(` -> ${NodePath.basename(journal)}`))).toBe(true)
      expect(faults.injected.get("rename")).toBe(attempts.length)
      // The old journal is still in place, its temp copy removed, and it holds the touches of the flush.
      expect(NodeFs.statSync(journal).ino).toBe(inode)
      expect(leftovers()).toEqual([])
      const expected = seen(yield* a.store.list)
      expect(expected.length).toBe(3)
      const lastTouch = yield* TestClock.currentTimeMillis
      for (const entry of yield* a.store.list) expect(entry.accessedAt).toBe(lastTouch)

      // Still failing: a commit stands (its record is durable), and so does its entry.
      const failedBefore = attempts.length
      yield* put(a.store, 3)
      expect(attempts.length, "the next append tries again").toBeGreaterThan(failedBefore)
      expect(NodeFs.statSync(journal).ino).toBe(inode)
      const withFourth = seen(yield* a.store.list)
      expect(withFourth.length).toBe(4)

      // A restart (another process, no faults) reads every entry from the old journal, drops none,
      // skips no line; it compacts, as the journal is due.
      const b = yield* open(false)
      expect(b.store.startup).toMatchObject({ entries: 4, dropped: [], removedUnknown: 0, removedTemp: 0, skippedLines: 0 })
      expect(seen(yield* b.store.list)).toEqual(withFourth)
      yield* b.close

      // Faults gone: the first instance follows the new journal and its own next compaction works.
      faults.enabled = false
      yield* put(a.store, 4)
      for (let round = 0; round < 6; round++) {
        yield* TestClock.adjust(Duration.seconds(1))
        for (let i = 0; i < 5; i++) yield* a.store.touch(keyOf(i))
        yield* a.store.flush
      }
      expect(NodeFs.statSync(journal).ino).not.toBe(inode)
      expect(NodeFs.readFileSync(journal, "utf8").trim().split("\n").length).toBeLessThanOrEqual(1 + 2 * 5)
      const final = seen(yield* a.store.list)
      expect(final.length).toBe(5)
      yield* a.close
      const c = yield* open(false)
      expect(c.store.startup).toMatchObject({ entries: 5, dropped: [], skippedLines: 0 })
      expect(seen(yield* c.store.list)).toEqual(final)
      yield* c.close
      expect(leftovers()).toEqual([])
      NodeFs.rmSync(cacheDir, { recursive: true, force: true })
    }))
})
