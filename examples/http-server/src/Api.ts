/**
 * The HTTP API's shapes, as Schemas: request bodies (the rallies grammar of
 * `@rallycache/core`'s `Domain`), path parameters and headers, and replies,
 * their types derived from the schemas. Browser-safe: `ViewerApi` declares
 * the routes with them, and the player page bundles them.
 *
 * Rallies are numbered from 0 everywhere: in these replies, in the clip
 * route's `:n`, in `navigate`'s `index`, in the CLI's `--index` and its
 * `rally-000.mp4` names.
 *
 * @since 0.1.0
 */
import * as Domain from "@rallycache/core/Domain"
import * as RalliesGrammar from "@rallycache/core/RalliesGrammar"
import { Schema } from "effect"

/**
 * Largest JSON request body read, in bytes: the routes take a path and a
 * rally list, a few KiB at most for a real match.
 *
 * @since 0.1.0
 * @category limits
 */
export const maxJsonBytes = 64 * 1024

const FilePath = Schema.String.pipe(
  Schema.minLength(1, { message: () => "must not be empty (a file under the media root)" })
)

/**
 * `POST /api/videos`: a file under the media root and its rallies, given
 * either inline (`rallies`) or as a rallies file under the media root
 * (`ralliesFile`, read with the CLI's grammar; its `videoId` is the default
 * id).
 *
 * @since 0.1.0
 * @category requests
 */
export const RegisterVideo = Schema.Struct({
  /** A video file under the media root: absolute, or relative to the root. */
  path: FilePath,
  /** The rallies, as a rallies file lists them (seconds, `m:ss` or `h:mm:ss`). */
  rallies: Schema.optional(RalliesGrammar.RallyList),
  /** A rallies file under the media root, instead of `rallies`. */
  ralliesFile: Schema.optional(FilePath),
  /** Default: the rallies file's `videoId`, else derived from the video's fingerprint. */
  id: Schema.optional(RalliesGrammar.VideoIdInput),
  /** Default: the server's `RALLYCACHE_MODE`, else `exact`. */
  mode: Schema.optional(Domain.ExportMode)
}).annotations({ identifier: "RegisterVideo" })
/** @since 0.1.0 */
export type RegisterVideo = typeof RegisterVideo.Type

/**
 * `POST /api/videos/:id/navigate`: the rally the viewer is at, from 0.
 *
 * @since 0.1.0
 * @category requests
 */
export const Navigate = Schema.Struct({
  index: Schema.Int.pipe(Schema.nonNegative())
}).annotations({ identifier: "Navigate" })

/**
 * A rally index in a path: decimal digits only (`0x1` and `1e0` are not
 * indexes), counted from 0.
 *
 * @since 0.1.0
 * @category requests
 */
export const RallyIndex = Schema.String.pipe(
  Schema.pattern(/^\d{1,9}$/, { message: () => "a rally index is decimal digits (0, 1, 2, ...)" }),
  Schema.compose(Schema.NumberFromString)
).annotations({ description: "The rally's index, counted from 0" })

/**
 * `:id` of the video routes.
 *
 * @since 0.1.0
 * @category requests
 */
export const VideoParams = Schema.Struct({ id: Schema.String })

/**
 * `:id` and `:n` of the rally routes.
 *
 * @since 0.1.0
 * @category requests
 */
export const RallyParams = Schema.Struct({ id: Schema.String, n: RallyIndex })

/**
 * The request headers the clip route reads.
 *
 * @since 0.1.0
 * @category requests
 */
export const ClipHeaders = Schema.Struct({
  range: Schema.optional(Schema.String).annotations({
    description: "`bytes=a-b`, `bytes=a-` or `bytes=-n` (RFC 9110 §14.2); of several ranges the first satisfiable one is sent"
  }),
  "if-range": Schema.optional(Schema.String).annotations({
    description: "The clip's ETag: the Range applies only while the clip is unchanged"
  }),
  "if-none-match": Schema.optional(Schema.String).annotations({
    description: "ETags the client holds: 304 when the clip is one of them"
  })
})

const RallyTimesFields = {
  /** Counted from 0. */
  index: Schema.Int,
  start: Schema.Number,
  end: Schema.Number
}

/**
 * One rally's times, in seconds from the start of the video.
 *
 * @since 0.1.0
 * @category replies
 */
export const RallyTimes = Schema.Struct(RallyTimesFields).annotations({ identifier: "RallyTimes" })

/**
 * A registered video, in the list of videos.
 *
 * @since 0.1.0
 * @category replies
 */
