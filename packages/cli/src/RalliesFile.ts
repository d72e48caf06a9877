/**
 * The rallies file: which parts of a match video are rallies.
 *
 * ```json
 * { "videoId": "final-2026", "rallies": [{ "start": 12.5, "end": 31 }, { "start": "1:02.4", "end": "1:20" }] }
 * ```
 *
 * - `videoId` is optional (by default the id comes from the source's
 *   fingerprint).
 * - Times are seconds (a number, or a numeric string), or `m:ss(.f)` /
 *   `h:mm:ss(.f)` strings.
 * - A rally's index is its position in the array, from 0.
 * - A bare array of rallies is accepted too.
 *
 * Any problem is an `InvalidInput` whose one-line message names the field
 * and the position, for example
 * `rallies[1].end: "1:2x" is not a time (use seconds or m:ss)`.
 * Parsing never throws: byte order marks, invalid UTF-8, non-finite
 * numbers, huge or deeply nested input all end in such an error.
 *
 * @since 0.1.0
 */
import { Errors } from "@rallycache/core"
import { Effect, Either, ParseResult, Schema } from "effect"
import { findSyntaxError, lineColumn } from "./internal/jsonSyntax.js"

/**
 * Largest rallies file read, in bytes. A real match has a few hundred
 * rallies (tens of kilobytes); anything near this is a wrong file.
 *
 * @since 0.1.0
 */
export const maxFileBytes = 32 * 1024 * 1024

/**
 * Most rallies accepted in one file.
 *
 * @since 0.1.0
 */
export const maxRallies = 100_000

/**
 * A parsed rallies file. Times are in seconds.
 *
 * @since 0.1.0
 */
export interface RalliesFile {
  readonly videoId?: string | undefined
  readonly rallies: ReadonlyArray<{ readonly start: number; readonly end: number }>
}

// ---------------------------------------------------------------------------
// Times
// ---------------------------------------------------------------------------

const clock = /^(?:(\d+):([0-5]\d):([0-5]\d(?:\.\d+)?)|(\d+):([0-5]\d(?:\.\d+)?))$/
const secondsText = /^\d+(?:\.\d+)?$/

/**
 * Parse a time: seconds (`"12.5"`), `m:ss(.f)` (`"1:02.4"`, minutes may
 * exceed 59) or `h:mm:ss(.f)` (`"1:02:03.5"`). `undefined` when it is not
 * one of these.
 *
 * @since 0.1.0
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

/** A short, safe description of any JSON value: never recurses, never long. */
const describe = (value: unknown): string => {
  if (value === undefined) return "missing"
  if (value === null) return "null"
  if (typeof value === "number") return String(value)
  if (typeof value === "boolean") return String(value)
  if (typeof value === "string") {
    return value.length > 40 ? `${JSON.stringify(value.slice(0, 40)).slice(0, -1)}…"` : JSON.stringify(value)
  }
  if (Array.isArray(value)) return `an array of ${value.length} item${value.length === 1 ? "" : "s"}`
  return "an object"
}

const timeMessage = (value: unknown): string =>
  typeof value === "number"
    ? `${describe(value)} is not a finite number of seconds`
    : `${describe(value)} is not a time (use seconds or m:ss)`

/**
 * A time in a rallies file: a finite, non-negative number of seconds, or a
 * string `parseTime` accepts.
 *
 * @since 0.1.0
 */
export const Time: Schema.Schema<number, unknown> = Schema.transformOrFail(Schema.Unknown, Schema.Number, {
  strict: true,
  decode: (value, _, ast) => {
    const seconds = typeof value === "number" ? value : typeof value === "string" ? parseTime(value) : undefined
    if (seconds === undefined || !Number.isFinite(seconds)) {
      return ParseResult.fail(new ParseResult.Type(ast, value, timeMessage(value)))
    }
    if (seconds < 0) {
      return ParseResult.fail(
        new ParseResult.Type(ast, value, `${describe(value)} is negative (times count from the start of the video)`)
      )
    }
    return ParseResult.succeed(seconds)
  },
  encode: (seconds) => ParseResult.succeed(seconds)
})

// ---------------------------------------------------------------------------
// The file
// ---------------------------------------------------------------------------

const objectMessage = (what: string, example: string) => (issue: ParseResult.ParseIssue) =>
  `expected ${what}, got ${describe(issue.actual)} (${example})`

const rallyExample = `write each rally as {"start": 12.5, "end": 31}`

