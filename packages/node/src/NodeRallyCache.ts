/**
 * The default layer: everything a Node program needs to use rallycache,
 * in one layer.
 *
 * - the manager actor (`RallyCache` from `@rallycache/core`),
 * - ffmpeg resolved and wrapped as the `Exporter`,
 * - the crash-safe `FileSystemCacheStore` in `cacheDir`,
 * - the default `PreloadPolicy`, `Metrics`, `CacheEvents`, `Cleanup` fibers,
 * - the Node platform (`NodeContext`).
 *
 * At start-up it ends the ffmpeg orphans of a crashed earlier process that
 * shared the folder, and the store empties `tmp/` and reconciles its index.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import {
  CacheEvent,
  type CacheStore,
  Cleanup,
  Config,
  type Errors,
  type Exporter,
  Metrics,
  PreloadPolicy,
  RallyCache as CoreRallyCache
} from "@rallycache/core"
import { Config as EffectConfig, Effect, Layer, Option, Schedule } from "effect"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as FfmpegExporter from "./FfmpegExporter.js"
import * as FfmpegResolver from "./FfmpegResolver.js"
import * as FileSystemCacheStore from "./FileSystemCacheStore.js"

/**
 * Options of the default layer: the cache configuration (see the table in
 * `Config.defaults`), the cache folder, and the encoder and store settings.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Config.Options {
  /** Default: `$RALLYCACHE_CACHE_DIR`, then `$XDG_CACHE_HOME/rallycache`, then `~/.cache/rallycache`. */
  readonly cacheDir?: string | undefined
  /** Encoder settings of accurate mode, process priority, kill grace, end slack, output check. */
  readonly ffmpeg?: Omit<FfmpegExporter.Options, "runDir" | "timeout"> | undefined
  /** Journal and lock settings of the store. */
  readonly store?: Omit<FileSystemCacheStore.Options, "cacheDir"> | undefined
  /**
   * Which rallies to export around the viewer. Default `PreloadPolicy.layer`
   * (current high, the next `preloadAhead` normal, the rest low); also
   * `PreloadPolicy.layerWindow(n)` or your own with `PreloadPolicy.layerFrom`.
   */
  readonly preloadPolicy?: Layer.Layer<PreloadPolicy.PreloadPolicy> | undefined
  /** How often the heap-in-use gauge is sampled. Default 10 seconds. */
  readonly heapSampleInterval?: number | undefined
}

/**
 * Every service the default layer provides.
 *
 * @since 0.1.0
 * @category models
 */
export type Services =
  | CoreRallyCache.RallyCache
  | CacheStore.CacheStore
  | Exporter.Exporter
  | FfmpegResolver.Ffmpeg
  | PreloadPolicy.PreloadPolicy
  | Metrics.Metrics
  | CacheEvent.CacheEvents
  | Config.CacheConfig
  | Cleanup.Cleanup
  | NodeContext.NodeContext

/**
 * What building the default layer can fail with: a bad option or variable,
 * no usable ffmpeg, or a cache folder that cannot be used.
 *
 * @since 0.1.0
 * @category errors
 */
export type LayerError = Errors.InvalidInput | FfmpegResolver.FfmpegNotFound | Errors.CacheIOError

/**
 * The user cache folder: `$RALLYCACHE_CACHE_DIR`, then
 * `$XDG_CACHE_HOME/rallycache`, then `~/.cache/rallycache` (read through
 * Effect's `Config`, so tests can supply a `ConfigProvider`).
 *
 * @since 0.1.0
 * @category utils
 */
export const defaultCacheDir: Effect.Effect<string> = Effect.gen(function*() {
  const explicit = yield* EffectConfig.option(EffectConfig.nonEmptyString("RALLYCACHE_CACHE_DIR"))
  if (Option.isSome(explicit)) return NodePath.resolve(explicit.value)
  const xdg = yield* EffectConfig.option(EffectConfig.nonEmptyString("XDG_CACHE_HOME"))
  // XDG says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (Option.isSome(xdg) && NodePath.isAbsolute(xdg.value)) return NodePath.join(xdg.value, "rallycache")
  return NodePath.join(NodeOs.homedir(), ".cache", "rallycache")
}).pipe(Effect.orElseSucceed(() => NodePath.join(NodeOs.homedir(), ".cache", "rallycache")))

/**
 * The folder the layer will use for `options`.
 *
 * @since 0.1.0
 * @category utils
 */
export const resolveCacheDir = (options: Pick<Options, "cacheDir"> = {}): Effect.Effect<string> =>
  options.cacheDir === undefined ? defaultCacheDir : Effect.succeed(NodePath.resolve(options.cacheDir))

const heapSampler = (every: number) =>
  Layer.scopedDiscard(
    Effect.gen(function*() {
      const metrics = yield* Metrics.Metrics
      yield* Effect.suspend(() => metrics.heapUsed(process.memoryUsage().heapUsed)).pipe(
        Effect.repeat(Schedule.spaced(every)),
        Effect.forkScoped
      )
    })
  )

