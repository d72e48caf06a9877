/**
 * `S3CacheStore`: the `CacheStore` of a cluster with no shared disk. Clips
 * are objects in a bucket (AWS S3, Cloudflare R2, MinIO: anything that
 * speaks the S3 protocol), Postgres is the index and the commit point, and
 * a bounded `FileSystemCacheStore` on each machine keeps hot clips on local
 * disk, so a hit is a local file and costs what a hit of the disk store
 * costs.
 *
 * - **Commit point.** The exporter writes the clip to the local cache's
 *   staging path; `commit` uploads it under `<prefix>clips/<key>.<uuid>.<ext>`
 *   (multipart above `partSize`), then inserts its row (`INSERT ... ON
 *   CONFLICT DO NOTHING`) and gives the key's lease back in one transaction.
 *   A clip without a row does not exist, whatever the bucket holds: objects
 *   with no row, older than `orphanGrace`, are deleted by the sweep.
 * - **One export per key in the cluster.** `reserve` takes a lease row for
 *   the key (expiring after `leaseDuration`, renewed by a fiber while the
 *   export runs). A runner that finds the key leased waits, looking again
 *   every `pollInterval` at most, and downloads the clip once it is
 *   committed; a dead runner's lease lapses and the next runner asking takes
 *   the key.
 * - **Limits.** `enforce` applies `maxAge`, `maxEntriesPerVideo` and
 *   `maxBytes` of the `CacheConfig` to the whole cluster in one SQL
 *   statement, deletes the objects after their rows, then bounds the local
 *   cache (`localMaxBytes`) and drops local copies whose row is gone.
 * - **Whole objects.** A download checks the object's size and ETag against
 *   its row; a clip that does not match is removed and exported again.
 *
 * @since 0.2.0
 */
import { S3Client } from "@aws-sdk/client-s3"
import type { SqlClient } from "@effect/sql"
import { CacheStore, Errors } from "@rallycache/core"
import type { CacheEvent, Config as CacheConfig, Metrics } from "@rallycache/core"
import { Config, Duration, Effect, Layer, Option, Redacted } from "effect"
import type { Scope } from "effect"
import * as internal from "./internal/store.js"

/**
 * The store: a `CacheStoreShape`, plus `sweep`, `flush`, its lease owner
 * name and the local hot cache.
 *
 * @since 0.2.0
 * @category models
 */
export type S3CacheStore = internal.S3CacheStoreShape

/**
 * What one sweep deleted.
 *
 * @since 0.2.0
 * @category models
 */
export type SweepReport = internal.SweepReport

/**
 * Options of the store. Only `bucket` and `cacheDir` are required; see the
 * package README for the table of defaults.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  /** The bucket clips are stored in (it must exist). */
  readonly bucket: string
  /** Folder of the local hot cache on this machine; created if missing. */
  readonly cacheDir: string
  /** Prefix of every object key (default `"rallycache/"`). */
  readonly prefix?: string | undefined
  /** The S3 endpoint, for R2, MinIO and other servers (default: AWS for `region`). */
  readonly endpoint?: string | undefined
  /** The region (default `"us-east-1"`; R2 takes `"auto"`). */
  readonly region?: string | undefined
  /** Address buckets as `endpoint/bucket` instead of `bucket.endpoint` (default false; MinIO needs true). */
  readonly forcePathStyle?: boolean | undefined
  /** Static credentials (default: the AWS SDK's chain: `AWS_ACCESS_KEY_ID`, profiles, instance roles...). */
  readonly credentials?: {
    readonly accessKeyId: string
    readonly secretAccessKey: Redacted.Redacted | string
  } | undefined
  /** A client of your own (middleware, retries, proxies); the endpoint options above are then ignored. */
  readonly client?: S3Client | undefined
  /** Bytes the local hot cache may hold (default: the `CacheConfig`'s `maxBytes`). */
  readonly localMaxBytes?: number | undefined
  /** Prefix of the Postgres tables `<table>_clips` and `<table>_leases` (default `"rallycache"`). */
  readonly table?: string | undefined
  /** How long a key's lease lasts unless renewed; renewed every third of it (default 30 seconds). */
  readonly leaseDuration?: Duration.DurationInput | undefined
  /** Longest wait between two looks at a key leased by another runner (default 250 millis). */
  readonly pollInterval?: Duration.DurationInput | undefined
  /** How often orphan objects and stale local copies are swept (default 5 minutes). */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /** An object with no row is an orphan once it is older than this (default 1 hour). */
  readonly orphanGrace?: Duration.DurationInput | undefined
  /** How often batched `touch`es reach Postgres (default 5 seconds; also on close). */
  readonly touchFlushInterval?: Duration.DurationInput | undefined
  /** Part size of multipart uploads; smaller clips go in one request (default 8 MiB, at least 5 MiB). */
  readonly partSize?: number | undefined
}

