/**
 * The HTTP API's shapes, as Schemas: request bodies (the rallies grammar
 * of `@rallycache/core`'s `Domain`), path parameters, replies (their types
 * derived from the schemas), and how failures become responses: every error
 * answers `{ "error": tag, "message": one line }`.
 *
 * @since 0.1.0
 */
import { HttpIncomingMessage, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Domain, Errors, RalliesGrammar } from "@rallycache/core"
import { Duration, Effect, Either, Option, Schema } from "effect"

/**
 * Largest JSON request body read, in bytes: the routes take a path and a
 * rally list, a few KiB at most for a real match.
 *
 * @since 0.1.0
 * @category limits
 */
export const maxJsonBytes = 64 * 1024

/**
 * `POST /api/videos`.
 *
 * @since 0.1.0
 * @category requests
 */
export const RegisterVideo = Schema.Struct({
  /** A file under the media root: absolute, or relative to the root. */
  path: Schema.String.pipe(Schema.minLength(1, { message: () => "must not be empty (a file under the media root)" })),
  rallies: RalliesGrammar.RallyList,
  /** Default: derived from the file's fingerprint. */
  id: Schema.optional(RalliesGrammar.VideoIdInput),
  mode: Schema.optional(Domain.ExportMode)
})
/** @since 0.1.0 */
export type RegisterVideo = typeof RegisterVideo.Type

/**
 * `POST /api/videos/:id/navigate`.
 *
 * @since 0.1.0
 * @category requests
 */
export const Navigate = Schema.Struct({
  index: Schema.Int.pipe(Schema.nonNegative())
})

/**
 * A rally index in a path: decimal digits only (`0x1` and `1e0` are not
 * indexes).
 *
 * @since 0.1.0
 * @category requests
 */
export const RallyIndex = Schema.String.pipe(
  Schema.pattern(/^\d{1,9}$/, { message: () => "a rally index is decimal digits (0, 1, 2, ...)" }),
  Schema.compose(Schema.NumberFromString)
)

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

const RallyTimes = { index: Schema.Int, start: Schema.Number, end: Schema.Number }

/**
 * The reply to `POST /api/videos`.
 *
 * @since 0.1.0
 * @category replies
 */
export const VideoReply = Schema.Struct({
  id: Schema.String,
  mode: Domain.ExportMode,
  duration: Schema.Number,
  rallies: Schema.Array(Schema.Struct(RallyTimes))
})
/** @since 0.1.0 */
export type VideoReply = typeof VideoReply.Type

/**
 * One rally in `GET /api/videos/:id/status`: its times and its state.
 *
 * @since 0.1.0
 * @category replies
 */
export const RallyReply = Schema.Union(
  Schema.Struct({ ...RallyTimes, state: Schema.Literal("cached"), key: Schema.String, sizeBytes: Schema.Number }),
  Schema.Struct({ ...RallyTimes, state: Schema.Literal("queued"), key: Schema.String, priority: Domain.Priority }),
  Schema.Struct({
    ...RallyTimes,
    state: Schema.Literal("running"),
    key: Schema.String,
    priority: Domain.Priority,
    progress: Schema.Number
  }),
  Schema.Struct({ ...RallyTimes, state: Schema.Literal("failed"), key: Schema.String, reason: Schema.String }),
  Schema.Struct({ ...RallyTimes, state: Schema.Literal("idle"), key: Schema.optional(Schema.String) })
)
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
  current: Schema.NullOr(Schema.Int),
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
})
/** @since 0.1.0 */
export type StatusReply = typeof StatusReply.Type

/**
 * A request body larger than the route accepts.
 *
 * @since 0.1.0
 * @category errors
 */
export class BodyTooLarge extends Schema.TaggedError<BodyTooLarge>()("BodyTooLarge", { limit: Schema.Number }) {
  override get message(): string {
    return `the request body is larger than ${this.limit} bytes (send a JSON body of at most that size)`
  }
}

/**
 * A JSON request without a `Content-Length` (a chunked body): its size must
 * be known before it is read.
 *
 * @since 0.1.0
 * @category errors
 */
export class LengthRequired extends Schema.TaggedError<LengthRequired>()("LengthRequired", {}) {
  override get message(): string {
    return "the request has no Content-Length (send the JSON body with its length, not chunked)"
  }
}

