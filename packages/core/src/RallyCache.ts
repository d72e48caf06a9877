/**
 * The client API of a rallycache instance: the functions users call. Each
 * one sends a message to the manager actor (`Manager`), except the hot read
 * path of `getClip`, which answers a cache hit from state the actor
 * publishes, without waiting in the mailbox.
 *
 * @since 0.1.0
 */
import type { Effect, Scope, Stream } from "effect"
import { Context } from "effect"
import type { CacheEvent } from "./CacheEvent.js"
import type { CacheKey, Clip, ExportMode, Priority, Rally, SourceInfo, VideoSource } from "./Domain.js"
import type {
  ExportCancelled,
  ExportError,
  InvalidInput,
  InvalidRally,
  NotMediaFile,
  RallyNotFound,
  SourceNotFound,
  SourceUnreadable,
  UnknownVideo
} from "./Errors.js"
import type { QueueStatus } from "./ExportQueue.js"
import type { MetricsSnapshot } from "./Metrics.js"
import type { Usage } from "./CacheStore.js"

/**
 * A video to open: its file, its rallies in seconds, and optionally its id
 * (default: derived from the source fingerprint) and export mode.
 *
 * @since 0.1.0
 */
export interface OpenVideoInput {
  readonly path: string
  readonly rallies: ReadonlyArray<{ readonly start: number; readonly end: number }>
  readonly id?: string | undefined
  readonly mode?: ExportMode | undefined
}

/**
 * An open video.
 *
 * @since 0.1.0
 */
export interface OpenedVideo {
  readonly source: VideoSource
  readonly info: SourceInfo
  readonly rallies: ReadonlyArray<Rally>
  readonly mode: ExportMode
}

/**
 * State of one rally's clip.
 *
 * @since 0.1.0
 */
export type RallyState =
  | { readonly _tag: "Cached"; readonly key: CacheKey; readonly sizeBytes: number }
  | { readonly _tag: "Queued"; readonly key: CacheKey; readonly priority: Priority }
  | { readonly _tag: "Running"; readonly key: CacheKey; readonly priority: Priority; readonly progress: number }
  | { readonly _tag: "Failed"; readonly key: CacheKey; readonly reason: string }
  | { readonly _tag: "Idle"; readonly key: CacheKey }

/**
 * @since 0.1.0
 */
export interface VideoStatus {
  readonly videoId: string
  readonly current: number | null
  readonly rallies: ReadonlyArray<RallyState>
}

/**
 * @since 0.1.0
 */
export interface Stats {
  readonly metrics: MetricsSnapshot
  readonly usage: Usage
  readonly queue: QueueStatus
  readonly videos: number
}

/**
 * @since 0.1.0
 */
export type OpenError = InvalidInput | InvalidRally | SourceNotFound | SourceUnreadable | NotMediaFile

/**
 * @since 0.1.0
 */
export type ClipError = UnknownVideo | RallyNotFound | ExportError | ExportCancelled

/**
 * @since 0.1.0
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
  readonly invalidate: (videoId: string, index?: number) => Effect.Effect<number, UnknownVideo | RallyNotFound>
  readonly status: (videoId: string) => Effect.Effect<VideoStatus, UnknownVideo>
  readonly stats: Effect.Effect<Stats>
  /** Forget a video: cancel its queued work and release its pins. Its clips stay cached. */
  readonly close: (videoId: string) => Effect.Effect<void>
  readonly events: Stream.Stream<CacheEvent>
}

/**
 * @since 0.1.0
 */
export class RallyCache extends Context.Tag("@rallycache/core/RallyCache")<RallyCache, RallyCacheShape>() {}
