/**
 * The disk cache store: implementation of its operations (lookup, reserve,
 * commit, remove, eviction), built on the shared state of `storeContext.ts`.
 * See `FileSystemCacheStore` for the public API and the package README for
 * the design.
 *
 * @internal
 */
import * as Crypto from "node:crypto"
import * as NodePath from "node:path"
import { CacheStore, Errors, Eviction } from "@rallycache/core"
import type { CacheEvent, Config, Domain, Metrics } from "@rallycache/core"
import { Clock, Deferred, Effect, Option } from "effect"
import type { Scope } from "effect"
import { ioError, keyLockSchedule, makeContext } from "./storeContext.js"
import type { StoreOptions } from "./storeContext.js"
import * as Journal from "./storeJournal.js"
import type { Layout } from "./storeLayout.js"
import { assertKey } from "./storeLayout.js"
import * as Lock from "./storeLock.js"
import type { Reconciliation, StartupReport } from "./storeReconcile.js"
import { startUp } from "./storeReconcile.js"
import { makeTouches } from "./storeTouches.js"

export type { StoreOptions } from "./storeContext.js"
export type { Layout } from "./storeLayout.js"
export { layout } from "./storeLayout.js"
export type { Reconciliation, StartupReport } from "./storeReconcile.js"

type CacheEntry = Domain.CacheEntry
type CacheKey = Domain.CacheKey
type EvictionReason = Domain.EvictionReason
type CacheStoreShape = CacheStore.CacheStoreShape
type Reservation = CacheStore.Reservation

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

export const make = (
  options: StoreOptions
): Effect.Effect<
  FileSystemCacheStoreShape,
  Errors.CacheIOError,
  Config.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics | Scope.Scope
> =>
  Effect.gen(function*() {
    const ctx = yield* makeContext(options)
    const {
      acquireLock,
      appendLocked,
      clipPath,
      config,
      dirs,
      fs,
      index,
      invalidate,
      keyLockPath,
      pathOf,
      pins,
      problemOf,
      publishUsage,
      refresh,
      removeEntries,
      reservations,
      stagingPath,
      withIndexLock
    } = ctx

    const { reconciledDone, startup } = yield* startUp(ctx)
    const { flush, touch } = yield* makeTouches(ctx)

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

    const pin = (key: CacheKey): Effect.Effect<void, never, Scope.Scope> => CacheStore.pinCounted(pins, key)

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
