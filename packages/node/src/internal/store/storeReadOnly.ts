/**
 * The disk cache store opened read-only: for commands that only look at a
 * cache folder (`cache stats`, `doctor`), which must work on a folder they
 * cannot write (a read-only mount, another user's cache).
 *
 * Nothing is created, repaired (`reconciled` reports nothing done) or locked, except that the per-clip
 * locks of dead processes are removed where the folder allows it: the journal is read as it is
 * (its readers never need the index lock, since writers only append or
 * rename a new journal into place), and every method that would write
 * fails with a `CacheIOError` that says so.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import type { Domain } from "@rallycache/core"
import { CacheStore, Config, Errors, Eviction, Metrics } from "@rallycache/core"
import { Clock, Duration, Effect, Option } from "effect"
import type { Scope } from "effect"
import type { FileSystemCacheStoreShape, StartupReport } from "./store.js"
import * as Journal from "./storeJournal.js"
import * as Lock from "./storeLock.js"
import { keyPattern, layout } from "./storeLayout.js"

export interface ReadOnlyOptions {
  readonly cacheDir: string
  readonly fs?: Journal.SyncFs | undefined
}

export const makeReadOnly = (
  options: ReadOnlyOptions
): Effect.Effect<FileSystemCacheStoreShape, Errors.CacheIOError, Config.CacheConfig | Metrics.Metrics | Scope.Scope> =>
  Effect.gen(function*() {
    const fs: Journal.SyncFs = options.fs ?? NodeFs
    const dirs = layout(options.cacheDir)
    const config = yield* Config.CacheConfig
    const metrics = yield* Metrics.Metrics
    const maxAgeMillis = Duration.toMillis(config.maxAge)
    const index = new Journal.Index()

    const readError = (error: unknown) =>
      new Errors.CacheIOError({
        op: "read index",
        path: dirs.journal,
        reason: error instanceof Error ? (error.message.split("\n")[0] ?? "unknown error") : String(error),
        ...(typeof (error as NodeJS.ErrnoException).code === "string"
          ? { code: (error as NodeJS.ErrnoException).code! }
          : {})
      })
    const refresh = Effect.try({ try: () => Journal.refresh(fs, dirs.journal, index), catch: readError })
    const readOnly = (op: string) =>
      Effect.fail(
        new Errors.CacheIOError({
          op,
          path: dirs.root,
          reason: "the cache folder was opened read-only (use a command that maintains the cache)"
        })
      )

    const started = performance.now()
    // The one change a read-only open makes, where it can: per-clip locks
    // left by a killed process of this host, so they do not outlive it.
    const removedLocks = options.fs === undefined ? Lock.sweepDead(dirs.locks) : 0
    yield* Effect.acquireRelease(refresh, () => Effect.sync(() => index.close(fs)))
    yield* metrics.usage(index.bytes, index.entries.size)
    const startup: StartupReport = {
      entries: index.entries.size,
      bytes: index.bytes,
      dropped: [],
      removedUnknown: 0,
      removedTemp: 0,
      removedLocks,
      skippedLines: index.skipped,
      compacted: false,
      millis: performance.now() - started
    }

    const pathOf = (key: Domain.CacheKey): string => {
      if (!keyPattern.test(key)) throw new Error(`not a cache key: ${JSON.stringify(key).slice(0, 80)}`)
      return `${dirs.clips}/${CacheStore.clipFileName(key, index.entries.get(key)?.container)}`
    }

    const lookup = (key: Domain.CacheKey): Effect.Effect<Option.Option<Domain.CacheEntry>> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.sync(() => {
          try {
            Journal.refresh(fs, dirs.journal, index)
            const entry = index.entries.get(key)
            if (entry === undefined || Eviction.isExpired(entry, maxAgeMillis, now)) return Option.none()
            const stat = fs.statSync(pathOf(key), { throwIfNoEntry: false })
            return stat?.size === entry.sizeBytes ? Option.some(entry) : Option.none()
          } catch {
            return Option.none()
          }
        }))

    return {
      layout: dirs,
      startup,
      reconciled: Effect.succeed({ dropped: [], removedUnknown: 0, millis: 0 }),
      flush: Effect.void,
      pathOf,
      lookup,
      has: (key: Domain.CacheKey) => Effect.sync(() => index.entries.has(key)),
      touch: () => Effect.void,
      reserve: () => readOnly("reserve"),
      commit: () => readOnly("commit"),
      abort: () => Effect.void,
      remove: () => readOnly("remove"),
      list: Effect.map(refresh, () => Array.from(index.entries.values())),
      usage: refresh.pipe(
        Effect.catchAll(() => Effect.succeed(false)),
        Effect.map((): CacheStore.Usage => ({ bytes: index.bytes, entries: index.entries.size }))
      ),
      markValidated: () => readOnly("mark validated"),
      pin: () => Effect.void,
      enforce: readOnly("enforce")
    } satisfies FileSystemCacheStoreShape
  })