/**
 * A request body that is not JSON.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidBody extends Schema.TaggedError<InvalidBody>()("InvalidBody", {}) {
  override get message(): string {
    return "the body is not valid JSON (send application/json)"
  }
}

/**
 * A clip export took longer than the server's `clipTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClipTimeout extends Schema.TaggedError<ClipTimeout>()("ClipTimeout", {
  videoId: Schema.String,
  index: Schema.Number,
  timeout: Schema.DurationFromSelf
}) {
  override get message(): string {
    return `rally ${this.index} of video ${JSON.stringify(this.videoId)} was not exported within ${
      Duration.format(this.timeout)
    } (it keeps exporting; retry shortly or raise RALLYCACHE_CLIP_TIMEOUT)`
  }
}

/**
 * The JSON body of the request decoded with `schema`, read only when its
 * declared `Content-Length` is at most `maxJsonBytes`: a larger one is
 * refused (413) before any byte is read, and a body of unknown length
 * (chunked) too (411), since stopping it midway would cut the connection
 * before the answer.
 *
 * @since 0.1.0
 * @category requests
 */
export const bodyJson = <A, I>(
  schema: Schema.Schema<A, I>
): Effect.Effect<
  A,
  BodyTooLarge | LengthRequired | InvalidBody | Errors.InvalidInput,
  HttpServerRequest.HttpServerRequest
> =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const declared = request.headers["content-length"]
    if (declared === undefined) return yield* new LengthRequired()
    if (!(Number(declared) <= maxJsonBytes)) return yield* new BodyTooLarge({ limit: maxJsonBytes })
    // Node holds the body to its declared length; the limit is a second guard.
    const text = yield* request.text.pipe(
      HttpIncomingMessage.withMaxBodySize(Option.some(maxJsonBytes)),
      Effect.mapError(() => new InvalidBody())
    )
    const json = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => new InvalidBody() })
    return yield* Either.match(RalliesGrammar.decodeInput(schema, json, "body"), {
      onLeft: (error) => Effect.fail(error),
      onRight: (value) => Effect.succeed(value)
    })
  })

/**
 * Path parameters decoded with `schema`; a bad one is an `InvalidInput`
 * naming it.
 *
 * @since 0.1.0
 * @category requests
 */
export const params = <A, I>(
  schema: Schema.Schema<A, I>,
  values: Readonly<Record<string, string | undefined>>
): Effect.Effect<A, Errors.InvalidInput> => RalliesGrammar.decodeInput(schema, values, "path")

/**
 * A JSON error response.
 *
 * @since 0.1.0
 * @category replies
 */
export const errorResponse = (
  status: number,
  error: string,
  message: string,
  headers: Record<string, string> = {}
): HttpServerResponse.HttpServerResponse => HttpServerResponse.unsafeJson({ error, message }, { status, headers })

/**
 * The status of each failure this API answers; anything else is a 500.
 *
 * @since 0.1.0
 * @category errors
 */
export const statusOf: Readonly<Record<string, number>> = {
  InvalidInput: 400,
  InvalidRally: 400,
  InvalidBody: 400,
  OutsideMediaRoot: 403,
  MediaNotFound: 404,
  SourceNotFound: 404,
  UnknownVideo: 404,
  RallyNotFound: 404,
  LengthRequired: 411,
  BodyTooLarge: 413,
  SourceUnreadable: 422,
  NotMediaFile: 422,
  UnsupportedSource: 422,
  ExportCancelled: 503,
  ClipTimeout: 504
}

/**
 * Answer a typed failure with its status and one-line message; anything
 * unexpected is a 500 (the cause is logged, never sent).
 *
 * @since 0.1.0
 * @category combinators
 */
export const handleErrors = <R>(
  effect: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  effect.pipe(
    Effect.catchAll((error) => {
      const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "Error"
      const message = error instanceof Error ? error.message : String(error)
      const status = statusOf[tag]
      if (status !== undefined) {
        // A client still sending a refused body is told to stop.
        const headers: Record<string, string> = status === 411 || status === 413 ? { connection: "close" } : {}
        return Effect.succeed(errorResponse(status, tag, message.split("\n")[0] ?? tag, headers))
      }
      return Effect.logError("request failed", error).pipe(
        Effect.as(errorResponse(500, tag, "internal error (see the server log)"))
      )
    })
  )
