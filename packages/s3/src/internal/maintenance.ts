/**
 * The object store's limits and sweep: `enforce` applies the cluster's
 * limits in SQL (rows first, then objects), then the local cache's own, and
 * drops local copies whose rows are gone; `sweep` deletes orphan objects
 * (no row, older than the grace) and stale local copies.
 *
 * @internal
 */
import { CacheEvent } from "@rallycache/core"
import type { CacheStore, Config, Domain, Errors } from "@rallycache/core"
import type { FileSystemCacheStore } from "@rallycache/node"
import { Clock, Duration, Effect } from "effect"
import { ioError, logFailure } from "./failures.js"
import type { Objects } from "./objects.js"
import type { SqlIndex } from "./sqlIndex.js"

/** What one sweep found and removed. */
export interface SweepReport {
  /** Objects under `clips/` older than the grace that no row points at, deleted. */
  readonly orphansDeleted: ReadonlyArray<string>
  /** Local hot copies whose row is gone, dropped. */
  readonly localDropped: number
}

export const make = (deps: {
  readonly config: Config.RallyCacheConfig
  readonly events: CacheEvent.CacheEventsShape
  readonly index: SqlIndex
  readonly objects: Objects
  readonly local: FileSystemCacheStore.FileSystemCacheStore
  readonly pins: ReadonlyMap<Domain.CacheKey, number>
  readonly flush: Effect.Effect<void>
  readonly clipsPrefix: string
  readonly table: string
  readonly orphanGrace: Duration.Duration
}): {
  readonly enforce: Effect.Effect<ReadonlyArray<CacheStore.Eviction>, Errors.CacheIOError>
  readonly sweep: Effect.Effect<SweepReport, Errors.CacheIOError>
} => {
  const { clipsPrefix, config, events, flush, index, local, objects, pins } = deps
  const options = { table: deps.table, orphanGrace: deps.orphanGrace }

  /** Drop local copies of rows that are gone (evicted or removed by another runner). */
  const syncLocal = Effect.gen(function*() {
    const entries = yield* local.list
    const alive = yield* index.existing(entries.map((entry) => entry.key)).pipe(
      Effect.mapError(ioError("sync", options.table))
    )
    let dropped = 0
    for (const entry of entries) {
      if (!alive.has(entry.key) && !pins.has(entry.key)) {
        if (yield* local.remove(entry.key, "manual")) dropped++
      }
    }
    return dropped
  })

  const enforce = Effect.gen(function*() {
    yield* flush
    const now = yield* Clock.currentTimeMillis
    const evicted = yield* index.evict(
      {
        maxBytes: config.maxBytes,
        maxAgeMillis: Duration.toMillis(config.maxAge),
        maxEntriesPerVideo: config.maxEntriesPerVideo
      },
      now,
      Array.from(pins.keys())
    ).pipe(Effect.mapError(ioError("enforce", options.table)))
    // Rows first, then objects: a clip is gone once its row is.
    yield* objects.remove(evicted.map(({ row }) => row.objectKey)).pipe(
      Effect.catchAll(logFailure("evicted objects left for the sweep"))
    )
    for (const { reason, row } of evicted) {
      const here = yield* local.remove(row.entry.key, reason)
      if (!here) {
        yield* events.publish(
          new CacheEvent.Evicted({
            key: row.entry.key,
            videoId: row.entry.videoId,
            rallyIndex: row.entry.rallyIndex,
            reason
          })
        )
      }
    }
    yield* local.enforce
    yield* syncLocal
    return evicted.map(({ reason, row }) => ({ entry: row.entry, reason }))
  })

  const sweep = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const grace = Duration.toMillis(options.orphanGrace)
    const listed = yield* objects.list(clipsPrefix).pipe(Effect.mapError(ioError("sweep", clipsPrefix)))
    const old = listed.filter((object) => now - object.modified > grace).map((object) => object.key)
    const referenced = yield* index.referenced(old).pipe(Effect.mapError(ioError("sweep", options.table)))
    const orphans = old.filter((key) => !referenced.has(key))
    yield* objects.remove(orphans).pipe(Effect.mapError(ioError("sweep", clipsPrefix)))
    yield* index.dropExpiredLeases.pipe(Effect.catchAll(logFailure("expired leases not dropped")))
    const localDropped = yield* syncLocal
    return { orphansDeleted: orphans, localDropped } satisfies SweepReport
  })

  return { enforce, sweep }
}
