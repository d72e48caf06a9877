/**
 * The object-store `CacheStore`: Postgres rows are the index and the commit
 * point, clips are objects in a bucket, and a `FileSystemCacheStore` on
 * local disk sits in front as a bounded read-through cache whose paths are
 * the ones handed to the manager. See `S3CacheStore` for the public API.
 * The leases are `leases`, the downloads `fetch`, the limits and the sweep
 * `maintenance`.
 *
 * @internal
 */
import type { S3Client } from "@aws-sdk/client-s3"
import { CacheEvent, CacheStore, Config, Domain, Errors } from "@rallycache/core"
import type { Metrics } from "@rallycache/core"
import { FileSystemCacheStore } from "@rallycache/node"
import { Clock, Duration, Effect, Option, Schedule, Scope } from "effect"
import * as Crypto from "node:crypto"
import { ioError, logFailure } from "./failures.js"
import * as Fetch from "./fetch.js"
import * as Leases from "./leases.js"
import * as Maintenance from "./maintenance.js"
import { make as makeObjects } from "./objects.js"
import { type ClipRow, make as makeIndex } from "./sqlIndex.js"
import type { SqlClient } from "@effect/sql"

type CacheKey = Domain.CacheKey
type CacheEntry = Domain.CacheEntry
type Reservation = CacheStore.Reservation

/** Settings resolved by `S3CacheStore` (defaults applied). */
export interface Resolved {
  readonly client: S3Client
  readonly bucket: string
  readonly prefix: string
  readonly cacheDir: string
  readonly localMaxBytes: number | undefined
  readonly table: string
  readonly leaseDuration: Duration.Duration
  readonly pollInterval: Duration.Duration
  readonly sweepInterval: Duration.Duration
  readonly orphanGrace: Duration.Duration
  readonly touchFlushInterval: Duration.Duration
  readonly partSize: number
}

export type { SweepReport } from "./maintenance.js"

export interface S3CacheStoreShape extends CacheStore.CacheStoreShape {
  /** The name this store's leases are held under. */
  readonly owner: string
  /** Delete orphan objects and stale local copies now (also run every `sweepInterval`). */
  readonly sweep: Effect.Effect<Maintenance.SweepReport, Errors.CacheIOError>
  /** Write batched touches to Postgres now (also every `touchFlushInterval` and on close). */
  readonly flush: Effect.Effect<void>
  /** The local hot cache in front of the bucket. */
  readonly local: FileSystemCacheStore.FileSystemCacheStore
  /** Every committed clip of the cluster (`list` is the clips on this machine's disk). */
  readonly listAll: Effect.Effect<ReadonlyArray<CacheEntry>, Errors.CacheIOError>
}

const contentTypes = Domain.containerMediaTypes


/** The key is leased by a live runner: wait and look again. */
class Busy {
  readonly _tag = "Busy"
}

export const make = (
  options: Resolved
): Effect.Effect<
  S3CacheStoreShape,
  Errors.CacheIOError,
  Config.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics | SqlClient.SqlClient | Scope.Scope
