/**
 * Checking a list of rallies against the cache's limits and the video: finite
 * times, a start before the end, at most `maxRallyLength` long, within the
 * video's duration. The rallies file's grammar is `RalliesGrammar.RalliesFile`.
 *
 * @since 0.2.0
 */
import { Effect } from "effect"
import { Rally } from "./Domain.js"
import { InvalidRally } from "./Errors.js"

/**
 * Options of `validateRallies`.
 *
 * @since 0.1.0
 * @category models
 */
export interface RallyLimits {
  /** Longest rally accepted, in seconds (`maxRallyLength`). */
  readonly maxRallyLength: number
  /** The video's duration in seconds, when known. */
  readonly duration?: number | undefined
  /** The video's frames per second, when known: a rally shorter than one frame cannot be cut. */
  readonly frameRate?: number | null | undefined
  /**
   * How far past `duration` an end may be, in seconds (default 0.05):
   * containers and probes disagree on the duration by a frame or so.
   */
  readonly tolerance?: number | undefined
}

/**
 * The default tolerance of an end past the video's duration, in seconds.
 *
 * @since 0.1.0
 * @category utils
 */
export const durationTolerance = 0.05

const describe = (value: unknown): string =>
  typeof value === "number" ? String(value) : value === undefined ? "missing" : JSON.stringify(value) ?? String(value)

const checkRally = (
  raw: { readonly start: unknown; readonly end: unknown },
  limits: RallyLimits
): string | undefined => {
  const { end, start } = raw
  if (typeof start !== "number" || !Number.isFinite(start)) {
    return `start is ${describe(start)}, not a finite number of seconds`
  }
  if (typeof end !== "number" || !Number.isFinite(end)) {
    return `end is ${describe(end)}, not a finite number of seconds`
  }
  if (start < 0) return `start ${start} s is negative; times count from the beginning of the video`
  if (!(end > start)) return `end ${end} s is not after start ${start} s`
  const { frameRate } = limits
  if (typeof frameRate === "number" && frameRate > 0 && end - start < 1 / frameRate) {
    return `it lasts ${+(end - start).toFixed(6)} s, shorter than one frame of the video (${
      +(1 / frameRate).toFixed(4)
    } s at ${+frameRate.toFixed(3)} fps)`
  }
  if (end - start > limits.maxRallyLength) {
    return `it lasts ${
      +(end - start).toFixed(3)
    } s, longer than maxRallyLength ${limits.maxRallyLength} s; split it or raise maxRallyLength`
  }
  const { duration } = limits
  if (duration !== undefined && Number.isFinite(duration)) {
    const tolerance = limits.tolerance ?? durationTolerance
    if (end > duration + tolerance) return `end ${end} s is past the end of the video (${duration} s)`
  }
  return undefined
}

/**
 * Check a list of rally time ranges and number them. Each one must have
 * finite times, `start >= 0`, `end > start`, a length of at most
 * `maxRallyLength` and, when the video's `duration` is known, an end at most
 * `duration + tolerance`.
 *
 * Fails on the first bad rally with an `InvalidRally` whose one-line message
 * names its position (0-based) and what to fix. The rallies returned carry
 * their position as `index`.
 *
 * @example
 * ```ts
 * import { Rallies } from "@rallycache/core"
 * import { Effect } from "effect"
 *
 * const rallies = Effect.runSync(
 *   Rallies.validateRallies([{ start: 0, end: 12.4 }, { start: 20, end: 31 }], { maxRallyLength: 600, duration: 300 })
 * )
 * // Rallies.validateRallies([{ start: 5, end: 2 }], { maxRallyLength: 600 }) fails with
 * // "rally 0: end 2 s is not after start 5 s (fix its start and end in the rallies list)"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const validateRallies = (
  input: ReadonlyArray<{ readonly start: number; readonly end: number }>,
  limits: RallyLimits
): Effect.Effect<ReadonlyArray<Rally>, InvalidRally> =>
  Effect.suspend(() => {
    const rallies: Array<Rally> = []
    for (let index = 0; index < input.length; index++) {
      const raw = input[index]!
      const reason = checkRally(raw, limits)
      if (reason !== undefined) return Effect.fail(new InvalidRally({ index, reason }))
      rallies.push(new Rally({ index, start: raw.start, end: raw.end }))
    }
    return Effect.succeed(rallies)
  })
