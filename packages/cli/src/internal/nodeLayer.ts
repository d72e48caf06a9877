/**
 * The cache layers of the `rallycache` binary, on Node.
 *
 * - `full`: everything (manager, queue, cleanup fibers) for the commands
 *   that export (`export`, `get`, `watch`, `demo`).
 * - `maintenance`: the store, the exporter (for deep checks) and the
 *   ffmpeg resolver, without the manager or the cleanup fibers, so that
 *   `cache gc` reports every eviction it makes instead of racing a
 *   cleanup that runs at start-up. With `readOnly`, the store is opened
 *   read-only and orphans are not reaped: nothing in the folder changes.
 *
 * @internal
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { CacheEvent, CacheStore, Config, Metrics } from "@rallycache/core"
import { FfmpegExporter, FfmpegResolver, FileSystemCacheStore, NodeRallyCache } from "@rallycache/node"
import { Context, Effect, Layer } from "effect"
import * as NodePath from "node:path"
import { type LayerOptions, type MaintenanceOptions, StoreStartup } from "./common.js"

const base = (options: LayerOptions & MaintenanceOptions) => {
  const { cacheDir, readOnly = false, ...settings } = options
  const core = Layer.mergeAll(
    Config.CacheConfig.layerConfig(settings),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer
  )
  const ffmpeg = FfmpegResolver.layer.pipe(Layer.provide(NodeContext.layer))
  const runDir = NodePath.join(cacheDir, "run")
  const exporter = FfmpegExporter.layerWithFfmpeg({ runDir }).pipe(
    Layer.provide(NodeContext.layer),
    Layer.provideMerge(ffmpeg)
  )
  // As in the default layer: orphans of a crashed process go before the
  // store reconciles tmp/.
  const reap = Layer.effectDiscard(FfmpegExporter.reapStale(runDir)).pipe(Layer.provide(NodeContext.layer))
  const open = readOnly ? FileSystemCacheStore.makeReadOnly({ cacheDir }) : FileSystemCacheStore.make({ cacheDir })
  const store = Layer.scopedContext(
    Effect.map(open, (store) =>
      Context.make(CacheStore.CacheStore, store).pipe(
        Context.add(StoreStartup, { dropped: store.startup.dropped })
      ))
  ).pipe(Layer.provide(readOnly ? Layer.empty : reap))
  return Layer.mergeAll(exporter, store).pipe(Layer.provideMerge(core))
}

/** @internal */
export const maintenance = (options: MaintenanceOptions) => base(options)

/** The Node default layer. @internal */
export const full = (options: LayerOptions) => NodeRallyCache.layer(options)
