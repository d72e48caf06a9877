/**
 * The domain model of rallycache: sources, rallies, priorities, cache keys,
 * cache entries and clips. Every type here is a `Schema`, so it can cross a
 * process boundary (the CLI's JSON, the HTTP API, a future cluster entity)
 * without a hand-written codec.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The longest video id accepted, in characters.
 *
 * @since 0.1.0
 * @category models
 */
export const maxVideoIdLength = 4096

/**
 * A user-chosen id for a video. Any non-empty string: it is never used raw in
 * a file name (cache keys are hashes).
 *
 * @since 0.1.0
 * @category schemas
 */
export const VideoId = Schema.String.pipe(
  Schema.minLength(1, { message: () => "video id must not be empty" }),
  Schema.maxLength(maxVideoIdLength, { message: () => `video id is longer than ${maxVideoIdLength} characters` }),
  Schema.brand("VideoId")
)
/**
 * @since 0.1.0
 * @category models
 */
export type VideoId = typeof VideoId.Type

/**
 * A video file and a fingerprint that changes whenever the file changes
 * (size and mtime at least), so that a re-encoded or replaced source never
 * serves clips cut from its previous content.
 *
 * @since 0.1.0
 * @category models
 */
export class VideoSource extends Schema.Class<VideoSource>("VideoSource")({
  id: VideoId,
  path: Schema.String,
  fingerprint: Schema.String.pipe(Schema.minLength(1))
}) {}

/**
 * How urgently a clip is needed.
 *
 * - `high`: the rally being watched (or explicitly requested).
 * - `normal`: the next rallies the viewer is likely to reach.
 * - `low`: everything else, exported in the background.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Priority = Schema.Literal("high", "normal", "low")
/**
 * @since 0.1.0
 * @category models
 */
export type Priority = typeof Priority.Type

/**
 * All priorities, most urgent first.
 *
 * @since 0.1.0
 * @category utils
 */
export const priorities: ReadonlyArray<Priority> = Priority.literals

const rankByPriority = Object.fromEntries(Priority.literals.map((p, rank) => [p, rank])) as Record<Priority, number>

/**
 * Rank of a priority: lower is more urgent.
 *
 * @since 0.1.0
 * @category utils
 */
export const priorityRank = (priority: Priority): number => rankByPriority[priority]

/**
 * The priority of a rank (the inverse of `priorityRank`).
 *
 * @since 0.2.0
 * @category models
 */
export const priorityAt = (rank: number): Priority => priorities[rank] ?? priorities[priorities.length - 1]!

/**
 * A time in seconds rounded to the microsecond: what a clip reports, so
 * sums and differences of frame times (`0.9200000000000017`) read as the
 * times they are (`0.92`). Finer than any frame, and than ffmpeg's own
 * microsecond time base.
 *
 * @since 0.1.0
 * @category utils
 */
export const roundTime = (seconds: number): number => Math.round(seconds * 1e6) / 1e6

/**
 * How a rally is cut.
 *
 * - `copy`: stream copy, about 20 ms, but the clip starts at the keyframe at
 *   or before the rally's start (up to one GOP early), and every player
 *   shows that lead-in.
 * - `exact`: stream copy from the same keyframe, with an mp4 edit list that
 *   hides the lead-in and the frames past the rally's end: players that
 *   honour edit lists present the rally's first frame first, at the cost of
 *   a copy. Sources whose streams do not fit mp4 fall back to `accurate`.
 * - `accurate`: re-encoded from the exact frame, seconds per clip.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ExportMode = Schema.Literal("copy", "exact", "accurate")

/**
 * Every export mode.
 *
 * @since 0.1.0
 * @category utils
 */
export const exportModes: ReadonlyArray<ExportMode> = ExportMode.literals

/**
 * The clip's container, chosen from the source's streams.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Container = Schema.Literal("mp4", "mov", "mkv", "webm")
/**
 * @since 0.1.0
 * @category models
 */
export type Container = typeof Container.Type

/**
 * Every clip container.
 *
 * @since 0.2.0
 * @category models
 */
export const containers: ReadonlyArray<Container> = Container.literals

/**
 * The media type of each clip container, for `Content-Type` headers and
 * object metadata.
 *
 * @since 0.2.0
 * @category models
 */
export const containerMediaTypes: Readonly<Record<Container, string>> = {
  mp4: "video/mp4",
  mov: "video/quicktime",
  mkv: "video/x-matroska",
  webm: "video/webm"
}
/**
 * @since 0.1.0
 * @category models
 */
export type ExportMode = typeof ExportMode.Type

const Seconds = Schema.Number.pipe(
  Schema.finite({ message: () => "time must be a finite number of seconds" })
)

/**
 * One rally: a time range of the source video, in seconds.
 * `start >= 0` and `end > start`; the maximum length and the video's
 * duration are checked by `Rallies.validateRallies`.
 *
 * @since 0.1.0
 * @category models
 */
