/**
 * The cluster leases of this store's reservations: a key reserved for an
 * export is leased in Postgres under the store's owner name, renewed while
 * the export runs, and given back when it is committed, aborted, or the
 * store closes (never left to expire while this runner is alive).
 *
 * @internal
 */
import type { Domain } from "@rallycache/core"
import { Duration, Effect, Exit, Option, Schedule, Scope } from "effect"
import { logFailure } from "./failures.js"
import type { SqlIndex } from "./sqlIndex.js"

type CacheKey = Domain.CacheKey

/** A reservation's lease: its key and the scope of its renewal fiber. */
interface Held {
  readonly key: CacheKey
  readonly renewal: Scope.CloseableScope
}

export const make = (deps: { readonly index: SqlIndex; readonly owner: string; readonly ttl: number }) => {
  const { index, owner, ttl } = deps
  // By reservation temp path: a key can be reserved again once its reservation ended.
  const held = new Map<string, Held>()

  /** The key whose lease the reservation at `tempPath` holds, if it still holds one. */
  const keyOf = (tempPath: string): CacheKey | undefined => held.get(tempPath)?.key

  /** Stop renewing the lease of a reservation (and forget it); its row stays. */
  const stopRenewal = (tempPath: string) =>
    Effect.suspend(() => {
      const h = held.get(tempPath)
      if (h === undefined) return Effect.succeed(Option.none<CacheKey>())
      held.delete(tempPath)
      return Effect.as(Scope.close(h.renewal, Exit.void), Option.some(h.key))
    })

  /** Give the lease of a reservation back. */
  const release = (tempPath: string) =>
    Effect.flatMap(stopRenewal(tempPath), (key) =>
      Option.isNone(key)
        ? Effect.void
        : index.release(key.value, owner).pipe(Effect.catchAll(logFailure(`lease of ${key.value} not released`))))

  /** Give back every lease still held (the store is closing). */
  const releaseAll = Effect.suspend(() => Effect.forEach(Array.from(held.keys()), release, { discard: true }))

  const renewal = (key: CacheKey) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      yield* index.renew(key, owner, ttl).pipe(
        Effect.flatMap((ours) =>
          ours ? Effect.void : Effect.logWarning(`rallycache/s3: the lease of ${key} was taken over`)
        ),
        Effect.catchAll(logFailure(`lease of ${key} not renewed`)),
        Effect.schedule(Schedule.spaced(Duration.millis(Math.max(1, Math.floor(ttl / 3))))),
        // Forked from an uninterruptible region: the fiber must still stop when its scope closes.
        Effect.interruptible,
        Effect.forkIn(scope)
      )
      return scope
    })

  /** Keep renewing the lease of `key`, just acquired, for the reservation at `tempPath`. */
  const hold = (key: CacheKey, tempPath: string) =>
    Effect.uninterruptible(
      Effect.map(renewal(key), (scope) => {
        held.set(tempPath, { key, renewal: scope })
      })
    )

  return { keyOf, stopRenewal, release, releaseAll, hold }
}

export type Leases = ReturnType<typeof make>
