/**
 * Pure policy: what to evict, what to preload, which rallies are valid.
 *
 * These functions have no services and no clock of their own (`now` is a
 * parameter), so every cache store (in memory, on disk) shares one
 * eviction planner, and property tests can drive them directly.
 *
 * @since 0.1.0
 */
import { Duration, Effect } from "effect"
import type { CacheEntry, CacheKey, EvictionReason, Priority } from "./Domain.js"
import { Rally } from "./Domain.js"
import { InvalidRally } from "./Errors.js"
import type { PreloadInput, PreloadPlan } from "./PreloadPolicy.js"

// ---------------------------------------------------------------------------
// Eviction
// ---------------------------------------------------------------------------

/**
 * The limits `planEviction` enforces.
 *
 * @since 0.1.0
 */
export interface EvictionLimits {
  /** Total bytes allowed once the plan is applied. */
  readonly maxBytes: number
  /** Age limit, since `createdAt`: a `Duration` input or milliseconds. */
  readonly maxAge: Duration.DurationInput
  /** Entries allowed per video. */
  readonly maxEntriesPerVideo: number
}

/**
 * One entry to evict and the rule that chose it.
 *
 * @since 0.1.0
 */
export interface PlannedEviction {
  readonly entry: CacheEntry
  readonly reason: EvictionReason
}

/**
 * Least recently used first; ties (same `accessedAt`) broken by key, so a
 * plan never depends on the order the store happened to list its entries.
 */
const lruOrder = (a: CacheEntry, b: CacheEntry): number =>
  a.accessedAt - b.accessedAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/**
 * Whether `entry` is older than `maxAgeMillis` at `now`.
 *
 * The boundary is exact and inclusive: an entry whose age is **equal** to
 * `maxAge` is kept; one millisecond more and it expires. So with a 7-day
 * limit, a clip created at `t` is still served at `t + 7 days` and removed
 * by the first cleanup after that.
 *
 * @since 0.1.0
 */
export const isExpired = (entry: CacheEntry, maxAgeMillis: number, now: number): boolean =>
  now - entry.createdAt > maxAgeMillis

/**
 * Plan which entries to evict, and why.
 *
 * Rules, applied in this order (each to the entries the previous ones kept):
 *
 * 1. `invalid`: entries whose last validation found them broken.
 * 2. `age`: entries with `now - createdAt > maxAge` (an age exactly equal to
 *    `maxAge` is kept, see `isExpired`).
 * 3. `per-video`: in a video with more than `maxEntriesPerVideo` entries, the
 *    least recently used (by `accessedAt`) go until the video fits.
 * 4. `size`: across all videos, the least recently used go until the total
 *    of the kept entries is at most `maxBytes`.
 *
 * Pinned entries are never evicted, by any rule. They still count towards
 * the per-video and byte totals, so other entries make room for them; when
 * the pinned entries alone exceed a limit, every unpinned entry of that
 * scope is evicted and the limit stays exceeded.
 *
 * The result lists the evictions grouped by rule in the order above, each
 * group least recently used first. Ties in `accessedAt` are broken by key,
 * so the plan is deterministic. Cost: one sort, O(n log n); 100k entries
 * take a few tens of milliseconds.
 *
 * @example
 * ```ts
 * import { Policy } from "@rallycache/core"
 *
 * const plan = Policy.planEviction(entries, { maxBytes: 500 * 1024 * 1024, maxAge: "7 days", maxEntriesPerVideo: 200 }, Date.now(), new Set([watchedKey]))
 * for (const { entry, reason } of plan) console.log(entry.key, reason)
 * ```
 *
 * @since 0.1.0
 */
export const planEviction = (
  entries: ReadonlyArray<CacheEntry>,
  limits: EvictionLimits,
  now: number,
  pinned: ReadonlySet<CacheKey> = new Set()
): ReadonlyArray<PlannedEviction> => {
  const maxAgeMillis = Duration.toMillis(Duration.decode(limits.maxAge))
  const sorted = entries.slice().sort(lruOrder)
  const n = sorted.length

  const invalid: Array<PlannedEviction> = []
  const aged: Array<PlannedEviction> = []
  const perVideo: Array<PlannedEviction> = []
  const size: Array<PlannedEviction> = []

  // Survivors of the first two rules, in LRU order, plus their per-video counts.
  const kept: Array<CacheEntry> = []
  const countByVideo = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const entry = sorted[i]!
    if (!pinned.has(entry.key)) {
      if (entry.validation === "invalid") {
        invalid.push({ entry, reason: "invalid" })
        continue
      }
      if (isExpired(entry, maxAgeMillis, now)) {
        aged.push({ entry, reason: "age" })
        continue
      }
    }
    kept.push(entry)
    countByVideo.set(entry.videoId, (countByVideo.get(entry.videoId) ?? 0) + 1)
  }

  // How many each video must lose; walking in LRU order evicts its oldest first.
  const excess = new Map<string, number>()
  for (const [videoId, count] of countByVideo) {
    if (count > limits.maxEntriesPerVideo) excess.set(videoId, count - limits.maxEntriesPerVideo)
  }
  let bytes = 0
  const survivors: Array<CacheEntry> = []
  for (const entry of kept) {
    const over = excess.get(entry.videoId)
    if (over !== undefined && over > 0 && !pinned.has(entry.key)) {
      excess.set(entry.videoId, over - 1)
      perVideo.push({ entry, reason: "per-video" })
      continue
    }
    survivors.push(entry)
    bytes += entry.sizeBytes
  }

  for (let i = 0; i < survivors.length && bytes > limits.maxBytes; i++) {
    const entry = survivors[i]!
    if (pinned.has(entry.key)) continue
    size.push({ entry, reason: "size" })
    bytes -= entry.sizeBytes
  }

  return [...invalid, ...aged, ...perVideo, ...size]
}

