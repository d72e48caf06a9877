/**
 * The disk cache store: implementation. See `FileSystemCacheStore` for the
 * public API and the package README for the design.
 *
 * @internal
 */
import * as Crypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { CacheEvent, CacheStore, Config, Domain, Errors, Eviction, Metrics } from "@rallycache/core"
import { Clock, Deferred, Duration, Effect, Option, Queue, Schedule } from "effect"
import type { Scope } from "effect"
import * as Journal from "./storeJournal.js"
import * as Lock from "./storeLock.js"

type CacheEntry = Domain.CacheEntry
type CacheKey = Domain.CacheKey
type EvictionReason = Domain.EvictionReason
type CacheStoreShape = CacheStore.CacheStoreShape
type Reservation = CacheStore.Reservation

/**
 * Where everything lives under the cache folder.
 *
 * @internal
 */
export interface Layout {
  readonly root: string
  /** Complete clips only, named `<key>.<container>` (`CacheStore.clipFileName`). */
  readonly clips: string
  /** Partial files of running exports; emptied at start-up. */
  readonly tmp: string
  /** Pids of running exports (reaped by the exporter at start-up). */
  readonly run: string
  /** Lock files: one per key being exported, and `index.lock`. */
  readonly locks: string
  /** The index journal. */
  readonly journal: string
  readonly indexLock: string
}

export const layout = (cacheDir: string): Layout => {
  const root = NodePath.resolve(cacheDir)
  const locks = NodePath.join(root, "locks")
  return {
    root,
    clips: NodePath.join(root, "clips"),
    tmp: NodePath.join(root, "tmp"),
    run: NodePath.join(root, "run"),
    locks,
    journal: NodePath.join(root, "index.jsonl"),
    indexLock: NodePath.join(locks, "index.lock")
  }
}

export interface StoreOptions {
  readonly cacheDir: string
  readonly touchFlushInterval?: Duration.DurationInput | undefined
  readonly compactMinLines?: number | undefined
  readonly compactFactor?: number | undefined
  readonly indexLockTimeout?: Duration.DurationInput | undefined
  readonly fs?: Journal.SyncFs | undefined
  readonly reconcile?: "startup" | "background" | undefined
}

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

export interface FileSystemCacheStoreShape extends CacheStoreShape {
  readonly layout: Layout
  readonly startup: StartupReport
  /**
   * Completes when the index has been reconciled with `clips/`: at once with
   * `reconcile: "startup"`, after the background sweep otherwise.
   */
  readonly reconciled: Effect.Effect<Reconciliation, Errors.CacheIOError>
  /** Write batched touches to the journal now (also done every `touchFlushInterval` and on close). */
  readonly flush: Effect.Effect<void, Errors.CacheIOError>
}


const keyPattern = /^[0-9a-f]{32}$/
const clipName = /^([0-9a-f]{32})\.(?:mp4|mkv|webm)$/
const tempName = /^([0-9a-f]{32})\./
/** Lengths of `<key>.mkv` and `<key>.webm` (and `.mp4`): a cheap test before the regex. */
const clipNameMin = 32 + ".mp4".length
const clipNameMax = 32 + ".webm".length
/**
 * Whether `name` (shaped like a clip) is the file of `entry`: a file of its
 * key under another container's name is not (without building the name).
 */
const isClipOf = (name: string, entry: CacheEntry): boolean => {
  const ext = entry.container ?? "mp4"
  return name.length === 33 + ext.length && name.endsWith(ext)
}
/** Sizes in a start-up listing of `clips/` that are not sizes. */
const vanished = -1
const notAClip = -2
/** Shared by every start-up stat: no options object per call. */
const noThrow = { throwIfNoEntry: false } as const
/** Clips statted by the background sweep between two turns of the event loop. */
const sweepSlice = 2000

const errnoOf = (error: unknown): string | undefined => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return typeof code === "string" ? code : undefined
}

const ioError = (op: string, path: string) => (error: unknown): Errors.CacheIOError => {
  const code = errnoOf(error)
  const message = error instanceof Error ? error.message : String(error)
  return new Errors.CacheIOError({
    op,
    path: (error as NodeJS.ErrnoException | undefined)?.path ?? path,
    // One line: node messages are, but a foreign error may not be.
    reason: message.split("\n")[0] ?? "unknown error",
    ...(code === undefined ? {} : { code })
  })
}

const assertKey = (key: string): void => {
  // Keys become file names: anything but a hash here is a bug, never a path.
  if (!keyPattern.test(key)) throw new Error(`not a cache key: ${JSON.stringify(key).slice(0, 80)}`)
}

