/**
 * Typed errors. Each one is either **permanent** (retrying cannot help: bad
 * input, missing source) or **transient** (a retry may succeed: killed
 * process, I/O error, full disk). `isTransient` tells them apart, and the
 * export queue retries only transient failures.
 *
 * Every `message` is one line that says what is wrong and how to fix it, so
 * the CLI can print it as is.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

/** Sources may be http(s) URLs; their messages say URL instead of file. */
const isUrl = (path: string): boolean => /^https?:\/\//i.test(path)

/**
 * Input that does not fit the model: a rallies file, an option, a config
 * value. `field` names where (for example `rallies[3].end`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  field: Schema.String,
  reason: Schema.String,
  fix: Schema.optional(Schema.String)
}) {
  override get message(): string {
    return `${this.field}: ${this.reason}${this.fix === undefined ? "" : ` (${this.fix})`}`
  }
}

/**
 * A rally that cannot be cut: negative or reversed times, too long, or past
 * the end of the video.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRally extends Schema.TaggedError<InvalidRally>()("InvalidRally", {
  index: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `rally ${this.index}: ${this.reason} (fix its start and end in the rallies list)`
  }
}

/**
 * A video id that was never opened (or was closed).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownVideo extends Schema.TaggedError<UnknownVideo>()("UnknownVideo", {
  videoId: Schema.String
}) {
  override get message(): string {
    return `video ${JSON.stringify(this.videoId)} is not open (open it with openVideo before asking for its clips)`
  }
}

/**
 * A rally index outside the video's rally list.
 *
 * @since 0.1.0
 * @category errors
 */
export class RallyNotFound extends Schema.TaggedError<RallyNotFound>()("RallyNotFound", {
  videoId: Schema.String,
  index: Schema.Number,
  count: Schema.Number
}) {
  override get message(): string {
    return `video ${JSON.stringify(this.videoId)} has no rally ${this.index} (valid indexes are 0 to ${this.count - 1})`
  }
}

/**
 * The source video does not exist.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceNotFound extends Schema.TaggedError<SourceNotFound>()("SourceNotFound", {
  path: Schema.String
}) {
  override get message(): string {
    return `source video not found: ${this.path} (check the ${isUrl(this.path) ? "URL" : "path"})`
  }
}

/**
 * The source exists but cannot be read (permissions, a directory...).
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceUnreadable extends Schema.TaggedError<SourceUnreadable>()("SourceUnreadable", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot read source video ${this.path}: ${this.reason} (check that it is a readable ${
      isUrl(this.path) ? "URL" : "file"
    })`
  }
}

/**
 * The source is not a media file ffmpeg can read, or has no stream to cut.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotMediaFile extends Schema.TaggedError<NotMediaFile>()("NotMediaFile", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `not a playable video: ${this.path}: ${this.detail} (pass an mp4, mkv, mov or another file ffmpeg can read)`
  }
}

/**
 * A media file the project cannot cut: no video stream, encrypted, or a
 * video codec that can be neither copied nor decoded. Refused when the
 * video is opened, so nothing reaches the cache.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedSource extends Schema.TaggedError<UnsupportedSource>()("UnsupportedSource", {
  path: Schema.String,
  reason: Schema.String
}) {
  override get message(): string {
    return `cannot cut ${this.path}: ${this.reason} (pass a video with an H.264, HEVC, VP9, AV1 or ProRes stream, not encrypted)`
  }
}

/**
 * An export failed. `transient` says whether a retry may help: a process
 * killed by a signal, an I/O error or a timeout are transient; a full disk
 * is only when space came back since the attempt; an ffmpeg that rejects
 * its input is not.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExportFailed extends Schema.TaggedError<ExportFailed>()("ExportFailed", {
  reason: Schema.Literal("exit", "signal", "io", "no-space", "timeout", "verify"),
  detail: Schema.String,
  transient: Schema.Boolean,
  /** The last lines ffmpeg wrote to stderr, for diagnosis. */
  stderr: Schema.optionalWith(Schema.String, { default: () => "" })
}) {
  override get message(): string {
    const hint = this.reason === "no-space"
      ? "free disk space or lower maxBytes"
      : this.reason === "timeout"
      ? "raise exportTimeout or check the source"
      : this.transient
      ? "it will be retried; run with --verbose for ffmpeg's output"
      : "run with --verbose for ffmpeg's output"
    return `export failed (${this.reason}): ${this.detail} (${hint})`
  }
}

/**
 * A queued or running export was cancelled (the viewer moved on, or the
 * program is shutting down). Not a failure: it is never counted or retried.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExportCancelled extends Schema.TaggedError<ExportCancelled>()("ExportCancelled", {
  key: Schema.String
}) {
  override get message(): string {
    return `export ${this.key} was cancelled before it finished (request the clip again)`
  }
}

/**
 * The cache folder or its index could not be read or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class CacheIOError extends Schema.TaggedError<CacheIOError>()("CacheIOError", {
  op: Schema.String,
  path: Schema.String,
  reason: Schema.String,
  /** `ENOSPC`, `EIO`... when known. */
  code: Schema.optional(Schema.String)
}) {
  override get message(): string {
    const hint = this.code === "ENOSPC"
      ? "free disk space or lower maxBytes"
      : this.code === "EACCES" || this.code === "EPERM"
      ? "check the cache folder's permissions or pass another --cache-dir"
      : "check the cache folder"
    return `cache ${this.op} failed for ${this.path}: ${this.reason} (${hint})`
  }
}

/**
 * Everything an export can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type ExportError =
  | SourceNotFound
  | SourceUnreadable
  | NotMediaFile
  | UnsupportedSource
  | InvalidRally
  | ExportFailed
  | CacheIOError

/**
 * Schema of `ExportError`, so failures can cross a process boundary.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ExportError = Schema.Union(
  SourceNotFound,
  SourceUnreadable,
  NotMediaFile,
  UnsupportedSource,
  InvalidRally,
  ExportFailed,
  CacheIOError
)

/**
 * Whether a retry may help. Unknown values are treated as permanent, so a
 * defect is never retried in a loop.
 *
 * @since 0.1.0
 * @category guards
 */
export const isTransient = (error: unknown): boolean => {
  if (!Predicate.hasProperty(error, "_tag")) return false
  switch (error._tag) {
    case "ExportFailed":
      return (error as ExportFailed).transient
    case "CacheIOError":
      return true
    default:
      return false
  }
}

const inputTags: ReadonlySet<string> = new Set([
  "InvalidInput",
  "InvalidRally",
  "UnknownVideo",
  "RallyNotFound",
  "SourceNotFound",
  "SourceUnreadable",
  "NotMediaFile",
  "UnsupportedSource"
])

/**
 * Whether the caller must fix its input (a rallies file, a path, an id, an
 * option): exit code 2 in a command, a 4xx answer in a server. Everything
 * else is a runtime failure.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isInputError = (error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" && inputTags.has(error._tag)