export class Rally extends Schema.Class<Rally>("Rally")(
  Schema.Struct({
    index: Schema.Int.pipe(Schema.nonNegative()),
    start: Seconds.pipe(Schema.nonNegative({ message: () => "rally start must be >= 0" })),
    end: Seconds
  }).pipe(
    Schema.filter((r) => r.end > r.start || `rally end (${r.end}) must be after its start (${r.start})`)
  )
) {
  /** Length of the rally in seconds. */
  get duration(): number {
    return this.end - this.start
  }
}

/**
 * A deterministic, filename-safe, fixed-length (32 lowercase hex characters)
 * key for one clip. See `CacheKey.make`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CacheKey = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{32}$/, { message: () => "a cache key is 32 lowercase hex characters" }),
  Schema.brand("CacheKey")
)
/**
 * @since 0.1.0
 * @category models
 */
export type CacheKey = typeof CacheKey.Type

/**
 * What the last validation of an entry found.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ValidationStatus = Schema.Literal("unchecked", "valid", "invalid")
/**
 * @since 0.1.0
 * @category models
 */
export type ValidationStatus = typeof ValidationStatus.Type

/**
 * Every validation status.
 *
 * @since 0.2.0
 * @category models
 */
export const validationStatuses: ReadonlyArray<ValidationStatus> = ValidationStatus.literals

/**
 * Why an entry left the cache.
 *
 * @since 0.1.0
 * @category schemas
 */
export const EvictionReason = Schema.Literal("size", "age", "per-video", "invalid", "manual", "source-changed")
/**
 * @since 0.1.0
 * @category models
 */
export type EvictionReason = typeof EvictionReason.Type

/**
 * Every eviction reason.
 *
 * @since 0.2.0
 * @category models
 */
export const evictionReasons: ReadonlyArray<EvictionReason> = EvictionReason.literals

/** Milliseconds since the Unix epoch. */
const EpochMillis = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())

/**
 * One clip in the cache. Times are epoch milliseconds (from `Clock`, so
 * TestClock drives them in tests).
 *
 * @since 0.1.0
 * @category models
 */
export class CacheEntry extends Schema.Class<CacheEntry>("CacheEntry")({
  id: Schema.UUID,
  key: CacheKey,
  videoId: VideoId,
  rallyIndex: Schema.Int.pipe(Schema.nonNegative()),
  mode: ExportMode,
  /** Where the clip really starts and ends in the source, in seconds. */
  clipStart: Schema.Number,
  clipEnd: Schema.Number,
  /** Source time of the first frame a player presents (differs from `clipStart` when an edit list hides a lead-in). */
  firstFrame: Schema.optional(Schema.Number),
  /** Seconds stored before `firstFrame` and hidden by the edit list (0 when nothing is hidden). */
  leadIn: Schema.optional(Schema.Number),
  /** The clip's container; absent means mp4. */
  container: Schema.optional(Container),
  createdAt: EpochMillis,
  accessedAt: EpochMillis,
  sizeBytes: Schema.Int.pipe(Schema.nonNegative()),
  priority: Priority,
  validation: ValidationStatus,
  validatedAt: Schema.NullOr(EpochMillis)
}) {}

/**
 * A clip ready to play: where it is and what it covers.
 *
 * @since 0.1.0
 * @category models
 */
export class Clip extends Schema.Class<Clip>("Clip")({
  key: CacheKey,
  videoId: VideoId,
  rallyIndex: Schema.Int.pipe(Schema.nonNegative()),
  mode: ExportMode,
  path: Schema.String,
  /** The rally as requested, in seconds. */
  start: Schema.Number,
  end: Schema.Number,
  /** Where the clip really begins and ends (copy mode may start up to one GOP early). */
  clipStart: Schema.Number,
  clipEnd: Schema.Number,
  /** Source time of the first frame a player presents (exact and accurate modes: the rally's first frame). */
  firstFrame: Schema.optional(Schema.Number),
  /** Seconds stored before `firstFrame` and hidden by the clip's edit list. */
  leadIn: Schema.optional(Schema.Number),
  /** The clip's container; absent means mp4. */
  container: Schema.optional(Container),
  sizeBytes: Schema.Int.pipe(Schema.nonNegative()),
  /** True when no export was needed to serve this request. */
  cached: Schema.Boolean
}) {}

/**
 * What a probe of a source found.
 *
 * @since 0.1.0
 * @category models
 */
export class SourceInfo extends Schema.Class<SourceInfo>("SourceInfo")({
  fingerprint: Schema.String,
  /** Duration in seconds. */
  duration: Schema.Number,
  /** Typical distance between keyframes in seconds, when known. */
  keyframeInterval: Schema.NullOr(Schema.Number),
  hasVideo: Schema.Boolean,
  hasAudio: Schema.Boolean,
  /** Frames per second of the video stream, when known: a rally must last at least one frame. */
  frameRate: Schema.optionalWith(Schema.NullOr(Schema.Number), { default: () => null })
}) {}