export const VideoSummary = Schema.Struct({
  id: Schema.String,
  /** The video file's name. */
  title: Schema.String,
  /** In seconds. */
  duration: Schema.Number,
  rallyCount: Schema.Int,
  mode: Domain.ExportMode
}).annotations({ identifier: "VideoSummary" })
/** @since 0.1.0 */
export type VideoSummary = typeof VideoSummary.Type

/**
 * A registered video and its rallies: the reply to `POST /api/videos` and
 * `GET /api/videos/:id`.
 *
 * @since 0.1.0
 * @category replies
 */
export const VideoReply = Schema.Struct({
  ...VideoSummary.fields,
  rallies: Schema.Array(RallyTimes)
}).annotations({ identifier: "VideoReply" })
/** @since 0.1.0 */
export type VideoReply = typeof VideoReply.Type

/**
 * The reply to `POST /api/videos/:id/navigate`.
 *
 * @since 0.1.0
 * @category replies
 */
export const NavigateReply = Schema.Struct({ videoId: Schema.String, current: Schema.Int })

/**
 * One rally in `GET /api/videos/:id/status`: its times and its state.
 *
 * @since 0.1.0
 * @category replies
 */
export const RallyReply = Schema.Union(
  Schema.Struct({ ...RallyTimesFields, state: Schema.Literal("cached"), key: Schema.String, sizeBytes: Schema.Number }),
  Schema.Struct({ ...RallyTimesFields, state: Schema.Literal("queued"), key: Schema.String, priority: Domain.Priority }),
  Schema.Struct({
    ...RallyTimesFields,
    state: Schema.Literal("running"),
    key: Schema.String,
    priority: Domain.Priority,
    /** From 0 to 1. */
    progress: Schema.Number
  }),
  Schema.Struct({ ...RallyTimesFields, state: Schema.Literal("failed"), key: Schema.String, reason: Schema.String }),
  Schema.Struct({ ...RallyTimesFields, state: Schema.Literal("idle"), key: Schema.optional(Schema.String) })
).annotations({ identifier: "RallyReply" })
/** @since 0.1.0 */
export type RallyReply = typeof RallyReply.Type

/**
 * The reply to `GET /api/videos/:id/status`.
 *
 * @since 0.1.0
 * @category replies
 */
export const StatusReply = Schema.Struct({
  videoId: Schema.String,
  /** The rally the viewer is at (from 0), or null before the first `navigate`. */
  current: Schema.NullOr(Schema.Int),
  /**
   * The server's preload window: how many rallies after the current one it
   * exports ahead of the viewer (its `preloadAhead` setting,
   * `RALLYCACHE_PRELOAD_AHEAD`). The page prepares no further ahead.
   */
  preloadAhead: Schema.Int.pipe(Schema.nonNegative()),
  rallies: Schema.Array(RallyReply),
  queue: Schema.Struct({ high: Schema.Int, normal: Schema.Int, low: Schema.Int, running: Schema.Int }),
  stats: Schema.Struct({
    hits: Schema.Number,
    misses: Schema.Number,
    hitRate: Schema.Number,
    exports: Schema.Number,
    exportFailures: Schema.Number,
    cacheBytes: Schema.Number,
    cacheEntries: Schema.Number
  })
}).annotations({ identifier: "StatusReply" })
/** @since 0.1.0 */
export type StatusReply = typeof StatusReply.Type

/**
 * A video file under the media root.
 *
 * @since 0.1.0
 * @category replies
 */
export const MediaFile = Schema.Struct({
  /** Relative to the media root, with `/` separators: what `POST /api/videos` takes. */
  path: Schema.String,
  sizeBytes: Schema.Number
}).annotations({ identifier: "MediaFile" })

/**
 * A JSON file under the media root, read as a rallies file: its rally count
 * (and `videoId`) when it is one, else the one-line problem.
 *
 * @since 0.1.0
 * @category replies
 */
export const RalliesFileEntry = Schema.Struct({
  path: Schema.String,
  sizeBytes: Schema.Number,
  rallyCount: Schema.optional(Schema.Int),
  videoId: Schema.optional(Schema.String),
  problem: Schema.optional(Schema.String)
}).annotations({ identifier: "RalliesFileEntry" })
/** @since 0.1.0 */
export type RalliesFileEntry = typeof RalliesFileEntry.Type

/**
 * The reply to `GET /api/media`: what can be registered.
 *
 * @since 0.1.0
 * @category replies
 */
export const MediaReply = Schema.Struct({
  videos: Schema.Array(MediaFile),
  ralliesFiles: Schema.Array(RalliesFileEntry),
  /** True when the walk stopped at its limit (files or depth) before seeing everything. */
  truncated: Schema.Boolean
}).annotations({ identifier: "MediaReply" })
/** @since 0.1.0 */
export type MediaReply = typeof MediaReply.Type
