/**
 * Start-up of the disk cache store and its reconcile of the index with
 * `clips/`: the leftovers of crashed processes (temp files, stale locks, a
 * dead compaction) are removed, and entries whose clip is missing or has the
 * wrong size are dropped, at start-up or in a background sweep that gives the
 * event loop back between slices (a large cache opens at once).
 *
 * @internal
 */
import * as NodePath from "node:path"
import { CacheEvent, CacheStore } from "@rallycache/core"
import type { Domain, Errors } from "@rallycache/core"
import { Deferred, Effect } from "effect"
import type { Scope } from "effect"
import type { StoreContext } from "./storeContext.js"
import { ioError } from "./storeContext.js"
import * as Journal from "./storeJournal.js"
import { clipName, clipNameMax, clipNameMin, isClipOf, tempName } from "./storeLayout.js"
import * as Lock from "./storeLock.js"

type CacheEntry = Domain.CacheEntry
type CacheKey = Domain.CacheKey

/** What reconciling the index with `clips/` found and fixed. */
export interface Reconciliation {
  /** Entries dropped because their clip was missing or had the wrong size. */
  readonly dropped: ReadonlyArray<{ readonly key: CacheKey; readonly reason: string }>
  /** Clip files the index did not know, removed. */
  readonly removedUnknown: number
  readonly millis: number
}

export interface StartupReport {
  /** Entries in the index after start-up (before the background sweep, with `reconcile: "background"`). */
  readonly entries: number
  readonly bytes: number
  /** Entries dropped because their clip was missing or had the wrong size (start-up reconciliation only). */
  readonly dropped: ReadonlyArray<{ readonly key: CacheKey; readonly reason: string }>
  /** Clip files the index did not know, removed (start-up reconciliation only). */
  readonly removedUnknown: number
  /** Partial files of dead exports, removed. */
  readonly removedTemp: number
  /** Key lock files of dead processes, removed. */
  readonly removedLocks: number
  /** Journal lines that did not parse (a torn last line after a crash). */
  readonly skippedLines: number
  readonly compacted: boolean
  readonly millis: number
}

/** Sizes in a start-up listing of `clips/` that are not sizes. */
export const vanished = -1
export const notAClip = -2
/** Shared by every start-up stat: no options object per call. */
export const noThrow = { throwIfNoEntry: false } as const
/** Clips statted by the background sweep between two turns of the event loop. */
export const sweepSlice = 2000

/**
 * Prepare the cache folder and reconcile the index: returns the start-up
 * report and a `Deferred` done when the index has been reconciled with
 * `clips/` (at once with `reconcile: "startup"`, after the background sweep,
 * forked in the scope, otherwise).
 */
export const startUp = (ctx: StoreContext): Effect.Effect<
  { readonly startup: StartupReport; readonly reconciledDone: Deferred.Deferred<Reconciliation, Errors.CacheIOError> },
  Errors.CacheIOError,
  Scope.Scope
