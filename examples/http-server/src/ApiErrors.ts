/**
 * The API's failures, each with its HTTP status and a one-line `message`
 * saying what is wrong and how to fix it. Every error body is
 * `{ "_tag": name, "message": one line }`; a request that does not match
 * the declared schemas (body, path, headers) is @effect/platform's
 * `HttpApiDecodeError` (400), whose `message` names the field
 * (`rallies[0].start: ...`). Browser-safe: the derived client decodes them.
 *
 * @since 0.1.0
 */
import { HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"

const fields = { message: Schema.String }

/**
 * A rally that does not fit the video (it ends past the video's end).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidRally
  extends Schema.TaggedError<InvalidRally>()("InvalidRally", fields, HttpApiSchema.annotations({ status: 400 }))
{}

/**
 * A path outside the media root (after resolving `..` and symbolic links).
 *
 * @since 0.1.0
 * @category errors
 */
export class OutsideMediaRoot
  extends Schema.TaggedError<OutsideMediaRoot>()("OutsideMediaRoot", fields, HttpApiSchema.annotations({ status: 403 }))
{}

/**
 * No file at that path under the media root.
 *
 * @since 0.1.0
 * @category errors
 */
export class MediaNotFound
  extends Schema.TaggedError<MediaNotFound>()("MediaNotFound", fields, HttpApiSchema.annotations({ status: 404 }))
{}

/**
 * The video's source file is gone.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceNotFound
  extends Schema.TaggedError<SourceNotFound>()("SourceNotFound", fields, HttpApiSchema.annotations({ status: 404 }))
{}

/**
 * No video registered under that id.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownVideo
  extends Schema.TaggedError<UnknownVideo>()("UnknownVideo", fields, HttpApiSchema.annotations({ status: 404 }))
{}

/**
 * The video has no rally with that index.
 *
 * @since 0.1.0
 * @category errors
 */
export class RallyNotFound
  extends Schema.TaggedError<RallyNotFound>()("RallyNotFound", fields, HttpApiSchema.annotations({ status: 404 }))
{}

/**
 * A JSON body sent without `Content-Length` (chunked).
 *
 * @since 0.1.0
 * @category errors
 */
export class LengthRequired
  extends Schema.TaggedError<LengthRequired>()("LengthRequired", fields, HttpApiSchema.annotations({ status: 411 }))
{}

/**
 * A JSON body larger than `Api.maxJsonBytes`.
 *
 * @since 0.1.0
 * @category errors
 */
export class BodyTooLarge
  extends Schema.TaggedError<BodyTooLarge>()("BodyTooLarge", fields, HttpApiSchema.annotations({ status: 413 }))
{}

/**
 * No range of the `Range` header lies in the clip; the answer carries
 * `Content-Range: bytes *\/size` and no body.
 *
 * @since 0.1.0
 * @category errors
 */
export class RangeNotSatisfiable extends HttpApiSchema.EmptyError<RangeNotSatisfiable>()({
  tag: "RangeNotSatisfiable",
  status: 416
}) {}

/**
 * The file cannot be read.
 *
 * @since 0.1.0
 * @category errors
 */
export class SourceUnreadable
  extends Schema.TaggedError<SourceUnreadable>()("SourceUnreadable", fields, HttpApiSchema.annotations({ status: 422 }))
{}

/**
 * The file is not a video ffmpeg can read.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotMediaFile
  extends Schema.TaggedError<NotMediaFile>()("NotMediaFile", fields, HttpApiSchema.annotations({ status: 422 }))
{}

/**
 * The file is media that cannot be cut (no video stream, an unsupported codec).
 *
 * @since 0.1.0
 * @category errors
 */
export class UnsupportedSource
  extends Schema.TaggedError<UnsupportedSource>()("UnsupportedSource", fields, HttpApiSchema.annotations({ status: 422 }))
{}

/**
 * Anything unexpected: the cause is in the server's log, never in the answer.
 *
 * @since 0.1.0
 * @category errors
 */
export class InternalError
  extends Schema.TaggedError<InternalError>()("InternalError", fields, HttpApiSchema.annotations({ status: 500 }))
{}

/**
 * The clip's export was cancelled before it finished (shutdown, or the
 * video was closed); asking again starts a new one.
 *
 * @since 0.1.0
 * @category errors
 */
export class ExportCancelled
  extends Schema.TaggedError<ExportCancelled>()("ExportCancelled", fields, HttpApiSchema.annotations({ status: 503 }))
{}

/**
 * The clip was not exported within the server's clip timeout (it keeps
 * exporting).
 *
 * @since 0.1.0
 * @category errors
 */
export class ClipTimeout
  extends Schema.TaggedError<ClipTimeout>()("ClipTimeout", fields, HttpApiSchema.annotations({ status: 504 }))
{}

/**
 * The cache behind the server is a cluster and no runner answered in time
 * (`ClusterUnavailable` of `@rallycache/cluster`); asking again later may succeed.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClusterUnavailable extends Schema.TaggedError<ClusterUnavailable>()(
  "ClusterUnavailable",
  fields,
  HttpApiSchema.annotations({ status: 503 })
) {}

/**
 * The failures of opening a video from a client.
 *
 * @since 0.1.0
 * @category errors
 */
export const OpenErrors = [
  InvalidRally,
  OutsideMediaRoot,
  MediaNotFound,
  SourceNotFound,
  SourceUnreadable,
  NotMediaFile,
  UnsupportedSource
] as const
