/**
 * The rallies file: one grammar for every program that reads rallies —
 * times (`parseTime`, `formatTime`, `Time`), a rally's times, the list,
 * the whole file, and the decoders that turn user input into them with a
 * one-line `InvalidInput`.
 *
 * @since 0.1.0
 */
import { type Either, ParseResult, Schema } from "effect"
import * as Domain from "./Domain.js"
import type { InvalidInput } from "./Errors.js"
import * as internal from "./internal/ralliesFile.js"

/**
 * Longest video id accepted, in characters: `Domain.VideoId`'s limit, which the
 * grammar applies to ids written in a rallies file.
 *
 * @since 0.1.0
 * @category limits
 */
export const maxVideoIdLength: number = Domain.maxVideoIdLength

/**
 * Most rallies accepted in one rallies file. A real match has a few hundred.
 *
 * @since 0.1.0
 * @category limits
 */
export const maxRallies = 100_000

const clock = /^(?:(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)|(\d+):([0-5]\d(?:\.\d+)?))$/
const secondsText = /^\d+(?:\.\d+)?$/

/**
 * Parse a time: seconds (`"12.5"`), `m:ss(.f)` (`"1:02.4"`, minutes may
 * exceed 59) or `h:mm:ss(.f)` (`"1:02:03.5"`). Seconds and minutes inside a
 * clock time are two digits below 60. `undefined` when it is none of these.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseTime = (text: string): number | undefined => {
  const s = text.trim()
  if (secondsText.test(s)) return Number(s)
  const m = clock.exec(s)
  if (m === null) return undefined
  const value = m[1] !== undefined
    ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])
    : Number(m[4]) * 60 + Number(m[5])
  return Number.isFinite(value) ? value : undefined
}

/**
 * Format seconds as `m:ss.fff` (or `h:mm:ss.fff` from one hour), the
 * inverse of `parseTime` to the millisecond.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatTime = (seconds: number, fractionDigits = 3): string => {
  const scale = 10 ** fractionDigits
  const total = Math.round(seconds * scale)
  const whole = Math.floor(total / scale)
  const fraction = total - whole * scale
  const h = Math.floor(whole / 3600)
  const m = Math.floor((whole % 3600) / 60)
  const s = whole % 60
  const ss = String(s).padStart(2, "0") + (fractionDigits > 0 ? "." + String(fraction).padStart(fractionDigits, "0") : "")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`
}

/**
 * A short, safe description of any JSON value for an error message: never
 * recurses, never long.
 *
 * @since 0.1.0
 * @category formatting
 */