/** Waits for a key lock: fast at first (a copy export takes ~20 ms), then every 50 ms at most. */
const keyLockSchedule = Schedule.exponential("2 millis", 1.5).pipe(
  Schedule.union(Schedule.spaced("50 millis")),
  Schedule.jittered
)
/** The index lock is held for microseconds: try often, and give up after `timeout` (a hung process). */
const indexLockSchedule = (timeout: Duration.Duration) =>
  Schedule.exponential("1 millis", 1.5).pipe(
    Schedule.union(Schedule.spaced("20 millis")),
    Schedule.jittered,
    Schedule.upTo(timeout)
  )

export const make = (
  options: StoreOptions
): Effect.Effect<
  FileSystemCacheStoreShape,
  Errors.CacheIOError,
  Config.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics | Scope.Scope
> =>
  Effect.gen(function*() {
    const config = yield* Config.CacheConfig
    const events = yield* CacheEvent.CacheEvents
    const metrics = yield* Metrics.Metrics
    const fs: Journal.SyncFs = options.fs ?? NodeFs
    const dirs = layout(options.cacheDir)
    const maxAgeMillis = Duration.toMillis(config.maxAge)
    const compactMinLines = options.compactMinLines ?? 1000
    const compactFactor = options.compactFactor ?? 4
    const indexLockTimeout = Duration.decode(options.indexLockTimeout ?? "30 seconds")

    const index = new Journal.Index()
    /** Active reservations of this process, by temp path. */
    const reservations = new Map<string, { readonly key: CacheKey; readonly token: string }>()
    const pins = new Map<CacheKey, number>()
    const pendingTouches = new Map<CacheKey, number>()

    // Plain concatenation: `path.join` would normalise again on every hit; dirs.clips is already absolute.
    const clipsPrefix = dirs.clips + NodePath.sep
    const clipPath = (key: CacheKey, container: Domain.Container | undefined): string =>
      clipsPrefix + CacheStore.clipFileName(key, container)
    const pathOf = (key: CacheKey): string => {
      assertKey(key)
      return clipPath(key, index.entries.get(key)?.container)
    }
    /** Where the exporter puts a clip before `commit` names it after its container. */
    const stagingPath = (key: CacheKey): string => clipPath(key, undefined)
    const keyLockPath = (key: CacheKey): string => NodePath.join(dirs.locks, `${key}.lock`)

    // -- locks --------------------------------------------------------------

    /**
     * Take the lock at `path`, trying again on the `schedule` while a live
     * process holds it. Each try runs uninterruptibly, and only the sleeps
     * between tries go through `restore`: an interruption can never land
     * between taking the lock and handing its token to the caller, which
     * would leak a lock this (live) process seems to hold forever. Call it
     * inside `Effect.uninterruptibleMask` and pass its `restore`.
     */
    const acquireLock = (
      path: string,
      schedule: Schedule.Schedule<unknown, unknown>,
      restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
      onGiveUp: () => Errors.CacheIOError
    ): Effect.Effect<string, Errors.CacheIOError> =>
      Effect.gen(function*() {
        const driver = yield* Schedule.driver(schedule)
        while (true) {
          const token = yield* Effect.try({ try: () => Lock.tryAcquire(path), catch: ioError("lock", path) })
          if (token !== undefined) return token
          yield* restore(driver.next(undefined)).pipe(Effect.mapError(onGiveUp))
        }
      })

    const indexLockGiveUp = (op: string) => () =>
      new Errors.CacheIOError({
        op,
        path: dirs.indexLock,
        reason: `the index lock was held by another process for more than ${Duration.format(indexLockTimeout)}`
      })

    /**
     * Run `body` holding the index lock. Every journal append and compaction
     * happens here; `body` is synchronous so the lock is held for
     * microseconds (a few ms for a compaction).
     */
    const withIndexLock = <A>(op: string, body: () => A): Effect.Effect<A, Errors.CacheIOError> =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          acquireLock(dirs.indexLock, indexLockSchedule(indexLockTimeout), restore, indexLockGiveUp(op)),
          (token) =>
            Effect.try({ try: body, catch: ioError(op, dirs.journal) }).pipe(
              Effect.ensuring(Effect.sync(() => Lock.release(dirs.indexLock, token)))
            )
        )
      )

    /** Append under the (held) index lock, compacting when the journal has grown. */
    const appendLocked = (records: ReadonlyArray<Journal.JournalRecord>): void => {
      Journal.append(fs, dirs.journal, index, records)
      if (Journal.compactionDue(index, compactMinLines, compactFactor)) Journal.compact(fs, dirs.journal, index)
    }

    const refresh = Effect.try({
      try: () => Journal.refresh(fs, dirs.journal, index),
      catch: ioError("read index", dirs.journal)
    })

    const publishUsage = Effect.suspend(() => metrics.usage(index.bytes, index.entries.size))

    // -- validation ---------------------------------------------------------

    /** The quick check: why `entry` cannot be served, or `undefined`. About 2 µs (one statSync). */
    const problemOf = (entry: CacheEntry, now: number): string | undefined => {
      const stat = fs.statSync(clipPath(entry.key, entry.container), { throwIfNoEntry: false })
      if (stat === undefined) return "clip file is missing"
      if (stat.size !== entry.sizeBytes) return `clip file has ${stat.size} bytes, the index says ${entry.sizeBytes}`
      // A pinned clip (being watched or streamed) outlives maxAge until it is released.
      if (Eviction.isExpired(entry, maxAgeMillis, now) && !pins.has(entry.key)) return "clip is older than maxAge"
      return undefined
    }

    /**
     * Remove entries (if they are still the same entries: another process
     * may have replaced or removed them) and their files, under the index
     * lock. The file goes first: a crash in between leaves an entry without
     * a file, which the next lookup or start-up drops.
     */
    const removeEntries = (
      victims: ReadonlyArray<{ readonly entry: CacheEntry; readonly reason: EvictionReason }>
    ): Effect.Effect<ReadonlyArray<CacheStore.Eviction>, Errors.CacheIOError> =>
      victims.length === 0 ? Effect.succeed([]) : withIndexLock("remove", () => {
        Journal.refresh(fs, dirs.journal, index)
        const gone: Array<CacheStore.Eviction> = []
        const records: Array<Journal.JournalRecord> = []
        for (const victim of victims) {
          const current = index.entries.get(victim.entry.key)
          if (current === undefined || current.id !== victim.entry.id) continue
          fs.rmSync(clipPath(current.key, current.container), { force: true })
          records.push({ o: "d", k: current.key })
          gone.push({ entry: current, reason: victim.reason })
        }
        appendLocked(records)
        return gone
      }).pipe(
        Effect.tap((gone) =>
          Effect.forEach(gone, ({ entry, reason }) =>
            Effect.zipRight(
              metrics.evicted(reason),
              events.publish(
                new CacheEvent.Evicted({ key: entry.key, videoId: entry.videoId, rallyIndex: entry.rallyIndex, reason })
              )
            ), { discard: true })
        ),
        Effect.zipLeft(publishUsage)
      )

    /** An entry failed the quick check: report it and drop it. */
    const invalidate = (entry: CacheEntry, problem: string, now: number) =>
      Effect.gen(function*() {
        yield* events.publish(new CacheEvent.EntryInvalid({ key: entry.key, reason: problem }))
        const reason: EvictionReason = problem === "clip is older than maxAge" || Eviction.isExpired(entry, maxAgeMillis, now)
          ? "age"
          : "invalid"
        yield* removeEntries([{ entry, reason }])
      })

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
        let compacted = false
        if (Journal.compactionDue(index, compactMinLines, compactFactor)) {
          Journal.compact(fs, dirs.journal, index)
          compacted = true
        }
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

    // -- touches ------------------------------------------------------------

    const flush: Effect.Effect<void, Errors.CacheIOError> = Effect.suspend(() => {
      if (pendingTouches.size === 0) return Effect.void
      const batch = Array.from(pendingTouches)
      pendingTouches.clear()
      return withIndexLock("touch", () => {
        Journal.refresh(fs, dirs.journal, index)
        const records: Array<Journal.JournalRecord> = []
        for (const [k, t] of batch) if (index.entries.has(k)) records.push({ o: "t", k, t })
        appendLocked(records)
      })
    })

    // The flusher sleeps until the first touch after a flush, so an idle store
    // has no timer (and a TestClock jump of days runs one flush, not one per second).
    const touched = yield* Queue.sliding<void>(1)
    yield* Queue.take(touched).pipe(
      Effect.zipRight(Effect.sleep(options.touchFlushInterval ?? "1 second")),
      Effect.zipRight(flush),
      Effect.catchAll((error) => Effect.logWarning(`rallycache: touches not saved: ${error.message}`)),
      Effect.forever,
      Effect.forkScoped
    )

    // On close: save touches, give back the keys of exports that never finished.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* flush.pipe(Effect.catchAll((error) => Effect.logWarning(`rallycache: touches not saved: ${error.message}`)))
        for (const [tempPath, held] of reservations) {
          fs.rmSync(tempPath, { force: true })
          Lock.release(keyLockPath(held.key), held.token)
        }
        reservations.clear()
        index.close(fs)
      })
    )

    // -- the service --------------------------------------------------------

    const lookup = (key: CacheKey): Effect.Effect<Option.Option<CacheEntry>> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        let entry = index.entries.get(key)
        if (entry === undefined) {
          // Maybe another process committed it: read what it appended (one statSync when nothing changed).
          try {
            Journal.refresh(fs, dirs.journal, index)
          } catch {
            return Effect.succeed(Option.none())
          }
          entry = index.entries.get(key)
          if (entry === undefined) return Effect.succeed(Option.none())
        }
        // A stat that fails (EIO...) proves nothing against the clip: a miss, and the entry stays
        // (reserve checks it again and fails with a typed CacheIOError). lookup never fails.
        let problem: string | undefined
        try {
          problem = problemOf(entry, now)
        } catch {
          return Effect.succeed(Option.none())
        }
        if (problem === undefined) return Effect.succeed(Option.some(entry))
        // Another process may have removed or replaced it: look again before blaming the entry.
        let problemNow: string | undefined
        let current: CacheEntry | undefined
        try {
          Journal.refresh(fs, dirs.journal, index)
          current = index.entries.get(key)
          if (current === undefined) return Effect.succeed(Option.none())
          problemNow = current === entry ? problem : problemOf(current, now)
        } catch {
          return Effect.succeed(Option.none())
        }
        if (problemNow === undefined) return Effect.succeed(Option.some(current))
        return invalidate(current, problemNow, now).pipe(
          Effect.catchAll((error) => Effect.logWarning(`rallycache: could not drop an invalid entry: ${error.message}`)),
          Effect.as(Option.none())
        )
      })

    const touch = (key: CacheKey): Effect.Effect<void> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.suspend(() => {
          if (!index.touchLocal(key, now)) return Effect.void
          const first = pendingTouches.size === 0
          pendingTouches.set(key, now)
          // The first touch of a batch wakes the flusher.
          return first ? Effect.asVoid(Queue.offer(touched, undefined)) : Effect.void
        }))

    type Decision =
      | { readonly _tag: "Reserved"; readonly reservation: Reservation }
      | { readonly _tag: "Cached"; readonly entry: CacheEntry }
      | { readonly _tag: "Invalid"; readonly entry: CacheEntry; readonly problem: string }

    const decide = (key: CacheKey, token: string, now: number): Decision => {
      Journal.refresh(fs, dirs.journal, index)
      const entry = index.entries.get(key)
      if (entry !== undefined) {
        const problem = problemOf(entry, now)
        if (problem === undefined) return { _tag: "Cached", entry }
        return { _tag: "Invalid", entry, problem }
      }
      const tempPath = NodePath.join(dirs.tmp, `${key}.${Crypto.randomUUID()}.part`)
      reservations.set(tempPath, { key, token })
      return { _tag: "Reserved", reservation: { key, tempPath, finalPath: stagingPath(key) } }
    }

    const reserve = (key: CacheKey): Effect.Effect<CacheStore.ReserveResult, Errors.CacheIOError> =>
      Effect.suspend(() => {
        assertKey(key)
        return Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(acquireLock(keyLockPath(key), keyLockSchedule, restore, () => {
            throw new Error("unreachable: the key lock schedule never ends")
          }), (token) => {
            const unlock = Effect.sync(() => Lock.release(keyLockPath(key), token))
            return Effect.flatMap(Clock.currentTimeMillis, (now) =>
              Effect.try({ try: () => decide(key, token, now), catch: ioError("reserve", dirs.journal) }).pipe(
                Effect.flatMap((decision): Effect.Effect<CacheStore.ReserveResult, Errors.CacheIOError> => {
                  switch (decision._tag) {
                    case "Cached":
                      return Effect.as(unlock, { _tag: "Cached", entry: decision.entry })
                    case "Reserved":
                      return Effect.succeed({ _tag: "Reserved", reservation: decision.reservation })
                    case "Invalid":
                      // We hold the key: drop the bad entry, then the key is ours to re-export.
                      return invalidate(decision.entry, decision.problem, now).pipe(
                        Effect.flatMap(() =>
                          Effect.sync(() => {
                            const tempPath = NodePath.join(dirs.tmp, `${key}.${Crypto.randomUUID()}.part`)
                            reservations.set(tempPath, { key, token })
                            return {
                              _tag: "Reserved",
                              reservation: { key, tempPath, finalPath: stagingPath(key) }
                            } as const
                          })
                        )
                      )
                  }
                }),
                Effect.tapErrorCause(() => unlock)
              )
            )
          })
        )
      })

    const finish = (reservation: Reservation, removeFinal: boolean, moved?: string): void => {
      const held = reservations.get(reservation.tempPath)
      try {
        fs.rmSync(reservation.tempPath, { force: true })
      } catch {
        // a temp file that cannot be removed now is removed at the next start-up
      }
      if (held === undefined) return
      reservations.delete(reservation.tempPath)
      if (removeFinal) {
        try {
          fs.rmSync(stagingPath(held.key), { force: true })
          if (moved !== undefined) fs.rmSync(moved, { force: true })
        } catch {
          // not in the index: the next start-up removes it
        }
      }
      Lock.release(keyLockPath(held.key), held.token)
    }

    const commit = (
      reservation: Reservation,
      input: CacheStore.NewEntry
    ): Effect.Effect<CacheEntry, Errors.CacheIOError> =>
      Effect.suspend(() => {
        const held = reservations.get(reservation.tempPath)
        if (held === undefined || held.key !== reservation.key) {
          return Effect.fail(
            new Errors.CacheIOError({
              op: "commit",
              path: reservation.finalPath,
              reason: "this reservation is not active (already committed or aborted); reserve the key again"
            })
          )
        }
        const finalPath = clipPath(held.key, input.container)
        return Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.try({
            try: () => {
              // The exporter chose the container: name the clip after it.
              if (input.container !== undefined && input.container !== "mp4") {
                fs.renameSync(stagingPath(held.key), finalPath)
              }
              const stat = fs.statSync(finalPath)
              // The rename into clips/ must be durable before the index points at it.
              Journal.syncDir(fs, dirs.clips)
              return stat.size
            },
            catch: ioError("commit", finalPath)
          }).pipe(
            Effect.flatMap((sizeBytes) => {
              const entry = CacheStore.makeEntry(Crypto.randomUUID(), held.key, { ...input, sizeBytes }, now)
              return Effect.as(withIndexLock("commit", () => appendLocked([{ o: "p", e: entry }])), entry)
            }),
            // Committed or not, the key is released; an unrecorded clip is removed, never left unknown.
            Effect.onExit((exit) => Effect.sync(() => finish(reservation, exit._tag === "Failure", finalPath))),
            Effect.zipLeft(publishUsage)
          )
        )
      })

    const abort = (reservation: Reservation): Effect.Effect<void> => Effect.sync(() => finish(reservation, true))

    const remove = (key: CacheKey, reason: EvictionReason): Effect.Effect<boolean, Errors.CacheIOError> =>
      Effect.suspend(() => {
        assertKey(key)
        return refresh.pipe(
          Effect.flatMap(() => {
            const entry = index.entries.get(key)
            if (entry === undefined) return Effect.succeed(false)
            return Effect.map(removeEntries([{ entry, reason }]), (gone) => gone.length > 0)
          })
        )
      })

    const list = Effect.map(refresh, () => Array.from(index.entries.values()))

    const usage = refresh.pipe(
      Effect.catchAll(() => Effect.succeed(false)),
      Effect.map(() => ({ bytes: index.bytes, entries: index.entries.size }))
    )

    const markValidated = (key: CacheKey, status: Domain.ValidationStatus) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        withIndexLock("mark validated", () => {
          Journal.refresh(fs, dirs.journal, index)
          if (index.entries.has(key)) appendLocked([{ o: "v", k: key, s: status, t: now }])
        }))

    const pin = (key: CacheKey): Effect.Effect<void, never, Scope.Scope> =>
      Effect.acquireRelease(
        Effect.sync(() => {
          pins.set(key, (pins.get(key) ?? 0) + 1)
        }),
        () =>
          Effect.sync(() => {
            const count = (pins.get(key) ?? 1) - 1
            if (count <= 0) pins.delete(key)
            else pins.set(key, count)
          })
      )

    const enforce = Effect.gen(function*() {
      yield* refresh
      const now = yield* Clock.currentTimeMillis
      const plan = Eviction.planEviction(
        Array.from(index.entries.values()),
        { maxBytes: config.maxBytes, maxAge: config.maxAge, maxEntriesPerVideo: config.maxEntriesPerVideo },
        now,
        new Set(pins.keys())
      )
      return yield* removeEntries(plan)
    })

    return {
      layout: dirs,
      startup,
      reconciled: Deferred.await(reconciledDone),
      flush,
      pathOf,
      lookup,
      has: (key: CacheKey) => Effect.sync(() => index.entries.has(key)),
      touch,
      reserve,
      commit,
      abort,
      remove,
      list,
      usage,
      markValidated,
      pin,
      enforce
    } satisfies FileSystemCacheStoreShape
  })
