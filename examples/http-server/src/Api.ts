/**
 * The JSON bodies of the HTTP API, as Schemas, and how failures become
 * responses: every error answers `{ "error": tag, "message": one line }`.
 *
 * @since 0.1.0
 */
import { HttpServerResponse } from "@effect/platform"
import { Domain } from "@rallycache/core"
import { Effect, ParseResult, Schema } from "effect"

const clock = /^(?:(\d+):)?(\d{1,2}):(\d{1,2}(?:\.\d+)?)$/

/**
 * A time in seconds: a number, or `m:ss(.f)` / `h:mm:ss(.f)`, the same
 * notation as the CLI's rallies file.
 *
 * @since 0.1.0
 */
export const Seconds = Schema.Union(
  // The string form first, so a malformed time is reported as such rather
  // than as "Expected number".
  Schema.transformOrFail(Schema.String, Schema.Number, {
    strict: true,
    decode: (text, _, ast) => {
      const trimmed = text.trim()
      if (/^\d+(?:\.\d+)?$/.test(trimmed)) return ParseResult.succeed(Number(trimmed))
      const match = clock.exec(trimmed)
      if (match === null) {
        return ParseResult.fail(
          new ParseResult.Type(ast, text, `${JSON.stringify(text)} is not a time (use seconds, m:ss or h:mm:ss)`)
        )
      }
      const [, hours = "0", minutes = "0", seconds = "0"] = match
      return ParseResult.succeed(Number(hours) * 3600 + Number(minutes) * 60 + Number(seconds))
    },
    encode: (seconds) => ParseResult.succeed(String(seconds))
  }),
  Schema.Number.pipe(Schema.finite(), Schema.nonNegative())
)

/**
 * @since 0.1.0
 */
export const RallyInput = Schema.Struct({ start: Seconds, end: Seconds })

/**
 * `POST /api/videos`.
 *
 * @since 0.1.0
 */
export class RegisterVideo extends Schema.Class<RegisterVideo>("RegisterVideo")({
  /** A file under the media root: absolute, or relative to the root. */
  path: Schema.String.pipe(Schema.minLength(1, { message: () => "path must not be empty" })),
  rallies: Schema.Array(RallyInput).pipe(
    Schema.minItems(1, { message: () => "rallies must list at least one { start, end }" })
  ),
  /** Default: derived from the file's fingerprint. */
  id: Schema.optional(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))),
  mode: Schema.optional(Domain.ExportMode)
}) {}

/**
 * `POST /api/videos/:id/navigate`.
 *
 * @since 0.1.0
 */
export class Navigate extends Schema.Class<Navigate>("Navigate")({
  index: Schema.Int.pipe(Schema.nonNegative())
}) {}

/**
 * The rallies file given to `--rallies`: the CLI's format.
 *
 * @since 0.1.0
 */
export const RalliesFile = Schema.Struct({
  videoId: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  rallies: Schema.Array(RallyInput).pipe(Schema.minItems(1))
})

/**
 * `:id` and `:n` of the rally routes.
 *
 * @since 0.1.0
 */
export const VideoParams = Schema.Struct({ id: Schema.String })
/** @since 0.1.0 */
export const RallyParams = Schema.Struct({
  id: Schema.String,
  n: Schema.NumberFromString.pipe(Schema.int(), Schema.nonNegative())
})

/**
 * One line naming the first problem of a decode failure and where it is.
 *
 * @since 0.1.0
 */
export const describeParseError = (error: ParseResult.ParseError): string => {
  const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
  if (issue === undefined) return "invalid body"
  const where = issue.path.length === 0 ? "body" : issue.path.map(String).join(".")
  return `${where}: ${issue.message.split("\n")[0]}`
}

/**
 * A JSON error response.
 *
 * @since 0.1.0
 */
export const errorResponse = (status: number, error: string, message: string): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.unsafeJson({ error, message }, { status })

const statusOf: Record<string, number> = {
  InvalidInput: 400,
  InvalidRally: 400,
  ParseError: 400,
  RequestError: 400,
  OutsideMediaRoot: 403,
  MediaNotFound: 404,
  SourceNotFound: 404,
  UnknownVideo: 404,
  RallyNotFound: 404,
  SourceUnreadable: 422,
  NotMediaFile: 422,
  ExportCancelled: 503,
  ClipTimeout: 504
}

/**
 * Answer a typed failure with its status and one-line message; anything
 * unexpected is a 500 (the cause is logged, never sent).
 *
 * @since 0.1.0
 */
export const handleErrors = <R>(
  effect: Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, R>
): Effect.Effect<HttpServerResponse.HttpServerResponse, never, R> =>
  effect.pipe(
    Effect.catchAll((error) => {
      if (ParseResult.isParseError(error)) {
        return Effect.succeed(errorResponse(400, "InvalidBody", describeParseError(error)))
      }
      const tag = typeof error === "object" && error !== null && "_tag" in error ? String(error._tag) : "Error"
      const message = error instanceof Error ? error.message : String(error)
      if (tag === "RequestError") {
        return Effect.succeed(errorResponse(400, "InvalidBody", "the body is not valid JSON (send application/json)"))
      }
      const status = statusOf[tag]
      if (status !== undefined) return Effect.succeed(errorResponse(status, tag, message.split("\n")[0] ?? tag))
      return Effect.logError("request failed", error).pipe(
        Effect.as(errorResponse(500, tag, "internal error (see the server log)"))
      )
    })
  )
