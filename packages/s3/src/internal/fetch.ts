/**
 * Clips coming down from the bucket: the committed, unexpired row of a key,
 * and the download of its object into a local reservation, checked against
 * the row (size and ETag). A row whose object is damaged, or that is older
 * than `maxAge`, is removed with its object so that the key is exported
 * again.
 *
 * @internal
 */
import { CacheEvent, Errors } from "@rallycache/core"
import type { CacheStore, Config, Domain } from "@rallycache/core"
import type { FileSystemCacheStore } from "@rallycache/node"
import { Clock, Duration, Effect, Option } from "effect"
import * as Fs from "node:fs"
import { ioError, logFailure } from "./failures.js"
import { Mismatch, type Objects } from "./objects.js"
import type { ClipRow, SqlIndex } from "./sqlIndex.js"

type CacheKey = Domain.CacheKey
type CacheEntry = Domain.CacheEntry

export const make = (deps: {
  readonly config: Config.RallyCacheConfig
  readonly events: CacheEvent.CacheEventsShape
  readonly index: SqlIndex
  readonly objects: Objects
  readonly local: FileSystemCacheStore.FileSystemCacheStore
}) => {
  const { config, events, index, local, objects } = deps

  const isExpired = (entry: CacheEntry, now: number) => now - entry.createdAt > Duration.toMillis(config.maxAge)

  /** Remove a row that must not be served (still pointing at its object), then its object. */
  const dropRow = (row: ClipRow, reason: string) =>
    index.remove(row.entry.key, row.objectKey).pipe(
      Effect.flatMap((removed) =>
        Option.isSome(removed)
          ? objects.remove([row.objectKey]).pipe(
            Effect.catchAll(logFailure(`object ${row.objectKey} left for the sweep`)),
            Effect.zipRight(events.publish(new CacheEvent.EntryInvalid({ key: row.entry.key, reason })))
          )
          : Effect.void
      ),
      Effect.mapError(ioError("drop", row.entry.key))
    )

  /**
   * Download the object of `row` into the local reservation and commit it
   * there. `None` when the object does not match its row: the row and the
   * object are removed (the key is exported again).
   */
  const fetchInto = (row: ClipRow, reservation: CacheStore.Reservation) =>
    Effect.suspend(() => {
      Fs.rmSync(reservation.tempPath, { force: true })
      return objects.download(row.objectKey, reservation.tempPath, {
        bytes: row.entry.sizeBytes,
        etag: row.etag,
        etagKind: row.etagKind
      })
    }).pipe(
      Effect.flatMap(() =>
        Effect.try({
          try: () => Fs.renameSync(reservation.tempPath, reservation.finalPath),
          catch: ioError("download", reservation.finalPath)
        })
      ),
      Effect.flatMap(() => Effect.map(local.commit(reservation, entryInput(row.entry)), Option.some)),
      Effect.catchAll((error) =>
        error instanceof Mismatch
          ? Effect.as(dropRow(row, `object ${row.objectKey} is damaged: ${error.message}`), Option.none())
          : Effect.fail(error instanceof Errors.CacheIOError ? error : ioError("download", row.objectKey)(error))
      )
    )

  /** A committed, unexpired row of `key`; an expired one is removed on the way. */
  const liveRow = (key: CacheKey) =>
    Effect.gen(function*() {
      const row = yield* index.find(key).pipe(Effect.mapError(ioError("lookup", key)))
      if (Option.isNone(row)) return Option.none<ClipRow>()
      if (isExpired(row.value.entry, yield* Clock.currentTimeMillis)) {
        yield* dropRow(row.value, "older than maxAge")
        return Option.none<ClipRow>()
      }
      return row
    })

  return { liveRow, fetchInto }
}

/** What the local commit of a downloaded clip records: the row's entry. */
const entryInput = (entry: CacheEntry): CacheStore.NewEntry => ({
  videoId: entry.videoId,
  rallyIndex: entry.rallyIndex,
  mode: entry.mode,
  clipStart: entry.clipStart,
  clipEnd: entry.clipEnd,
  firstFrame: entry.firstFrame,
  leadIn: entry.leadIn,
  container: entry.container,
  sizeBytes: entry.sizeBytes,
  priority: entry.priority
})