const minPartSize = 5 * 1024 * 1024

const resolve = (options: Options): Effect.Effect<internal.Resolved, Errors.InvalidInput, Scope.Scope> =>
  Effect.gen(function*() {
    const invalid = (field: string, reason: string, fix: string) => new Errors.InvalidInput({ field, reason, fix })
    if (options.bucket.trim() === "") {
      return yield* invalid("bucket", "the bucket name is empty", "set RALLYCACHE_S3_BUCKET or the bucket option")
    }
    const partSize = options.partSize ?? 8 * 1024 * 1024
    if (!Number.isInteger(partSize) || partSize < minPartSize) {
      return yield* invalid("partSize", `${partSize} is below S3's 5 MiB minimum part`, "use at least 5242880")
    }
    const table = options.table ?? "rallycache"
    if (!/^[a-z_][a-z0-9_]{0,40}$/.test(table)) {
      return yield* invalid("table", `${JSON.stringify(table)} is not a plain table name`, "use lower-case letters, digits and _")
    }
    const duration = (field: string, value: Duration.DurationInput | undefined, fallback: Duration.Duration) => {
      if (value === undefined) return Effect.succeed(fallback)
      const decoded = Duration.decodeUnknown(value)
      return Option.isSome(decoded) && Duration.toMillis(decoded.value) > 0
        ? Effect.succeed(decoded.value)
        : Effect.fail(invalid(field, `${JSON.stringify(value)} is not a positive duration`, `use a string such as "30 seconds"`))
    }
    const client = options.client ?? (yield* Effect.acquireRelease(
      Effect.sync(() =>
        new S3Client({
          region: options.region ?? "us-east-1",
          ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
          forcePathStyle: options.forcePathStyle ?? false,
          ...(options.credentials === undefined ? {} : {
            credentials: {
              accessKeyId: options.credentials.accessKeyId,
              secretAccessKey: Redacted.isRedacted(options.credentials.secretAccessKey)
                ? Redacted.value(options.credentials.secretAccessKey)
                : options.credentials.secretAccessKey
            }
          }),
          // Servers other than AWS (R2, MinIO, s3rver) do not all accept the
          // newer default checksums; ETags and sizes are checked here anyway.
          requestChecksumCalculation: "WHEN_REQUIRED",
          responseChecksumValidation: "WHEN_REQUIRED"
        })
      ),
      (client) => Effect.sync(() => client.destroy())
    ))
    return {
      client,
      bucket: options.bucket,
      prefix: options.prefix ?? "rallycache/",
      cacheDir: options.cacheDir,
      localMaxBytes: options.localMaxBytes,
      table,
      leaseDuration: yield* duration("leaseDuration", options.leaseDuration, Duration.seconds(30)),
      pollInterval: yield* duration("pollInterval", options.pollInterval, Duration.millis(250)),
      sweepInterval: yield* duration("sweepInterval", options.sweepInterval, Duration.minutes(5)),
      orphanGrace: yield* duration("orphanGrace", options.orphanGrace, Duration.hours(1)),
      touchFlushInterval: yield* duration("touchFlushInterval", options.touchFlushInterval, Duration.seconds(5)),
      partSize
    }
  })

