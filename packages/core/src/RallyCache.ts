/**
 * The client API of a rallycache instance: the functions users call. Each
 * one sends a message to the manager actor (`Manager`), except the hot read
 * path of `getClip`, which answers a cache hit from state the actor
 * publishes, without waiting in the mailbox.
 *
 * @since 0.1.0
 */
import type { Effect, Scope, Stream } from "effect"
import { Context, Layer } from "effect"
import type { CacheEvent } from "./CacheEvent.js"
import { CacheEvents } from "./CacheEvent.js"
import { CacheStore } from "./CacheStore.js"
import { Cleanup, layer as CleanupLayer } from "./Cleanup.js"
import type * as Config from "./Config.js"
import { CacheConfig } from "./Config.js"
import { Exporter } from "./Exporter.js"
import * as internal from "./internal/manager/make.js"
import * as MemoryCacheStore from "./MemoryCacheStore.js"
import { MemoryFileSystem } from "./MemoryFileSystem.js"
import { layer as MetricsLayer, Metrics } from "./Metrics.js"
import { layer as PreloadPolicyLayer, PreloadPolicy } from "./PreloadPolicy.js"
import * as TestExporter from "./TestExporter.js"
import type { Clip, Priority } from "./Domain.js"
import type {
  CacheIOError,
  ExportCancelled,
  ExportError,
  InvalidInput,
  InvalidRally,
  NotMediaFile,
  RallyNotFound,
  SourceNotFound,
  SourceUnreadable,
  UnknownVideo,
  UnsupportedSource
} from "./Errors.js"
import type * as Protocol from "./Protocol.js"

/**
 * A video to open: its file, its rallies in seconds, and optionally its id
 * (default: derived from the source fingerprint) and export mode.
 *
 * @since 0.1.0
 * @category models
 */
export type OpenVideoInput = Protocol.OpenVideoInput

/**
 * An open video.
 *
 * @since 0.1.0
 * @category models
 */
export type OpenedVideo = Protocol.OpenedVideo

/**
 * State of one rally's clip.
 *
 * @since 0.1.0
 * @category models
 */
export type RallyState = Protocol.RallyState

/**
 * The state of each rally of a video.
 *
 * @since 0.1.0
 * @category models
 */
export type VideoStatus = Protocol.VideoStatus

/**
 * Metrics, cache usage, queue status and the number of open videos.
 *
 * @since 0.1.0
 * @category models
 */
export type Stats = Protocol.Stats

/**
 * @since 0.1.0
 * @category errors
 */
export type OpenError =
  | InvalidInput
  | InvalidRally
  | SourceNotFound
  | SourceUnreadable
  | NotMediaFile
  | UnsupportedSource

/**
 * @since 0.1.0
 * @category errors
 */
export type ClipError = UnknownVideo | RallyNotFound | ExportError | ExportCancelled

/**
 * @since 0.1.0
 * @category models
 */