> =>
  Effect.gen(function*() {
    const {
      appendLocked,
      clipPath,
      clipsPrefix,
      compactFactor,
      compactMinLines,
      dirs,
      events,
      fs,
      index,
      keyLockPath,
      metrics,
      options,
      publishUsage,
      withIndexLock
    } = ctx

    // -- start-up -----------------------------------------------------------

    /**
     * The names in `clips/`, and the size of each one shaped like a clip
     * (`<32 characters>.mp4`, `.mkv` or `.webm`): `vanished` when it went away between the
     * listing and the stat, `notAClip` for other names (never statted).
     */
    const statClips = (names: ReadonlyArray<string>, sizes: Float64Array, from: number, to: number): void => {
      for (let i = from; i < to; i++) {
        const name = names[i]!
        if (name.length < clipNameMin || name.length > clipNameMax || !clipName.test(name)) {
          sizes[i] = notAClip
          continue
        }
        const stat = fs.statSync(clipsPrefix + name, noThrow)
        sizes[i] = stat === undefined ? vanished : stat.size
      }
    }
    const listClips = (): { readonly names: ReadonlyArray<string>; readonly sizes: Float64Array } => {
      const names = fs.readdirSync(dirs.clips)
      const sizes = new Float64Array(names.length)
      statClips(names, sizes, 0, names.length)
      return { names, sizes }
    }

    /**
     * Entries against the files of a listing of `clips/`, under the index lock: drop the entries
     * whose clip is missing or has another size, remove the clips no entry knows. The listing may
     * have been taken before the lock (the background sweep), so every finding is checked again
     * here with a fresh stat: an entry can only be added or removed, and a clip file of an entry
     * only removed, under this lock, but a commit may have landed since the listing.
     */
    const reconcileLocked = (
      listing: { readonly names: ReadonlyArray<string>; readonly sizes: Float64Array },
      fresh = false
    ): { dropped: Array<{ key: CacheKey; reason: string; entry: CacheEntry }>; removedUnknown: number } => {
      const { names, sizes } = listing
      Journal.refresh(fs, dirs.journal, index)
      const sizeNow = (i: number): number => {
        if (fresh) return sizes[i]!
        const stat = fs.statSync(clipsPrefix + names[i]!, noThrow)
        return stat === undefined ? vanished : stat.size
      }
      const dropped: Array<{ key: CacheKey; reason: string; entry: CacheEntry }> = []
      const unknown: Array<string> = []
      let listed = 0
      for (let i = 0; i < names.length; i++) {
        let size = sizes[i]!
        if (size === notAClip) continue
        const name = names[i]!
        const entry = index.entries.get(name.slice(0, 32) as CacheKey)
        if (entry === undefined || !isClipOf(name, entry)) {
          if (size !== vanished) unknown.push(name)
          continue
        }
        listed++
        if (size !== entry.sizeBytes && (size = sizeNow(i)) !== entry.sizeBytes) {
          dropped.push({
            key: entry.key,
            reason: size === vanished
              ? "clip file is missing"
              : `clip file has ${size} bytes, the index says ${entry.sizeBytes}`,
            entry
          })
          if (size !== vanished) fs.rmSync(clipsPrefix + name, { force: true })
        }
      }
      // Entries the listing lacks; only looked for when the count says some are missing.
      if (listed < index.entries.size) {
        const present = new Set(names)
        for (const entry of index.entries.values()) {
          if (present.has(CacheStore.clipFileName(entry.key, entry.container))) continue
          if (!fresh && fs.statSync(clipPath(entry.key, entry.container), noThrow) !== undefined) continue
          dropped.push({ key: entry.key, reason: "clip file is missing", entry })
        }
      }
      // Clips the index does not know: without their entry (video, rally, times) they
      // cannot be served, so they are removed, unless a live export is about to commit one.
      let removedUnknown = 0
      for (const name of unknown) {
        const key = clipName.exec(name)?.[1] as CacheKey | undefined
        if (key === undefined) continue // not ours: never created by rallycache, left alone
        const token = Lock.tryAcquire(keyLockPath(key))
        if (token === undefined) continue
        try {
          // Re-check under the key lock: a commit may have landed since the listing.
          Journal.refresh(fs, dirs.journal, index)
          const entry = index.entries.get(key)
          if (entry === undefined || CacheStore.clipFileName(key, entry.container) !== name) {
            fs.rmSync(NodePath.join(dirs.clips, name), { force: true })
            removedUnknown++
          }
        } finally {
          Lock.release(keyLockPath(key), token)
        }
      }
      if (dropped.length > 0) appendLocked(dropped.map(({ key }) => ({ o: "d", k: key })))
      return { dropped, removedUnknown }
    }

    const reportDropped = (dropped: ReadonlyArray<{ readonly entry: CacheEntry; readonly reason: string }>) =>
      Effect.forEach(dropped, ({ entry, reason }) =>
        Effect.zipRight(
          events.publish(new CacheEvent.EntryInvalid({ key: entry.key, reason })),
          metrics.evicted("invalid")
        ), { discard: true })

    const eager = options.reconcile === "startup"
    const startup = yield* Effect.gen(function*() {
      const started = performance.now()
      const removedLocks = yield* Effect.try({
        try: () => {
          for (const dir of [dirs.root, dirs.clips, dirs.tmp, dirs.run, dirs.locks]) fs.mkdirSync(dir, { recursive: true })
          // Temp files of lock links, left by a crash between write and unlink; key locks of dead processes.
          const now = Date.now()
          let removedLocks = 0
          for (const name of fs.readdirSync(dirs.locks)) {
            const path = NodePath.join(dirs.locks, name)
            if (Lock.isLockLeftover(name)) {
              const stat = fs.statSync(path, { throwIfNoEntry: false })
              if (stat !== undefined && now - stat.mtimeMs > 60_000) fs.rmSync(path, { force: true })
            } else if (name.endsWith(".lock") && Lock.removeIfStale(path)) {
              removedLocks++
            }
          }
          return removedLocks
        },
        catch: ioError("create cache folder", dirs.root)
      })
      const result = yield* withIndexLock("reconcile", () => {
        // A compaction that died before its rename; no compaction runs now (we hold the lock).
        const journalName = NodePath.basename(dirs.journal)
        for (const name of fs.readdirSync(dirs.root)) {
          if (name.startsWith(`${journalName}.`) && name.endsWith(".tmp")) {
            fs.rmSync(NodePath.join(dirs.root, name), { force: true })
          }
        }

        // Partial files: only those whose key no live process is exporting.
        let removedTemp = 0
        for (const name of fs.readdirSync(dirs.tmp)) {
          const path = NodePath.join(dirs.tmp, name)
          const key = tempName.exec(name)?.[1] as CacheKey | undefined
          if (key === undefined) {
            fs.rmSync(path, { force: true, recursive: true })
            removedTemp++
            continue
          }
          const token = Lock.tryAcquire(keyLockPath(key))
          if (token === undefined) continue
          try {
            fs.rmSync(path, { force: true })
            removedTemp++
          } finally {
            Lock.release(keyLockPath(key), token)
          }
        }

        // Eager: the clips are listed and statted before the journal is read, so that the stats'
        // garbage is collected while few entries are alive. Holding the index lock makes the
        // order safe: no entry can be added or removed meanwhile, and a clip file of an entry is
        // only ever removed under this lock.
        const clips = eager ? reconcileLocked(listClips(), true) : undefined
        if (!eager) Journal.refresh(fs, dirs.journal, index)
        const skippedLines = index.skipped
        const compacted = Journal.compactIfDue(fs, dirs.journal, index, compactMinLines, compactFactor)
        return { clips, removedTemp, skippedLines, compacted }
      })
      if (result.clips !== undefined) yield* reportDropped(result.clips.dropped)
      yield* publishUsage
      const report: StartupReport = {
        entries: index.entries.size,
        bytes: index.bytes,
        dropped: result.clips?.dropped.map(({ key, reason }) => ({ key, reason })) ?? [],
        removedUnknown: result.clips?.removedUnknown ?? 0,
        removedTemp: result.removedTemp,
        removedLocks,
        skippedLines: result.skippedLines,
        compacted: result.compacted,
        millis: performance.now() - started
      }
      return report
    })

    // Background reconciliation: until it is done, every lookup checks its clip's size before
    // serving it (`problemOf`), so nothing unchecked is ever served; the sweep only finds what
    // no lookup has asked for yet. It stats in slices, giving the event loop back in between.
    const reconciledDone = yield* Deferred.make<Reconciliation, Errors.CacheIOError>()
    if (eager) {
      yield* Deferred.succeed(reconciledDone, {
        dropped: startup.dropped,
        removedUnknown: startup.removedUnknown,
        millis: startup.millis
      })
    } else {
      yield* Effect.gen(function*() {
        const started = performance.now()
        const names = yield* Effect.try({ try: () => fs.readdirSync(dirs.clips), catch: ioError("list", dirs.clips) })
        const sizes = new Float64Array(names.length)
        for (let from = 0; from < names.length; from += sweepSlice) {
          yield* Effect.try({
            try: () => statClips(names, sizes, from, Math.min(from + sweepSlice, names.length)),
            catch: ioError("stat", dirs.clips)
          })
          yield* Effect.promise(() => new Promise<void>((resolve) => setImmediate(resolve)))
        }
        const found = yield* withIndexLock("reconcile", () => reconcileLocked({ names, sizes }))
        yield* reportDropped(found.dropped)
        yield* publishUsage
        return {
          dropped: found.dropped.map(({ key, reason }) => ({ key, reason })),
          removedUnknown: found.removedUnknown,
          millis: performance.now() - started
        }
      }).pipe(
        Effect.tapError((error) => Effect.logWarning(`rallycache: the background reconciliation failed: ${error.message}`)),
        Effect.exit,
        Effect.flatMap((exit) => Deferred.done(reconciledDone, exit)),
        Effect.forkScoped
      )
    }
    return { startup, reconciledDone }
  })
