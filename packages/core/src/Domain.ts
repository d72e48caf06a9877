/**
 * The domain model of rallycache: sources, rallies, priorities, cache keys,
 * cache entries and clips. Every type here is a `Schema`, so it can cross a
 * process boundary (the CLI's JSON, the HTTP API, a future cluster entity)
 * without a hand-written codec.
 *
 * @since 0.1.0
 */
import { type Either, ParseResult, Schema } from "effect"
import type { InvalidInput } from "./Errors.js"
import * as internal from "./internal/ralliesFile.js"

/**
 * Longest video id accepted, in characters.
 *
 * @since 0.1.0
 * @category limits
 */
export const maxVideoIdLength = 4096

/**
 * A user-chosen id for a video. Any non-empty string: it is never used raw in
 * a file name (cache keys are hashes).
 *
 * @since 0.1.0
 */
export const VideoId = Schema.String.pipe(
  Schema.minLength(1, { message: () => "video id must not be empty" }),
  Schema.maxLength(maxVideoIdLength, { message: () => `video id is longer than ${maxVideoIdLength} characters` }),
  Schema.brand("VideoId")
)
/** @since 0.1.0 */
export type VideoId = typeof VideoId.Type

/**
 * A video file and a fingerprint that changes whenever the file changes
 * (size and mtime at least), so that a re-encoded or replaced source never
 * serves clips cut from its previous content.
 *
 * @since 0.1.0
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
 */
export const Priority = Schema.Literal("high", "normal", "low")
/** @since 0.1.0 */
export type Priority = typeof Priority.Type

/**
 * All priorities, most urgent first.
 *
 * @since 0.1.0
 */
export const priorities: ReadonlyArray<Priority> = ["high", "normal", "low"]

/**
 * Rank of a priority: lower is more urgent.
 *
 * @since 0.1.0
 */
export const priorityRank = (priority: Priority): number => priority === "high" ? 0 : priority === "normal" ? 1 : 2

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
 */
export const ExportMode = Schema.Literal("copy", "exact", "accurate")

/**
 * Every export mode.
 *
 * @since 0.1.0
 */
export const exportModes: ReadonlyArray<ExportMode> = ExportMode.literals

/**
 * The clip's container, chosen from the source's streams.
 *
 * @since 0.1.0
 */
export const Container = Schema.Literal("mp4", "mkv", "webm")
/** @since 0.1.0 */
export type Container = typeof Container.Type
/** @since 0.1.0 */
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
 */
export const CacheKey = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{32}$/, { message: () => "a cache key is 32 lowercase hex characters" }),
  Schema.brand("CacheKey")
)
/** @since 0.1.0 */
export type CacheKey = typeof CacheKey.Type

/**
 * What the last validation of an entry found.
 *
 * @since 0.1.0
 */
export const ValidationStatus = Schema.Literal("unchecked", "valid", "invalid")
/** @since 0.1.0 */
export type ValidationStatus = typeof ValidationStatus.Type

/**
 * Why an entry left the cache.
 *
 * @since 0.1.0
 */
export const EvictionReason = Schema.Literal("size", "age", "per-video", "invalid", "manual", "source-changed")
/** @since 0.1.0 */
export type EvictionReason = typeof EvictionReason.Type

/** Milliseconds since the Unix epoch. */
const EpochMillis = Schema.Number.pipe(Schema.finite(), Schema.nonNegative())

/**
 * One clip in the cache. Times are epoch milliseconds (from `Clock`, so
 * TestClock drives them in tests).
 *
 * @since 0.1.0
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
  /** Source time of the first frame a player presents (exact mode: the rally's first frame). */
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

// ---------------------------------------------------------------------------
// The rallies file: one grammar for every program that reads rallies
// ---------------------------------------------------------------------------

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
/** @since 0.1.0 */
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
/** @since 0.1.0 */
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
