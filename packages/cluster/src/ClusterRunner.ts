/**
 * The two kinds of cluster node, as layers over
 * `NodeClusterSocket.layer({ storage: "sql" })` of `@effect/platform-node`
 * and a Postgres client (`@effect/sql-pg`):
 *
 * - `layer`: a runner. It listens on `host:port` for the other nodes, takes
 *   its share of the shards, hosts the video entities of those shards, and
 *   runs their exports on its own engine (`NodeRallyCache.layer` over its
 *   own cache folder, or the engine you pass).
 * - `layerClient`: a client-only front. It hosts no entity and provides
 *   `RallyCache` of `@rallycache/core` over the cluster
 *   (`ClusterRallyCache`).
 *
 * Membership, shard assignment and failover are `@effect/cluster`'s: runners
 * register in Postgres and refresh a heartbeat and shard locks there; a
 * runner that stops refreshing for `shardLockExpiration` loses its shards to
 * the others.
 *
 * @since 0.1.0
 */
import { RunnerAddress, type Sharding, ShardingConfig, SqlMessageStorage, SqlRunnerStorage } from "@effect/cluster"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import type { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { PgClient } from "@effect/sql-pg"
import { CacheEvent, type CacheStore, Config as CacheConfig, type Errors, Metrics, type RallyCache, RallyCache as Core } from "@rallycache/core"
import { NodeRallyCache } from "@rallycache/node"
import { Duration, Layer, Option, Redacted } from "effect"
import type * as ClusterEngine from "./ClusterEngine.js"
import * as ClusterRallyCache from "./ClusterRallyCache.js"
import * as Registry from "./internal/registry.js"
import { serialized } from "./internal/startupLock.js"
import { RunnerId, layer as entityLayer } from "./VideoEntity.js"

/**
 * Settings every node of one cluster must share.
 *
 * @since 0.1.0
 * @category options
 */
export interface CommonOptions {
  /** `postgres://user@host:port/db` */
  readonly databaseUrl: string
  /**
   * A runner that stops refreshing its locks for this long loses its shards.
   * Default 10 seconds (`@effect/cluster`'s own default is 35).
   */
  readonly failoverAfter?: Duration.DurationInput | undefined
  /** Any other `ShardingConfig` setting. */
  readonly sharding?: Partial<ShardingConfig.ShardingConfig["Type"]> | undefined
}

/**
 * @since 0.1.0
 * @category options
 */
export interface RunnerOptions extends CommonOptions {
  /** Default 127.0.0.1. */
  readonly host?: string | undefined
  readonly port: number
  /** Options of the default engine (`NodeRallyCache.layer`); its `cacheDir` is this runner's own folder. */
  readonly cache?: NodeRallyCache.Options | undefined
}

/**
 * What a runner's engine provides: the cache its entities answer from and
 * the events of its exports.
 *
 * @since 0.1.0
 * @category models
 */
export type Engine = RallyCache.RallyCache | CacheEvent.CacheEvents

/**
 * Timing derived from `failoverAfter`: locks refreshed three times per
 * expiry; assignments re-read, dead runners pinged and stored messages
 * polled as often.
 */
const shardingConfig = (options: CommonOptions): Partial<ShardingConfig.ShardingConfig["Type"]> => {
  const expiry = Duration.decode(options.failoverAfter ?? Duration.seconds(10))
  const tick = Duration.max(Duration.millis(200), Duration.divide(expiry, 4).pipe(Option.getOrElse(() => expiry)))
  return {
    shardsPerGroup: 60,
    shardLockExpiration: expiry,
    shardLockRefreshInterval: Duration.divide(expiry, 3).pipe(Option.getOrElse(() => expiry)),
    refreshAssignmentsInterval: tick,
    runnerHealthCheckInterval: tick,
    entityMessagePollInterval: tick,
    entityMaxIdleTime: Duration.minutes(10),
    ...options.sharding
  }
}

const database = (options: CommonOptions) => PgClient.layer({ url: Redacted.make(options.databaseUrl) })

/**
 * The cluster's tables (messages, replies, runners, shard locks, opened
 * videos), created under one advisory lock: nodes started together on an
 * empty database take turns instead of racing.
 */
const storage = (config: Partial<ShardingConfig.ShardingConfig["Type"]>) =>
  serialized(
    Layer.mergeAll(SqlMessageStorage.layer, SqlRunnerStorage.layer, Layer.effectDiscard(Registry.migrate))
  ).pipe(Layer.provide(ShardingConfig.layerFromEnv(config)))

/**
 * A runner: cluster membership, the video entities, and its engine (by
 * default `NodeRallyCache.layer(options.cache)`; pass `engine` to run the
 * entities over another, for instance one whose store is object storage).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E = NodeRallyCache.LayerError>(
  options: RunnerOptions & { readonly engine?: Layer.Layer<Engine, E, SqlClient.SqlClient> | undefined }
) => {
  const host = options.host ?? "127.0.0.1"
  const address = RunnerAddress.make(host, options.port)
  const config = { ...shardingConfig(options), runnerAddress: Option.some(address) }
  const sharding = NodeClusterSocket.layer({ storage: "byo", shardingConfig: config }).pipe(
    Layer.provideMerge(storage(config))
  )
  // Under the start-up lock too: an engine's store may create tables of its own.
  const engine: Layer.Layer<Engine, E | NodeRallyCache.LayerError | SqlError, SqlClient.SqlClient> =
    options.engine === undefined ? NodeRallyCache.layer(options.cache) : serialized(options.engine)
  return entityLayer.pipe(
    Layer.provide(Layer.succeed(RunnerId, `${host}:${options.port}`)),
    Layer.provideMerge(engine),
    Layer.provideMerge(sharding),
    Layer.provideMerge(database(options))
  )
}

/**
 * A client-only front: `RallyCache` whose calls go to the runners. With
 * `clips` (the store the runners commit to, on a folder of the front's own),
 * every clip a runner answers with is fetched through that store, so the
 * front serves it from its own disk.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = <E = never>(
  options: CommonOptions & Omit<ClusterRallyCache.Options, "clips"> & {
    readonly clips?: Layer.Layer<CacheStore.CacheStore, E, ClusterEngine.StoreContext> | undefined
  }
) => {
  const config = { ...shardingConfig(options), runnerAddress: Option.none() }
  const sharding = NodeClusterSocket.layer({ storage: "byo", clientOnly: true, shardingConfig: config }).pipe(
    Layer.provideMerge(storage(config))
  )
  const { clips, ...clientOptions } = options
  const front: Layer.Layer<
    Core.RallyCache | ClusterRallyCache.ClusterRallyCache,
    E | SqlError | Errors.InvalidInput,
    Sharding.Sharding | SqlClient.SqlClient
  > = clips === undefined
      ? ClusterRallyCache.layer(clientOptions)
      : ClusterRallyCache.layerWithClips(clientOptions).pipe(
        Layer.provide(serialized(clips).pipe(Layer.provide(storeContext)))
      )
  return front.pipe(Layer.provideMerge(sharding), Layer.provide(database(options)))
}

/** What a clip store needs besides Postgres, on a front (which runs no engine). */
const storeContext = Layer.mergeAll(
  Layer.effect(CacheConfig.CacheConfig, CacheConfig.fromConfig()),
  CacheEvent.CacheEvents.layer(),
  Metrics.layer
)
