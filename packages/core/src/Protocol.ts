/**
 * The data that crosses the cache's boundary, declared once as schemas: what
 * `RallyCache`'s functions return, what the manager's messages carry back,
 * what a cluster entity sends over the wire. Every type of these replies
 * (`RallyCache.OpenedVideo`, `Metrics.MetricsSnapshot`,
 * `ExportQueue.QueueStatus`, ...) is derived from a schema here, so a new
 * field is a one-place change.
 *
 * The module sits low in core: it imports only `Domain`, so the client API,
 * the messages, the metrics and the queue can all import it.
 *
 * @since 0.2.0
 */
import { Schema } from "effect"
import { CacheKey, EvictionReason, ExportMode, Priority, Rally, SourceInfo, VideoSource } from "./Domain.js"

/**
 * A video to open: its file, its rallies in seconds, and optionally its id
 * (default: derived from the source fingerprint) and export mode (default:
 * the configured `mode`).
 *
 * @since 0.2.0
 * @category models
 */
export const OpenVideoInput = Schema.Struct({
  path: Schema.String,
  rallies: Schema.Array(Schema.Struct({ start: Schema.Number, end: Schema.Number })),
  id: Schema.optional(Schema.String),
  mode: Schema.optional(ExportMode)
})

/**
 * @since 0.2.0
 * @category models
 */
export type OpenVideoInput = typeof OpenVideoInput.Type

/**
 * An open video: its source, what the probe found, its rallies and the mode
 * its clips are cut in.
 *
 * @since 0.2.0
 * @category models
 */
export const OpenedVideo = Schema.Struct({
  source: VideoSource,
  info: SourceInfo,
  rallies: Schema.Array(Rally),
  mode: ExportMode
})

/**
 * @since 0.2.0
 * @category models
 */
export type OpenedVideo = typeof OpenedVideo.Type

/**
 * State of one rally's clip.
 *
 * @since 0.2.0
 * @category models
 */
export const RallyState = Schema.Union(
  Schema.TaggedStruct("Cached", { key: CacheKey, sizeBytes: Schema.Number }),
  Schema.TaggedStruct("Queued", { key: CacheKey, priority: Priority }),
  Schema.TaggedStruct("Running", { key: CacheKey, priority: Priority, progress: Schema.Number }),
  Schema.TaggedStruct("Failed", { key: CacheKey, reason: Schema.String }),
  Schema.TaggedStruct("Idle", { key: CacheKey })
)

/**
 * @since 0.2.0
 * @category models
 */
export type RallyState = typeof RallyState.Type

/**
 * The state of each rally of a video, and the rally being watched.
 *
 * @since 0.2.0
 * @category models
 */
export const VideoStatus = Schema.Struct({
  videoId: Schema.String,
  current: Schema.NullOr(Schema.Number),
  rallies: Schema.Array(RallyState)
})

/**
 * @since 0.2.0
 * @category models
 */
export type VideoStatus = typeof VideoStatus.Type

/**
 * How many jobs wait per priority, and how many hold a worker.
 *
 * @since 0.2.0
 * @category models
 */
export const QueueDepth = Schema.Struct({
  high: Schema.Number,
  normal: Schema.Number,
  low: Schema.Number,
  running: Schema.Number
})

/**
 * @since 0.2.0
 * @category models
 */
export type QueueDepth = typeof QueueDepth.Type

/**
 * The export queue's keys by state, and its totals.
 *
 * @since 0.2.0
 * @category models
 */
export const QueueStatus = Schema.Struct({
  queued: Schema.Struct({
    high: Schema.Array(CacheKey),
    normal: Schema.Array(CacheKey),
    low: Schema.Array(CacheKey)
  }),
  running: Schema.Array(Schema.Struct({ key: CacheKey, priority: Priority, paused: Schema.Boolean })),
  /**
   * Jobs waiting out a retry backoff after a transient failure. They hold no
   * slot while they wait, then go to the front of their priority.
   */
  retrying: Schema.Array(Schema.Struct({ key: CacheKey, priority: Priority, attempt: Schema.Number })),
  completed: Schema.Number,
  failed: Schema.Number,
  cancelled: Schema.Number
})

/**
 * @since 0.2.0
 * @category models
 */
export type QueueStatus = typeof QueueStatus.Type

/**
 * A point-in-time view of an instance's metrics.
 *
 * @since 0.2.0
 * @category models
 */
export const MetricsSnapshot = Schema.Struct({
  hits: Schema.Number,
  misses: Schema.Number,
  /** hits / (hits + misses), 0 when there was no request. */
  hitRate: Schema.Number,
  exports: Schema.Number,
  exportFailures: Schema.Number,
  exportRetries: Schema.Number,
  /** Clips cut in another mode than the one requested (e.g. exact to accurate). */
  exportFallbacks: Schema.optional(Schema.Number),
  /** Clips written by the in-process cutter (no ffmpeg child). */
  inProcessCuts: Schema.optional(Schema.Number),
  /** Clips the in-process cutter refused, so ffmpeg cut them (see `CacheEvent.InProcessCutRefused`). */
  inProcessRefusals: Schema.optional(Schema.Number),
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
 * @since 0.2.0
 * @category models
 */
export type MetricsSnapshot = typeof MetricsSnapshot.Type

/**
 * Bytes and entries a cache store holds.
 *
 * @since 0.2.0
 * @category models
 */
export const Usage = Schema.Struct({ bytes: Schema.Number, entries: Schema.Number })

/**
 * @since 0.2.0
 * @category models
 */
export type Usage = typeof Usage.Type

/**
 * Metrics, cache usage, queue status and the number of open videos.
 *
 * @since 0.2.0
 * @category models
 */
export const Stats = Schema.Struct({
  metrics: MetricsSnapshot,
  usage: Usage,
  queue: QueueStatus,
  videos: Schema.Number
})

/**
 * @since 0.2.0
 * @category models
 */
export type Stats = typeof Stats.Type