export const describeValue = (value: unknown): string => {
  if (value === undefined) return "missing"
  if (value === null) return "null"
  if (typeof value === "number" || typeof value === "boolean") return String(value)
  if (typeof value === "string") {
    return value.length > 40 ? `${JSON.stringify(value.slice(0, 40)).slice(0, -1)}…"` : JSON.stringify(value)
  }
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? "" : "s"}`
  return "an object"
}

/**
 * A time in a rallies file or request: a finite, non-negative number of
 * seconds, or a string `parseTime` accepts.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Time: Schema.Schema<number, unknown> = Schema.transformOrFail(Schema.Unknown, Schema.Number, {
  strict: true,
  decode: (value, _, ast) => {
    const seconds = typeof value === "number" ? value : typeof value === "string" ? parseTime(value) : undefined
    if (seconds === undefined || !Number.isFinite(seconds)) {
      return ParseResult.fail(
        new ParseResult.Type(
          ast,
          value,
          typeof value === "number"
            ? `${describeValue(value)} is not a finite number of seconds`
            : `${describeValue(value)} is not a time (use seconds or m:ss)`
        )
      )
    }
    if (seconds < 0) {
      return ParseResult.fail(
        new ParseResult.Type(ast, value, `${describeValue(value)} is negative (times count from the start of the video)`)
      )
    }
    return ParseResult.succeed(seconds)
  },
  encode: (seconds) => ParseResult.succeed(seconds)
})

const expected = (what: string, example: string) => (issue: ParseResult.ParseIssue) =>
  `expected ${what}, got ${describeValue(issue.actual)} (${example})`

const rallyExample = `write each rally as {"start": 12.5, "end": 31}`
const fileExample = `the file needs {"rallies": [{"start": 12.5, "end": 31}, ...]}`

/**
 * One rally as written by a user: `{ "start", "end" }` in any `Time` form,
 * the end after the start. Other fields (a label) are ignored.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RallyTimes = Schema.Struct({
  start: Schema.propertySignature(Time).annotations({ missingMessage: () => `is missing (${rallyExample})` }),
  end: Schema.propertySignature(Time).annotations({ missingMessage: () => `is missing (${rallyExample})` })
}).annotations({ message: expected("an object", rallyExample) }).pipe(
  Schema.filter((rally) =>
    rally.end > rally.start ||
    { path: ["end"], message: `${rally.end} is not after start ${rally.start} (a rally ends after it starts)` }
  )
)
/**
 * @since 0.1.0
 * @category models
 */
export type RallyTimes = typeof RallyTimes.Type

/**
 * The list of rallies: at least one, at most `maxRallies`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RallyList = Schema.Array(RallyTimes).annotations({
  message: expected("an array of rallies", rallyExample)
}).pipe(
  Schema.filter((rallies) => rallies.length > 0 || `the list is empty (${rallyExample})`),
  Schema.filter((rallies) =>
    rallies.length <= maxRallies || `has ${rallies.length} rallies; at most ${maxRallies} are accepted`
  )
)

/**
 * A video id as written by a user: `VideoId`'s rule (1 to `maxVideoIdLength`
 * characters)
 * with messages that say how to fix it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const VideoIdInput = Schema.String.annotations({
  message: (issue) => `expected a string, got ${describeValue(issue.actual)}`
}).pipe(
  Schema.filter((s) => s.length > 0 || "must not be empty (leave it out to use the video's fingerprint)"),
  Schema.filter((s) =>
    s.length <= maxVideoIdLength || `is ${s.length} characters long; use at most ${maxVideoIdLength}`
  )
)

/**
 * The rallies file: which parts of a match video are rallies.
 *
 * ```json
 * { "videoId": "final-2026", "rallies": [{ "start": 12.5, "end": 31 }, { "start": "1:02.4", "end": "1:20" }] }
 * ```
 *
 * `videoId` is optional (by default the id comes from the source's
 * fingerprint); a rally's index is its position in the list, from 0.
 * `decodeRalliesFile` also accepts a bare array of rallies.
 *
 * @since 0.1.0
 * @category schemas
 */
export const RalliesFile = Schema.Struct({
  videoId: Schema.optional(VideoIdInput),
  rallies: Schema.propertySignature(RallyList).annotations({ missingMessage: () => `is missing (${fileExample})` })
}).annotations({ message: expected("an object", fileExample) })
/**
 * @since 0.1.0
 * @category models
 */
export type RalliesFile = typeof RalliesFile.Type

/**
 * Decode user input (a parsed JSON body, a file) with `schema`; the first
 * problem is an `InvalidInput` whose one-line message names the field as
 * `rallies[1].end` (`root` when the value itself is wrong). Unknown fields
 * are ignored.
 *
 * @since 0.1.0
 * @category parsing
 */
export const decodeInput = <A, I>(
  schema: Schema.Schema<A, I>,
  value: unknown,
  root = "input"
): Either.Either<A, InvalidInput> => internal.decodeInput(schema, value, root)

/**
 * Decode an already parsed JSON value (an object, or a bare array of
 * rallies) into a `RalliesFile`. Any problem is an `InvalidInput` whose
 * one-line message names the field and the position, for example
 * `rallies[1].end: "1:2x" is not a time (use seconds or m:ss)`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const decodeRalliesFile = (value: unknown): Either.Either<RalliesFile, InvalidInput> => internal.decode(value)

/**
 * Parse the text of a rallies file: JSON syntax errors are reported with
 * their line and column, then the value is `decodeRalliesFile`d. Never
 * throws, whatever the input (huge, deeply nested, not JSON).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseRalliesFile = (text: string, name?: string): Either.Either<RalliesFile, InvalidInput> =>
  internal.parseText(text, name)
