/**
 * The state the disk cache store's operations share (index, reservations,
 * pins, paths) and the index lock through which every journal write goes:
 * start-up, the touch flusher and the cache operations live in separate
 * modules, and all of them must write the journal under the same lock and
 * judge a clip by the same quick check.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { CacheEvent, CacheStore, Config, Domain, Errors, Eviction, Metrics } from "@rallycache/core"
import { Duration, Effect, Schedule } from "effect"
import * as Journal from "./storeJournal.js"
import { assertKey, layout } from "./storeLayout.js"
import type { Layout } from "./storeLayout.js"
import * as Lock from "./storeLock.js"

type CacheEntry = Domain.CacheEntry
type CacheKey = Domain.CacheKey
type EvictionReason = Domain.EvictionReason

export interface StoreOptions {
  readonly cacheDir: string
  readonly touchFlushInterval?: Duration.DurationInput | undefined
  readonly compactMinLines?: number | undefined
  readonly compactFactor?: number | undefined
  readonly indexLockTimeout?: Duration.DurationInput | undefined
  readonly fs?: Journal.SyncFs | undefined
  readonly reconcile?: "startup" | "background" | undefined
}

export const errnoOf = (error: unknown): string | undefined => {
  const code = (error as NodeJS.ErrnoException | undefined)?.code
  return typeof code === "string" ? code : undefined
}

export const ioError = (op: string, path: string) => (error: unknown): Errors.CacheIOError => {
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

/** Waits for a key lock: fast at first (a copy export takes ~20 ms), then every 50 ms at most. */
export const keyLockSchedule = Schedule.exponential("2 millis", 1.5).pipe(
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

/** What the store's modules share; built once per store by `makeContext`. */
export interface StoreContext {
  readonly options: StoreOptions
  readonly config: Config.CacheConfig["Type"]
  readonly events: CacheEvent.CacheEvents["Type"]
  readonly metrics: Metrics.Metrics["Type"]
  readonly fs: Journal.SyncFs
  readonly dirs: Layout
  readonly maxAgeMillis: number
  readonly compactMinLines: number
  readonly compactFactor: number
  readonly index: Journal.Index
  /** Active reservations of this process, by temp path. */
  readonly reservations: Map<string, { readonly key: CacheKey; readonly token: string }>
  readonly pins: Map<CacheKey, number>
  /** `dirs.clips` and a path separator. */
  readonly clipsPrefix: string
  readonly clipPath: (key: CacheKey, container: Domain.Container | undefined) => string
  readonly pathOf: (key: CacheKey) => string
  readonly stagingPath: (key: CacheKey) => string
  readonly keyLockPath: (key: CacheKey) => string
  readonly acquireLock: (
    path: string,
    schedule: Schedule.Schedule<unknown, unknown>,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>,
    onGiveUp: () => Errors.CacheIOError
  ) => Effect.Effect<string, Errors.CacheIOError>
  readonly withIndexLock: <A>(op: string, body: () => A) => Effect.Effect<A, Errors.CacheIOError>
  readonly appendLocked: (records: ReadonlyArray<Journal.JournalRecord>) => void
  readonly refresh: Effect.Effect<void, Errors.CacheIOError>
  readonly publishUsage: Effect.Effect<void>
  readonly problemOf: (entry: CacheEntry, now: number) => string | undefined
  readonly removeEntries: (
    victims: ReadonlyArray<{ readonly entry: CacheEntry; readonly reason: EvictionReason }>
  ) => Effect.Effect<ReadonlyArray<CacheStore.Eviction>, Errors.CacheIOError>
  readonly invalidate: (entry: CacheEntry, problem: string, now: number) => Effect.Effect<void, Errors.CacheIOError>
}

export const makeContext = (
  options: StoreOptions
): Effect.Effect<StoreContext, never, Config.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics> =>
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

    /** Append under the (held) index lock, compacting when the journal has grown (a failed compaction fails nothing). */
    const appendLocked = (records: ReadonlyArray<Journal.JournalRecord>): void => {
      Journal.append(fs, dirs.journal, index, records)
      Journal.compactIfDue(fs, dirs.journal, index, compactMinLines, compactFactor)
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

    return {
      options,
      config,
      events,
      metrics,
      fs,
      dirs,
      maxAgeMillis,
      compactMinLines,
      compactFactor,
      index,
      reservations,
      pins,
      clipsPrefix,
      clipPath,
      pathOf,
      stagingPath,
      keyLockPath,
      acquireLock,
      withIndexLock,
      appendLocked,
      refresh,
      publishUsage,
      problemOf,
      removeEntries,
      invalidate
    } satisfies StoreContext
  })