export interface RallyCacheShape {
  /** Probe the source, validate the rallies against its duration, and register the video. Opening it again replaces its rallies. */
  readonly openVideo: (input: OpenVideoInput) => Effect.Effect<OpenedVideo, OpenError>
  /** The viewer is at rally `index`: apply the preload policy, re-rank and cancel queued work, pin the current clip. */
  readonly navigate: (videoId: string, index: number) => Effect.Effect<void, UnknownVideo | RallyNotFound>
  /** The clip of rally `index`: at once from the cache, or exported at high priority. Concurrent callers share one export. */
  readonly getClip: (videoId: string, index: number) => Effect.Effect<Clip, ClipError>
  /** Like `getClip`, and the clip is kept from eviction until the scope closes (for streaming it). */
  readonly leaseClip: (videoId: string, index: number) => Effect.Effect<Clip, ClipError, Scope.Scope>
  /** Queue rallies (all by default) at `priority` (low by default) without waiting. */
  readonly preload: (
    videoId: string,
    options?: { readonly indexes?: ReadonlyArray<number>; readonly priority?: Priority }
  ) => Effect.Effect<void, UnknownVideo | RallyNotFound>
  /** Drop cached clips of a video (or of one rally); they are exported again on demand. Returns how many were removed. */
  readonly invalidate: (videoId: string, index?: number) => Effect.Effect<number, UnknownVideo | RallyNotFound | CacheIOError>
  readonly status: (videoId: string) => Effect.Effect<VideoStatus, UnknownVideo>
  readonly stats: Effect.Effect<Stats>
  /** Forget a video: cancel its queued work and release its pins. Its clips stay cached. */
  readonly close: (videoId: string) => Effect.Effect<void>
  readonly events: Stream.Stream<CacheEvent>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class RallyCache extends Context.Tag("@rallycache/core/RallyCache")<RallyCache, RallyCacheShape>() {}

/**
 * The cache: the manager actor and its export queue over the given services.
 * Closing the layer's scope stops the actor, cancels queued work and
 * interrupts running exports (their partial files are removed): no fiber is
 * left behind.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<
  RallyCache,
  never,
  Exporter | CacheStore | PreloadPolicy | Metrics | CacheEvents | CacheConfig | Cleanup
> = Layer.scoped(RallyCache, internal.make)

/**
 * Options of `layerTest`: the configuration, plus the test exporter's
 * options (its sources and export time).
 *
 * @since 0.1.0
 * @category models
 */
export type TestOptions = Config.Options & TestExporter.Options

const exporterKeys = ["sources", "exportTime", "progressSteps", "bytesPerSecond", "canPause"] as const

/**
 * A whole cache in memory, for tests with `TestClock`: the manager over
 * `TestExporter` (exports take virtual time), `MemoryCacheStore` on a
 * `MemoryFileSystem`, the default preload policy, metrics, events and
 * cleanup. Every service is exposed, so a test can inject failures
 * (`TestExporter.Control`), corrupt clips (`MemoryFileSystem`) or read the
 * store.
 *
 * @example
 * ```ts
 * import { RallyCache } from "@rallycache/core"
 * import { Effect, TestClock } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const cache = yield* RallyCache.RallyCache
 *   const video = yield* cache.openVideo({ path: "/videos/final.mp4", rallies: [{ start: 0, end: 12 }, { start: 20, end: 31 }] })
 *   yield* cache.navigate(video.source.id, 0)
 *   yield* TestClock.adjust("3 seconds")
 *   const clip = yield* cache.getClip(video.source.id, 0) // cached: true
 * }).pipe(Effect.provide(RallyCache.layerTest({ sources: { "/videos/final.mp4": { duration: 60 } }, exportTime: "3 seconds" })))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTest = (
  options: TestOptions = {}
): Layer.Layer<
  | RallyCache
  | Exporter
  | TestExporter.Control
  | CacheStore
  | MemoryFileSystem
  | PreloadPolicy
  | Metrics
  | CacheEvents
  | CacheConfig
  | Cleanup,
  InvalidInput
> => {
  const configOptions: Record<string, unknown> = { ...options }
  const exporterOptions: Record<string, unknown> = {}
  for (const key of exporterKeys) {
    if (key in configOptions) {
      exporterOptions[key] = configOptions[key]
      delete configOptions[key]
    }
  }
  const base = Layer.mergeAll(
    CacheConfig.layer(configOptions as Config.Options),
    CacheEvents.layer(),
    MetricsLayer,
    PreloadPolicyLayer,
    MemoryFileSystem.layer
  )
  const services = Layer.mergeAll(
    TestExporter.layer(exporterOptions as TestExporter.Options),
    MemoryCacheStore.layer
  ).pipe(Layer.provideMerge(base))
  const withCleanup = CleanupLayer.pipe(Layer.provideMerge(services))
  return layer.pipe(Layer.provideMerge(withCleanup))
}