> =>
  Effect.gen(function*() {
    const config = yield* Config.CacheConfig
    const events = yield* CacheEvent.CacheEvents
    const index = yield* makeIndex(options.table)
    const objects = makeObjects(options.client, options.bucket, options.partSize)
    const owner = `${config.runnerId}/${Crypto.randomUUID()}`
    const ttl = Duration.toMillis(options.leaseDuration)
    const clipsPrefix = `${options.prefix}clips/`

    yield* index.migrate.pipe(Effect.mapError(ioError("migrate", options.table)))

    const localConfig = new Config.RallyCacheConfig({ ...config, maxBytes: options.localMaxBytes ?? config.maxBytes })
    const local = yield* FileSystemCacheStore.make({ cacheDir: options.cacheDir }).pipe(
      Effect.provideService(Config.CacheConfig, localConfig)
    )

    const leases = Leases.make({ index, owner, ttl })
    const { fetchInto, liveRow } = Fetch.make({ config, events, index, objects, local })
    const pins = new Map<CacheKey, number>()
    let touched = new Set<CacheKey>()

    const flush = Effect.suspend(() => {
      if (touched.size === 0) return Effect.void
      const keys = Array.from(touched)
      touched = new Set()
      return Effect.flatMap(Clock.currentTimeMillis, (now) => index.touch(keys, now)).pipe(
        Effect.catchAll(logFailure("touches not saved"))
      )
    })

    // On close: give back the leases of exports that never finished, save touches.
    yield* Effect.addFinalizer(() => Effect.zipRight(leases.releaseAll, flush))

    /**
     * Holding the local lock of `key`: serve its committed object, or take
     * the cluster lease and hand the key to the caller, or fail with `Busy`
     * while another runner's lease runs.
     */
    const claim = (key: CacheKey, reservation: Reservation) =>
      Effect.gen(function*() {
        const row = yield* liveRow(key)
        if (Option.isSome(row)) {
          const entry = yield* fetchInto(row.value, reservation)
          if (Option.isSome(entry)) return { _tag: "Cached", entry: entry.value } as const
        }
        const ours = yield* index.acquire(key, owner, ttl).pipe(Effect.mapError(ioError("lease", key)))
        if (!ours) return yield* Effect.fail(new Busy())
        return yield* Effect.gen(function*() {
          // A commit may have landed between the look and the lease.
          const late = yield* liveRow(key)
          if (Option.isSome(late)) {
            const entry = yield* fetchInto(late.value, reservation)
            if (Option.isSome(entry)) {
              yield* index.release(key, owner).pipe(Effect.ignore)
              return { _tag: "Cached", entry: entry.value } as const
            }
          }
          return yield* Effect.as(leases.hold(key, reservation.tempPath), { _tag: "Reserved", reservation } as const)
        }).pipe(
          // Failed or interrupted between the lease and the hand-over: give the key back now, not at its expiry.
          Effect.onError(() => index.release(key, owner).pipe(Effect.ignore))
        )
      })

    const waitSchedule = Schedule.exponential(Duration.millis(20), 1.5).pipe(
      Schedule.modifyDelay((delay) => Duration.min(delay, options.pollInterval))
    )

    const reserve = (key: CacheKey): Effect.Effect<CacheStore.ReserveResult, Errors.CacheIOError> =>
      Effect.flatMap(local.reserve(key), (first) => {
        if (first._tag === "Cached") return Effect.succeed(first)
        const reservation = first.reservation
        return claim(key, reservation).pipe(
          Effect.retry({ schedule: waitSchedule, while: (error) => error instanceof Busy }),
          // Busy never escapes: the schedule above has no end.
          Effect.catchIf((error): error is Busy => error instanceof Busy, () => Effect.die("unreachable")),
          Effect.onExit((exit) => exit._tag === "Failure" ? local.abort(reservation) : Effect.void)
        )
      })

    const commit = (reservation: Reservation, input: CacheStore.NewEntry) =>
      Effect.gen(function*() {
        if (leases.keyOf(reservation.tempPath) !== reservation.key) {
          return yield* new Errors.CacheIOError({
            op: "commit",
            path: reservation.finalPath,
            reason: "this reservation is not active (already committed or aborted); reserve the key again"
          })
        }
        const container = input.container ?? "mp4"
        const objectKey = `${clipsPrefix}${reservation.key}.${Crypto.randomUUID()}.${container}`
        const uploaded = yield* objects.upload(objectKey, reservation.finalPath, contentTypes[container]).pipe(
          Effect.mapError(ioError("upload", objectKey))
        )
        const now = yield* Clock.currentTimeMillis
        const entry = CacheStore.makeEntry(Crypto.randomUUID(), reservation.key, {
          ...input,
          sizeBytes: uploaded.bytes
        }, now)
        const row: ClipRow = { entry, objectKey, etag: uploaded.etag, etagKind: uploaded.etagKind }
        // The commit gives the lease back; a renewal running meanwhile would find it gone.
        yield* leases.stopRenewal(reservation.tempPath)
        const inserted = yield* index.commit(row, owner).pipe(
          Effect.tapError(() => index.release(reservation.key, owner).pipe(Effect.ignore)),
          Effect.mapError(ioError("commit", reservation.key)),
          Effect.tapError(() => objects.remove([objectKey]).pipe(Effect.ignore))
        )
        if (!inserted) {
          // Our lease lapsed and another runner committed the key: its row stands.
          yield* Effect.logWarning(`rallycache/s3: ${reservation.key} was committed by another runner first`)
          yield* objects.remove([objectKey]).pipe(Effect.catchAll(logFailure(`object ${objectKey} left for the sweep`)))
        }
        return yield* local.commit(reservation, input)
      })

    const abort = (reservation: Reservation) => Effect.zipRight(leases.release(reservation.tempPath), local.abort(reservation))

    const lookup = (key: CacheKey): Effect.Effect<Option.Option<CacheEntry>> =>
      Effect.flatMap(local.lookup(key), (hit) => {
        if (Option.isSome(hit)) return Effect.succeed(hit)
        return Effect.gen(function*() {
          const row = yield* liveRow(key)
          if (Option.isNone(row)) return Option.none<CacheEntry>()
          const reserved = yield* local.reserve(key)
          if (reserved._tag === "Cached") return Option.some(reserved.entry)
          return yield* fetchInto(row.value, reserved.reservation).pipe(
            Effect.onExit((exit) =>
              exit._tag === "Failure" || Option.isNone(exit.value) ? local.abort(reserved.reservation) : Effect.void
            )
          )
        }).pipe(
          Effect.catchAll((error) => Effect.as(logFailure(`lookup of ${key} failed`)(error), Option.none()))
        )
      })

    // Planning asks `has` to decide what to preload: a clip in the bucket but
    // not on this disk is planned as a job, whose `reserve` downloads it.
    const has = local.has

    const touch = (key: CacheKey) =>
      Effect.zipRight(
        local.touch(key),
        Effect.sync(() => {
          touched.add(key)
        })
      )

    const remove = (key: CacheKey, reason: Domain.EvictionReason) =>
      Effect.gen(function*() {
        // A local copy that fails the deep check says nothing of its object,
        // which was checked against its row when it came down: only the copy goes.
        if (reason === "invalid") return yield* local.remove(key, reason)
        const row = yield* index.remove(key).pipe(Effect.mapError(ioError("remove", key)))
        if (Option.isSome(row)) {
          yield* objects.remove([row.value.objectKey]).pipe(Effect.catchAll(logFailure("object left for the sweep")))
        }
        const here = yield* local.remove(key, reason)
        if (Option.isSome(row) && !here) {
          const entry = row.value.entry
          yield* events.publish(
            new CacheEvent.Evicted({ key, videoId: entry.videoId, rallyIndex: entry.rallyIndex, reason })
          )
        }
        return here || Option.isSome(row)
      })

    const listAll = Effect.map(
      index.all.pipe(Effect.mapError(ioError("list", options.table))),
      (rows) => rows.map((row) => row.entry)
    )

    const usage = index.usage.pipe(
      Effect.catchAll((error) => Effect.zipRight(logFailure("usage")(error), local.usage))
    )

    // The deep check runs on the local copy (`list` is this disk's clips): a
    // pass is recorded on the row too, a failure only on the copy (see `remove`).
    const markValidated = (key: CacheKey, status: Domain.ValidationStatus) =>
      Effect.zipRight(
        local.markValidated(key, status),
        status === "valid"
          ? Effect.flatMap(Clock.currentTimeMillis, (now) =>
            index.markValidated(key, status, now).pipe(Effect.mapError(ioError("mark validated", key))))
          : Effect.void
      )

    const pin = (key: CacheKey): Effect.Effect<void, never, Scope.Scope> =>
      Effect.zipRight(CacheStore.pinCounted(pins, key), local.pin(key))

    const { enforce, sweep } = Maintenance.make({
      config,
      events,
      index,
      objects,
      local,
      pins,
      flush,
      clipsPrefix,
      table: options.table,
      orphanGrace: options.orphanGrace
    })

    yield* flush.pipe(Effect.schedule(Schedule.spaced(options.touchFlushInterval)), Effect.forkScoped)
    yield* sweep.pipe(
      Effect.catchAll(logFailure("sweep failed")),
      Effect.schedule(Schedule.spaced(options.sweepInterval)),
      Effect.forkScoped
    )

    return {
      owner,
      sweep,
      flush,
      local,
      pathOf: local.pathOf,
      lookup,
      has,
      touch,
      reserve,
      commit,
      abort,
      remove,
      list: local.list,
      listAll,
      usage,
      markValidated,
      pin,
      enforce
    } satisfies S3CacheStoreShape
  })
