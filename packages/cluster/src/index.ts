/**
 * @rallycache/cluster: rallycache on `@effect/cluster`, one entity per video,
 * runners and client-only fronts over Postgres.
 *
 * @since 0.1.0
 */
export * as ClusterEngine from "./ClusterEngine.js"
export * as ClusterRallyCache from "./ClusterRallyCache.js"
export * as ClusterRunner from "./ClusterRunner.js"
export * as VideoEntity from "./VideoEntity.js"
export * as Tracing from "./Tracing.js"