// ---------------------------------------------------------------------------
// Preload
// ---------------------------------------------------------------------------

const clampCurrent = (input: PreloadInput): number =>
  Math.min(Math.max(0, Math.trunc(input.current)), input.rallies.length - 1)

const aheadCount = (ahead: number): number => Number.isFinite(ahead) ? Math.max(0, Math.trunc(ahead)) : 0

/**
 * The default preload plan: the current rally `high`, the next `ahead`
 * rallies `normal`, every other rally `low`.
 *
 * The plan is listed in the order the work should run (the queue is FIFO
 * within a priority): current, then the window ahead, then the low rallies
 * **after** the window in playing order (a viewer mostly moves forward),
 * and last the rallies **before** the current one, nearest first (the ones
 * a viewer who steps back reaches first).
 *
 * `current` is a position in `rallies` (equal to `Rally.index` for lists
 * built by `validateRallies`) and is clamped into range; the plan names
 * rallies by their `index`. An empty list gives an empty plan.
 *
 * @example
 * ```ts
 * import { Policy } from "@rallycache/core"
 *
 * Policy.planPreload({ rallies, current: 3, ahead: 2 })
 * // [{index: 3, priority: "high"}, {index: 4, priority: "normal"}, {index: 5, priority: "normal"},
 * //  {index: 6, priority: "low"}, ..., {index: 2, priority: "low"}, {index: 1, priority: "low"}, {index: 0, priority: "low"}]
 * ```
 *
 * @since 0.1.0
 */
export const planPreload = (input: PreloadInput): PreloadPlan => {
  const { rallies } = input
  if (rallies.length === 0) return []
  const current = clampCurrent(input)
  const windowEnd = Math.min(rallies.length - 1, current + aheadCount(input.ahead))
  const plan: Array<{ readonly index: number; readonly priority: Priority }> = []
  plan.push({ index: rallies[current]!.index, priority: "high" })
  for (let i = current + 1; i <= windowEnd; i++) plan.push({ index: rallies[i]!.index, priority: "normal" })
  for (let i = windowEnd + 1; i < rallies.length; i++) plan.push({ index: rallies[i]!.index, priority: "low" })
  for (let i = current - 1; i >= 0; i--) plan.push({ index: rallies[i]!.index, priority: "low" })
  return plan
}

/**
 * A "window" preload policy: only the current rally (`high`) and the next
 * `n` (`normal`); nothing else is wanted, so queued work for other rallies
 * is cancelled when the viewer moves. Use it when disk or CPU is scarce.
 * Without `n`, the input's `ahead` (the `preloadAhead` setting) is used.
 *
 * @example
 * ```ts
 * import { Policy } from "@rallycache/core"
 *
 * Policy.planWindow(1)({ rallies, current: 3, ahead: 2 })
 * // [{index: 3, priority: "high"}, {index: 4, priority: "normal"}]
 * ```
 *
 * @since 0.1.0
 */
export const planWindow = (n?: number) => (input: PreloadInput): PreloadPlan => {
  const { rallies } = input
  if (rallies.length === 0) return []
  const current = clampCurrent(input)
  const windowEnd = Math.min(rallies.length - 1, current + aheadCount(n ?? input.ahead))
  const plan: Array<{ readonly index: number; readonly priority: Priority }> = [
    { index: rallies[current]!.index, priority: "high" }
  ]
  for (let i = current + 1; i <= windowEnd; i++) plan.push({ index: rallies[i]!.index, priority: "normal" })
  return plan
}

// ---------------------------------------------------------------------------
// Rally validation
// ---------------------------------------------------------------------------

/**
 * Options of `validateRallies`.
 *
 * @since 0.1.0
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
 * import { Policy } from "@rallycache/core"
 * import { Effect } from "effect"
 *
 * const rallies = Effect.runSync(
 *   Policy.validateRallies([{ start: 0, end: 12.4 }, { start: 20, end: 31 }], { maxRallyLength: 600, duration: 300 })
 * )
 * // Policy.validateRallies([{ start: 5, end: 2 }], { maxRallyLength: 600 }) fails with
 * // "rally 0: end 2 s is not after start 5 s (fix its start and end in the rallies list)"
 * ```
 *
 * @since 0.1.0
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
