/**
 * The cache layers of the `rallycache` binary, on Node.
 *
 * - `full`: everything (manager, queue, cleanup fibers) for the commands
 *   that export (`export`, `get`, `watch`, `demo`).
 * - `maintenance`: the store, the exporter (for deep checks) and the
 *   ffmpeg resolver, without the manager or the cleanup fibers, so that
 *   `cache gc` reports every eviction it makes instead of racing a
 *   cleanup that runs at start-up.
 *
 * @internal
 */
import { NodeContext } from "@effect/platform-node"
import { CacheEvent, Cleanup, Config, Metrics, PreloadPolicy, RallyCache } from "@rallycache/core"
import { FfmpegExporter, FfmpegResolver, FileSystemCacheStore } from "@rallycache/node"
import { Layer } from "effect"
import * as NodePath from "node:path"
import type { LayerOptions } from "./common.js"

const base = (options: LayerOptions) => {
  const { cacheDir, ...settings } = options
  const core = Layer.mergeAll(
    Config.CacheConfig.layerConfig(settings),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer
  )
  const ffmpeg = FfmpegResolver.layer.pipe(Layer.provide(NodeContext.layer))
  const exporter = FfmpegExporter.layerWithFfmpeg({ runDir: NodePath.join(cacheDir, "run") }).pipe(
    Layer.provide(NodeContext.layer),
    Layer.provideMerge(ffmpeg)
  )
  return Layer.mergeAll(exporter, FileSystemCacheStore.layer({ cacheDir })).pipe(Layer.provideMerge(core))
}

/** @internal */
export const maintenance = (options: LayerOptions) => base(options)

/** @internal */
export const full = (options: LayerOptions) =>
  RallyCache.layer.pipe(
    Layer.provideMerge(Cleanup.layer),
    Layer.provideMerge(PreloadPolicy.layer),
    Layer.provideMerge(base(options))
  )