/**
 * Open the store: run the migrations (safe when several runners start at
 * once), open the local cache, start the touch flusher and the sweep. The
 * store lives until the scope closes; closing gives back the leases of
 * unfinished exports.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  S3CacheStore,
  Errors.CacheIOError | Errors.InvalidInput,
  CacheConfig.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics | SqlClient.SqlClient | Scope.Scope
> => Effect.flatMap(resolve(options), internal.make)

/**
 * The options from `RALLYCACHE_S3_*` variables (through the current
 * `ConfigProvider`), with `options` given in code winning:
 *
 * | variable                          | option             |
 * |-----------------------------------|--------------------|
 * | RALLYCACHE_S3_BUCKET              | bucket (required)  |
 * | RALLYCACHE_S3_CACHE_DIR           | cacheDir (required)|
 * | RALLYCACHE_S3_PREFIX              | prefix             |
 * | RALLYCACHE_S3_ENDPOINT            | endpoint           |
 * | RALLYCACHE_S3_REGION              | region             |
 * | RALLYCACHE_S3_FORCE_PATH_STYLE    | forcePathStyle     |
 * | RALLYCACHE_S3_ACCESS_KEY_ID       | credentials        |
 * | RALLYCACHE_S3_SECRET_ACCESS_KEY   | credentials        |
 * | RALLYCACHE_S3_LOCAL_MAX_BYTES     | localMaxBytes      |
 * | RALLYCACHE_S3_TABLE               | table              |
 * | RALLYCACHE_S3_LEASE_DURATION      | leaseDuration      |
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromConfig = (options: Partial<Options> = {}): Effect.Effect<Options, Errors.InvalidInput> =>
  Effect.gen(function*() {
    const optional = <A>(config: Config.Config<A>) => Config.option(config)
    const env = yield* Config.all({
      bucket: optional(Config.string("BUCKET")),
      cacheDir: optional(Config.string("CACHE_DIR")),
      prefix: optional(Config.string("PREFIX")),
      endpoint: optional(Config.string("ENDPOINT")),
      region: optional(Config.string("REGION")),
      forcePathStyle: optional(Config.boolean("FORCE_PATH_STYLE")),
      accessKeyId: optional(Config.string("ACCESS_KEY_ID")),
      secretAccessKey: optional(Config.redacted("SECRET_ACCESS_KEY")),
      localMaxBytes: optional(Config.integer("LOCAL_MAX_BYTES")),
      table: optional(Config.string("TABLE")),
      leaseDuration: optional(Config.duration("LEASE_DURATION"))
    }).pipe(
      Config.nested("S3"),
      Config.nested("RALLYCACHE"),
      Effect.mapError((error) =>
        new Errors.InvalidInput({
          field: "environment",
          reason: (String(error).split("\n")[0] ?? "invalid RALLYCACHE_S3_* variable").replaceAll(".", "_"),
          fix: "fix or unset the RALLYCACHE_S3_* variable"
        })
      )
    )
    const bucket = options.bucket ?? Option.getOrUndefined(env.bucket)
    const cacheDir = options.cacheDir ?? Option.getOrUndefined(env.cacheDir)
    if (bucket === undefined) {
      return yield* new Errors.InvalidInput({
        field: "bucket",
        reason: "no bucket given",
        fix: "set RALLYCACHE_S3_BUCKET or pass the bucket option"
      })
    }
    if (cacheDir === undefined) {
      return yield* new Errors.InvalidInput({
        field: "cacheDir",
        reason: "no local cache folder given",
        fix: "set RALLYCACHE_S3_CACHE_DIR or pass the cacheDir option"
      })
    }
    const credentials = Option.isSome(env.accessKeyId) && Option.isSome(env.secretAccessKey)
      ? { accessKeyId: env.accessKeyId.value, secretAccessKey: env.secretAccessKey.value }
      : undefined
    const fromEnv: Record<string, unknown> = {
      prefix: Option.getOrUndefined(env.prefix),
      endpoint: Option.getOrUndefined(env.endpoint),
      region: Option.getOrUndefined(env.region),
      forcePathStyle: Option.getOrUndefined(env.forcePathStyle),
      credentials,
      localMaxBytes: Option.getOrUndefined(env.localMaxBytes),
      table: Option.getOrUndefined(env.table),
      leaseDuration: Option.getOrUndefined(env.leaseDuration)
    }
    const merged: Record<string, unknown> = {}
    for (const [key, value] of Object.entries({ ...fromEnv, ...options })) {
      if (value !== undefined) merged[key] = value
    }
    return { ...merged, bucket, cacheDir } as Options
  })

/**
 * The `CacheStore` layer on a bucket and a Postgres `SqlClient` (give it
 * `@effect/sql-pg`'s `PgClient.layer`, the one the cluster already uses).
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { CacheEvent, Config, Metrics } from "@rallycache/core"
 * import { S3CacheStore } from "@rallycache/s3"
 * import { Layer, Redacted } from "effect"
 *
 * const store = S3CacheStore.layer({ bucket: "clips", cacheDir: "/var/cache/rallycache" }).pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make("postgres://localhost/rallycache") })),
 *   Layer.provide(Layer.mergeAll(Config.CacheConfig.layer(), CacheEvent.CacheEvents.layer(), Metrics.layer))
 * )
 * ```
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  CacheStore.CacheStore,
  Errors.CacheIOError | Errors.InvalidInput,
  CacheConfig.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics | SqlClient.SqlClient
> => Layer.scoped(CacheStore.CacheStore, make(options))

/**
 * `layer` with its options from `RALLYCACHE_S3_*` variables (see
 * `fromConfig`), `options` given in code winning.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerConfig = (
  options: Partial<Options> = {}
): Layer.Layer<
  CacheStore.CacheStore,
  Errors.CacheIOError | Errors.InvalidInput,
  CacheConfig.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics | SqlClient.SqlClient
> => Layer.scoped(CacheStore.CacheStore, Effect.flatMap(fromConfig(options), make))
