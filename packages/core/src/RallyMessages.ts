/**
 * The messages of the manager actor.
 *
 * One fiber owns the cache's per-video state (open videos, the current
 * rally, the last preload plan, the pins) and reads a bounded mailbox of
 * these requests. They are `Schema.TaggedRequest`s: plain data with a
 * success and a failure schema, no functions or handles inside, so they can
 * be encoded, sent to another process and decoded there. They are meant to
 * become, unchanged, the RPCs of an `@effect/cluster` entity (one entity per
 * video; every message but `Stats` names its video, and an `OpenVideo`
 * without `id` gets its id from the probe, so a caller routing it to an
 * entity passes `id`).
 *
 * Users do not send them by hand: `RallyCache` wraps the mailbox in
 * functions. The hot path of `getClip` does not send a message at all when
 * the clip is cached.
 *
 * @example
 * ```ts
 * import { RallyMessages } from "@rallycache/core"
 * import { Schema } from "effect"
 *
 * const message = new RallyMessages.Navigate({ videoId: "final", index: 3 })
 * const wire = Schema.encodeSync(RallyMessages.Message)(message)   // plain JSON
 * const back = Schema.decodeUnknownSync(RallyMessages.Message)(wire)
 * ```
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { CacheKey, Clip, EvictionReason, ExportMode, Priority, Rally, SourceInfo, VideoSource } from "./Domain.js"
import {
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
import type { QueueStatus } from "./ExportQueue.js"
import type { MetricsSnapshot } from "./Metrics.js"
import type { OpenedVideo as OpenedVideoType, Stats as StatsType, VideoStatus as VideoStatusType } from "./RallyCache.js"

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/**
 * Reply of `OpenVideo` (`RallyCache.OpenedVideo`).
 *
 * @since 0.1.0
 */
export const OpenedVideo = Schema.Struct({
  source: VideoSource,
  info: SourceInfo,
  rallies: Schema.Array(Rally),
  mode: ExportMode
})

/**
 * State of one rally's clip (`RallyCache.RallyState`).
 *
 * @since 0.1.0
 */
export const RallyState = Schema.Union(
  Schema.TaggedStruct("Cached", { key: CacheKey, sizeBytes: Schema.Number }),
  Schema.TaggedStruct("Queued", { key: CacheKey, priority: Priority }),
  Schema.TaggedStruct("Running", { key: CacheKey, priority: Priority, progress: Schema.Number }),
  Schema.TaggedStruct("Failed", { key: CacheKey, reason: Schema.String }),
  Schema.TaggedStruct("Idle", { key: CacheKey })
)

/**
 * Reply of `Status` (`RallyCache.VideoStatus`).
 *
 * @since 0.1.0
 */
export const VideoStatus = Schema.Struct({
  videoId: Schema.String,
  current: Schema.NullOr(Schema.Number),
  rallies: Schema.Array(RallyState)
})

const QueueDepth = Schema.Struct({
  high: Schema.Number,
  normal: Schema.Number,
  low: Schema.Number,
  running: Schema.Number
})

/**
 * `Metrics.MetricsSnapshot` as a schema.
 *
 * @since 0.1.0
 */
export const MetricsSnapshotSchema = Schema.Struct({
  hits: Schema.Number,
  misses: Schema.Number,
  hitRate: Schema.Number,
  exports: Schema.Number,
  exportFailures: Schema.Number,
  exportRetries: Schema.Number,
  exportFallbacks: Schema.optional(Schema.Number),
  exportMs: Schema.Struct({
    count: Schema.Number,
    sum: Schema.Number,
    p50: Schema.Number,
    p99: Schema.Number,
    max: Schema.Number
  }),
  validations: Schema.Struct({ valid: Schema.Number, invalid: Schema.Number, successRate: Schema.Number }),
  queue: QueueDepth,
  cacheBytes: Schema.Number,
  cacheEntries: Schema.Number,
  evictions: Schema.Record({ key: EvictionReason, value: Schema.Number }),
  heapUsedBytes: Schema.Number
})

/**
 * `ExportQueue.QueueStatus` as a schema.
 *
 * @since 0.1.0
 */
export const QueueStatusSchema = Schema.Struct({
  queued: Schema.Struct({
    high: Schema.Array(CacheKey),
    normal: Schema.Array(CacheKey),
    low: Schema.Array(CacheKey)
  }),
  running: Schema.Array(Schema.Struct({ key: CacheKey, priority: Priority, paused: Schema.Boolean })),
  retrying: Schema.Array(Schema.Struct({ key: CacheKey, priority: Priority, attempt: Schema.Number })),
  completed: Schema.Number,
  failed: Schema.Number,
  cancelled: Schema.Number
})

/**
 * Reply of `Stats` (`RallyCache.Stats`).
 *
 * @since 0.1.0
 */
export const StatsResult = Schema.Struct({
  metrics: MetricsSnapshotSchema,
  usage: Schema.Struct({ bytes: Schema.Number, entries: Schema.Number }),
  queue: QueueStatusSchema,
  videos: Schema.Number
})

