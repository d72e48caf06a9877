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
import { Clip, Priority } from "./Domain.js"
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
import * as Protocol from "./Protocol.js"

// ---------------------------------------------------------------------------
// Replies: declared once in `Protocol`, re-exported under the names the
// messages have always used.
// ---------------------------------------------------------------------------

/**
 * Reply of `OpenVideo` (`Protocol.OpenedVideo`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const OpenedVideo = Protocol.OpenedVideo

/**
 * State of one rally's clip (`Protocol.RallyState`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const RallyState = Protocol.RallyState

/**
 * Reply of `Status` (`Protocol.VideoStatus`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const VideoStatus = Protocol.VideoStatus

/**
 * `Metrics.MetricsSnapshot` as a schema (`Protocol.MetricsSnapshot`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const MetricsSnapshotSchema = Protocol.MetricsSnapshot

/**
 * `ExportQueue.QueueStatus` as a schema (`Protocol.QueueStatus`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const QueueStatusSchema = Protocol.QueueStatus

/**
 * Reply of `Stats` (`Protocol.Stats`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const StatsResult = Protocol.Stats

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/**
 * What `OpenVideo` fails with.
 *
 * @since 0.1.0
 * @category schemas
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
 * @category schemas
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
 * @category models
 */
export class OpenVideo extends Schema.TaggedRequest<OpenVideo>()("OpenVideo", {
  failure: OpenFailure,
  success: OpenedVideo,
  payload: Protocol.OpenVideoInput.fields
}) {}

/**
 * The viewer is at rally `index`.
 *
 * @since 0.1.0
 * @category models
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
 * @category models
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
 * @category models
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
 * @category models
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
 * @category models
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
 * @category models
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
 * @category models
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
 * @category schemas
 */
export const Message = Schema.Union(OpenVideo, Navigate, GetClip, Preload, Invalidate, Status, Stats, Close)

/**
 * @since 0.1.0
 * @category models
 */
export type Message = typeof Message.Type
