/**
 * A runner's engine over a `CacheStore` of your choice: the manager of
 * `@rallycache/core` with ffmpeg (`FfmpegExporter` of `@rallycache/node`),
 * its events, metrics, preload policy and clean-up. With the object store of
 * `@rallycache/s3` (`S3CacheStore.layerConfig()`), a runner needs no shared
 * disk: its clips are objects, its own folder holds hot copies, ffmpeg's run
 * registry and the capability cache. `NodeRallyCache.layer` is the same
 * engine over the disk store.
 *
 * @since 0.2.0
 */
import type * as NodeContext from "@effect/platform-node/NodeContext"
import type { SqlClient } from "@effect/sql"
import { CacheEvent, type CacheStore, Cleanup, Config, type Errors, Metrics, PreloadPolicy, RallyCache } from "@rallycache/core"
import { FfmpegExporter, FfmpegResolver } from "@rallycache/node"
import * as NodeContextLayer from "@effect/platform-node/NodeContext"
import { Layer } from "effect"
import * as NodePath from "node:path"

/**
 * What a store layer may need from the engine and the runner.
 *
 * @since 0.2.0
 * @category models
 */
export type StoreContext = Config.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics | SqlClient.SqlClient

/**
 * @since 0.2.0
 * @category options
 */
export interface Options {
  /** The clip store, for instance `S3CacheStore.layerConfig({ cacheDir })`. */
  readonly store: Layer.Layer<CacheStore.CacheStore, Errors.CacheIOError | Errors.InvalidInput, StoreContext>
  /** This runner's own folder: ffmpeg's run registry and capability cache (the store may keep its hot clips there too). */
  readonly cacheDir: string
  /** The cache configuration (see `Config.defaults`); `RALLYCACHE_*` variables are read as by `NodeRallyCache`. */
  readonly config?: Config.Options | undefined
}

/**
 * The engine: `RallyCache` and `CacheEvents` (what `ClusterRunner.layer`
 * takes as `engine`), over the store and the runner's `SqlClient`.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<
  RallyCache.RallyCache | CacheEvent.CacheEvents,
  Errors.CacheIOError | Errors.InvalidInput | FfmpegResolver.FfmpegNotFound,
  SqlClient.SqlClient
> => {
  const base = Layer.mergeAll(
    Layer.effect(Config.CacheConfig, Config.fromConfig(options.config)),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer
  )
  const platform: Layer.Layer<FfmpegResolver.Ffmpeg | NodeContext.NodeContext, FfmpegResolver.FfmpegNotFound> =
    FfmpegResolver.layerCached(NodePath.join(options.cacheDir, FfmpegResolver.cacheFileName)).pipe(
      Layer.provideMerge(NodeContextLayer.layer)
    )
  const runDir = NodePath.join(options.cacheDir, "run")
  // Orphans of a crashed earlier process on this folder end before anything starts.
  const exporter = FfmpegExporter.layerWithFfmpeg({ runDir }).pipe(
    Layer.provide(Layer.effectDiscard(FfmpegExporter.reapStale(runDir))),
    Layer.provide(platform)
  )
  const services = Layer.mergeAll(options.store, exporter, PreloadPolicy.layer).pipe(Layer.provideMerge(base))
  return RallyCache.layer.pipe(Layer.provideMerge(Cleanup.layer.pipe(Layer.provideMerge(services))))
}