// The schemas above must describe the client API's types exactly: these
// assignments fail to compile when one of them drifts.
const _sameOpened: (a: OpenedVideoType) => typeof OpenedVideo.Type = (a) => a
const _sameStatus: (a: VideoStatusType) => typeof VideoStatus.Type = (a) => a
const _sameStatusBack: (a: typeof VideoStatus.Type) => VideoStatusType = (a) => a
const _sameStats: (a: StatsType) => typeof StatsResult.Type = (a) => a
const _sameStatsBack: (a: typeof StatsResult.Type) => StatsType = (a) => a
const _sameMetrics: (a: typeof MetricsSnapshotSchema.Type) => MetricsSnapshot = (a) => a
const _sameQueue: (a: typeof QueueStatusSchema.Type) => QueueStatus = (a) => a
void [_sameOpened, _sameStatus, _sameStatusBack, _sameStats, _sameStatsBack, _sameMetrics, _sameQueue]

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/**
 * What `OpenVideo` fails with.
 *
 * @since 0.1.0
 */
export const OpenFailure = Schema.Union(
  InvalidInput,
  InvalidRally,
  SourceNotFound,
  SourceUnreadable,
  NotMediaFile,
  UnsupportedSource
)

/**
 * What `GetClip` fails with: the video or rally is unknown, or its export
 * failed or was cancelled.
 *
 * @since 0.1.0
 */
export const ClipFailure = Schema.Union(
  UnknownVideo,
  RallyNotFound,
  ...ExportError.members,
  ExportCancelled
)

const VideoFailure = Schema.Union(UnknownVideo, RallyNotFound)

// Indexes are plain numbers, not `Int`: a request is built from user input,
// and a bad index must reach the actor and come back as `RallyNotFound`
// rather than throw in a constructor.
const Index = Schema.Number

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/**
 * Probe a source, validate its rallies and register the video (replacing
 * the rallies of an open video of the same id).
 *
 * @since 0.1.0
 */
export class OpenVideo extends Schema.TaggedRequest<OpenVideo>()("OpenVideo", {
  failure: OpenFailure,
  success: OpenedVideo,
  payload: {
    path: Schema.String,
    rallies: Schema.Array(Schema.Struct({ start: Schema.Number, end: Schema.Number })),
    /** Default: a hash of the source's fingerprint. */
    id: Schema.optional(Schema.String),
    /** Default: the configured `mode`. */
    mode: Schema.optional(ExportMode)
  }
}) {}

/**
 * The viewer is at rally `index`.
 *
 * @since 0.1.0
 */
export class Navigate extends Schema.TaggedRequest<Navigate>()("Navigate", {
  failure: VideoFailure,
  success: Schema.Void,
  payload: { videoId: Schema.String, index: Index }
}) {}

/**
 * The clip of rally `index`, exported at high priority if needed.
 *
 * @since 0.1.0
 */
export class GetClip extends Schema.TaggedRequest<GetClip>()("GetClip", {
  failure: ClipFailure,
  success: Clip,
  payload: { videoId: Schema.String, index: Index }
}) {}

/**
 * Queue rallies (all by default) at `priority` (low by default).
 *
 * @since 0.1.0
 */
export class Preload extends Schema.TaggedRequest<Preload>()("Preload", {
  failure: VideoFailure,
  success: Schema.Void,
  payload: {
    videoId: Schema.String,
    indexes: Schema.optional(Schema.Array(Index)),
    priority: Schema.optional(Priority)
  }
}) {}

/**
 * Remove the cached clips of a video (or of one rally). Replies how many
 * were removed.
 *
 * @since 0.1.0
 */
export class Invalidate extends Schema.TaggedRequest<Invalidate>()("Invalidate", {
  failure: Schema.Union(UnknownVideo, RallyNotFound, CacheIOError),
  success: Schema.Number,
  payload: { videoId: Schema.String, index: Schema.optional(Index) }
}) {}

/**
 * State of each rally of a video.
 *
 * @since 0.1.0
 */
export class Status extends Schema.TaggedRequest<Status>()("Status", {
  failure: UnknownVideo,
  success: VideoStatus,
  payload: { videoId: Schema.String }
}) {}

/**
 * Metrics, cache usage and queue status.
 *
 * @since 0.1.0
 */
export class Stats extends Schema.TaggedRequest<Stats>()("Stats", {
  failure: Schema.Never,
  success: StatsResult,
  payload: {}
}) {}

/**
 * Forget a video: cancel its queued work and release its pins.
 *
 * @since 0.1.0
 */
export class Close extends Schema.TaggedRequest<Close>()("Close", {
  failure: Schema.Never,
  success: Schema.Void,
  payload: { videoId: Schema.String }
}) {}

/**
 * Every message of the actor, as one schema.
 *
 * @since 0.1.0
 */
export const Message = Schema.Union(OpenVideo, Navigate, GetClip, Preload, Invalidate, Status, Stats, Close)

/**
 * @since 0.1.0
 */
export type Message = typeof Message.Type
