/**
 * The two kinds of cluster node, as layers over
 * `NodeClusterSocket.layer({ storage: "sql" })` of `@effect/platform-node`
 * and a Postgres client (`@effect/sql-pg`):
 *
 * - `layer`: a runner. It listens on `host:port` for the other nodes, takes
 *   its share of the shards, hosts the video entities of those shards, and
 *   runs their exports on its own engine (`NodeRallyCache.layer` over the
 *   shared cache folder).
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
import { RunnerAddress, ShardingConfig } from "@effect/cluster"
import * as NodeClusterSocket from "@effect/platform-node/NodeClusterSocket"
import { PgClient } from "@effect/sql-pg"
import { NodeRallyCache } from "@rallycache/node"
import { Duration, Layer, Option, Predicate, Redacted, Schedule } from "effect"
import * as ClusterRallyCache from "./ClusterRallyCache.js"
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
  /** The engine of this runner; its `cacheDir` is the folder every runner shares. */
  readonly cache?: NodeRallyCache.Options | undefined
}

/**
 * Timing derived from `failoverAfter`: locks refreshed three times per
 * expiry, assignments re-read and dead runners pinged as often.
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
    entityMaxIdleTime: Duration.minutes(10),
    ...options.sharding
  }
}

const database = (options: CommonOptions) => PgClient.layer({ url: Redacted.make(options.databaseUrl) })

/**
 * Runners started together race on the storage tables' `CREATE TABLE IF NOT
 * EXISTS` (Postgres answers the loser with a duplicate `pg_type` row): a
 * start-up that fails with an SQL error is tried again a few times.
 */
const startupRetry = Schedule.exponential("100 millis").pipe(
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(6)),
  Schedule.whileInput((error: unknown) => Predicate.isTagged(error, "SqlError"))
)

/**
 * A runner: cluster membership, the video entities, and the local engine.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RunnerOptions) => {
  const host = options.host ?? "127.0.0.1"
  const address = RunnerAddress.make(host, options.port)
  const sharding = NodeClusterSocket.layer({
    storage: "sql",
    shardingConfig: { ...shardingConfig(options), runnerAddress: Option.some(address) }
  }).pipe(Layer.retry(startupRetry))
  return entityLayer.pipe(
    Layer.provide(Layer.succeed(RunnerId, `${host}:${options.port}`)),
    Layer.provideMerge(NodeRallyCache.layer(options.cache)),
    Layer.provideMerge(sharding),
    Layer.provideMerge(database(options))
  )
}

/**
 * A client-only front: `RallyCache` whose calls go to the runners.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (options: CommonOptions & ClusterRallyCache.Options) =>
  ClusterRallyCache.layer(options).pipe(
    Layer.provideMerge(
      NodeClusterSocket.layer({
        storage: "sql",
        clientOnly: true,
        shardingConfig: { ...shardingConfig(options), runnerAddress: Option.none() }
      })
    ),
    Layer.provide(database(options))
  )