const RallyInput = Schema.Struct({
  start: Schema.propertySignature(Time).annotations({
    missingMessage: () => `is missing (${rallyExample})`
  }),
  end: Schema.propertySignature(Time).annotations({
    missingMessage: () => `is missing (${rallyExample})`
  })
}).annotations({ message: objectMessage("an object", rallyExample) }).pipe(
  Schema.filter((rally) =>
    rally.end > rally.start ||
    {
      path: ["end"],
      message: `${rally.end} is not after start ${rally.start} (a rally ends after it starts)`
    }
  )
)

const VideoIdField = Schema.String.annotations({
  message: (issue) => `expected a string, got ${describe(issue.actual)}`
}).pipe(
  Schema.filter((s) => s.length > 0 || "must not be empty (leave it out to use the video's fingerprint)"),
  Schema.filter((s) => s.length <= 4096 || `is ${s.length} characters long; use at most 4096`)
)

const RalliesArray = Schema.Array(RallyInput).annotations({
  message: objectMessage("an array of rallies", rallyExample)
}).pipe(
  Schema.filter((rallies) => rallies.length > 0 || `the list is empty (${rallyExample})`),
  Schema.filter((rallies) =>
    rallies.length <= maxRallies || `has ${rallies.length} rallies; at most ${maxRallies} are accepted`
  )
)

/**
 * The schema of a (parsed) rallies file.
 *
 * @since 0.1.0
 */
export const RalliesFileSchema = Schema.Struct({
  videoId: Schema.optional(VideoIdField),
  rallies: Schema.propertySignature(RalliesArray).annotations({
    missingMessage: () => `is missing (the file needs {"rallies": [{"start": 12.5, "end": 31}, ...]})`
  })
}).annotations({
  message: objectMessage("an object", `the file needs {"rallies": [{"start": 12.5, "end": 31}, ...]}`)
})

const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`
  }
  return out
}

const invalid = (field: string, reason: string, fix?: string) =>
  new Errors.InvalidInput(fix === undefined ? { field, reason } : { field, reason, fix })

/** Keep a message on one line and of a sane length, whatever the input. */
const oneLine = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > 300 ? flat.slice(0, 299) + "…" : flat
}

/**
 * Decode an already parsed JSON value.
 *
 * @since 0.1.0
 */
export const decode = (value: unknown): Either.Either<RalliesFile, Errors.InvalidInput> => {
  const input = Array.isArray(value) ? { rallies: value } : value
  const result = Schema.decodeUnknownEither(RalliesFileSchema)(input, { errors: "first", onExcessProperty: "ignore" })
  if (Either.isRight(result)) {
    const file = result.right
    return Either.right(file.videoId === undefined ? { rallies: file.rallies } : file)
  }
  const issue = ParseResult.ArrayFormatter.formatErrorSync(result.left)[0]
  if (issue === undefined) return Either.left(invalid("rallies file", "is not a valid rallies file"))
  const field = issue.path.length === 0 ? "rallies file" : formatPath(issue.path)
  return Either.left(invalid(field, oneLine(issue.message)))
}

/**
 * Parse the bytes of a rallies file: strips a UTF-8 byte order mark,
 * rejects UTF-16 and invalid UTF-8, reports JSON syntax errors with their
 * line and column, then `decode`s.
 *
 * @since 0.1.0
 */
export const parse = (bytes: Uint8Array, name = "rallies file"): Either.Either<RalliesFile, Errors.InvalidInput> => {
  if (bytes.length > maxFileBytes) {
    return Either.left(
      invalid(name, `is ${bytes.length} bytes, larger than ${maxFileBytes} bytes`, "pass the rallies JSON file")
    )
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return Either.left(invalid(name, "is UTF-16 text", "save it as UTF-8"))
  }
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    return Either.left(invalid(name, "is not valid UTF-8 text", "save it as UTF-8 JSON"))
  }
  if (text.trim().length === 0) {
    return Either.left(invalid(name, "is empty", `write {"rallies": [{"start": 12.5, "end": 31}]}`))
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    const error = findSyntaxError(text)
    const where = error === undefined ? undefined : lineColumn(text, error.offset)
    return Either.left(
      invalid(
        name,
        oneLine(
          `is not valid JSON${where === undefined ? "" : ` at line ${where.line}, column ${where.column}`}: ${
            error?.reason ?? "syntax error"
          }`
        )
      )
    )
  }
  return decode(value)
}

/**
 * `parse` as an effect.
 *
 * @since 0.1.0
 */
export const parseEffect = (bytes: Uint8Array, name?: string): Effect.Effect<RalliesFile, Errors.InvalidInput> =>
  Effect.suspend(() => parse(bytes, name))