/**
 * The default layer.
 *
 * @example
 * ```ts
 * import { RallyCache as Core } from "@rallycache/core"
 * import { NodeRallyCache } from "@rallycache/node"
 * import { NodeRuntime } from "@effect/platform-node"
 * import { Effect } from "effect"
 *
 * Effect.gen(function*() {
 *   const cache = yield* Core.RallyCache
 *   const video = yield* cache.openVideo({ path: "match.mp4", rallies: [{ start: 12.5, end: 31 }] })
 *   const clip = yield* cache.getClip(video.source.id, 0)
 *   console.log(clip.path)
 * }).pipe(Effect.provide(NodeRallyCache.layer({ maxBytes: 200 * 1024 * 1024 })), NodeRuntime.runMain)
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Services, LayerError> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* Config.fromConfig(configOptions(options))
      const cacheDir = yield* resolveCacheDir(options)
      return layerWith({ ...options, cacheDir }, config)
    })
  )

const configKeys = new Set(Object.keys(Config.defaults))

const configOptions = (options: Options): Config.Options => {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(options)) {
    if (configKeys.has(key) && value !== undefined) out[key] = value
  }
  return out as Config.Options
}

/**
 * The services of `layerMaintenance`: the store (with its start-up
 * report), ffmpeg and the exporter, and `Cleanup` without its fibers.
 *
 * @since 0.1.0
 * @category models
 */
export type MaintenanceServices =
  | CacheStore.CacheStore
  | FileSystemCacheStore.Startup
  | Exporter.Exporter
  | FfmpegResolver.Ffmpeg
  | Metrics.Metrics
  | CacheEvent.CacheEvents
  | Config.CacheConfig
  | Cleanup.Cleanup
  | NodeContext.NodeContext

/**
 * The layer of tools that inspect or repair a cache folder (`rallycache
 * cache stats|verify|gc|clear`): the same store, ffmpeg and configuration as
 * `layer`, with `Cleanup` on demand only. No manager, no background
 * fibers, so `Cleanup.enforce` reports every eviction instead of racing a
 * cleanup run at start-up, and nothing is exported. With `readOnly`, the
 * store is opened read-only (`FileSystemCacheStore.makeReadOnly`): for tools
 * that only look, on a folder they may not be able to write.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMaintenance = (
  options: Options & { readonly readOnly?: boolean | undefined } = {}
): Layer.Layer<MaintenanceServices, LayerError> =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const config = yield* Config.fromConfig(configOptions(options))
      const cacheDir = yield* resolveCacheDir(options)
      // Tools that report what opening the folder repaired check every clip before the store opens.
      const store = { reconcile: "startup" as const, ...options.store }
      const services = platform({ ...options, store, cacheDir }, config, options.readOnly === true)
      const cleanup = Layer.effect(Cleanup.Cleanup, Effect.map(Cleanup.make, ({ cleanup }) => cleanup))
      return cleanup.pipe(Layer.provideMerge(services), Layer.provideMerge(NodeContext.layer))
    })
  )

/** The configuration, events, metrics, ffmpeg, the exporter and the store. */
const platform = (options: Options & { readonly cacheDir: string }, config: Config.RallyCacheConfig, readOnly = false) => {
  const runDir = NodePath.join(options.cacheDir, "run")
  const base = Layer.mergeAll(
    Layer.succeed(Config.CacheConfig, config),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer
  )
  const exporter = FfmpegExporter.layerWithFfmpeg({
    ...options.ffmpeg,
    runDir,
    timeout: config.exportTimeout
  }).pipe(Layer.provideMerge(FfmpegResolver.layerCached(NodePath.join(options.cacheDir, FfmpegResolver.cacheFileName))))
  // Orphans of a crashed process must be gone before the store reconciles
  // tmp/, or a still-running ffmpeg could write into a folder being emptied.
  const reap = Layer.effectDiscard(FfmpegExporter.reapStale(runDir))
  // Read-only: nothing in the folder changes, orphans included (their owner's next start reaps them).
  const store = readOnly
    ? FileSystemCacheStore.layerReadOnly({ cacheDir: options.cacheDir })
    : FileSystemCacheStore.layerWithStartup({ ...options.store, cacheDir: options.cacheDir }).pipe(Layer.provide(reap))
  return Layer.mergeAll(exporter, store).pipe(Layer.provideMerge(base))
}

const layerWith = (
  options: Options & { readonly cacheDir: string },
  config: Config.RallyCacheConfig
): Layer.Layer<Services, LayerError> => {
  const services = platform(options, config).pipe(
    Layer.provideMerge(options.preloadPolicy ?? PreloadPolicy.layer)
  )
  const cleanup = Cleanup.layer.pipe(Layer.provideMerge(services))
  const manager = Layer.merge(CoreRallyCache.layer, heapSampler(options.heapSampleInterval ?? 10_000)).pipe(
    Layer.provideMerge(cleanup)
  )
  return manager.pipe(Layer.provideMerge(NodeContext.layer))
}
