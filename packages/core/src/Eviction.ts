/**
 * Eviction planning: which clips a cache store removes to keep within its
 * limits (age, clips per video, total size; least recently used first).
 *
 * Pure functions with no services and no clock of their own (`now` is a
 * parameter), so every cache store (in memory, on disk) shares one planner,
 * and property tests drive it directly.
 *
 * @since 0.2.0
 */
import { Duration } from "effect"
import type { CacheEntry, CacheKey, EvictionReason } from "./Domain.js"

/**
 * The limits `planEviction` enforces.
 *
 * @since 0.1.0
 * @category models
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
 * @category models
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
 * @category guards
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
 * import { Eviction } from "@rallycache/core"
 *
 * const plan = Eviction.planEviction(entries, { maxBytes: 500 * 1024 * 1024, maxAge: "7 days", maxEntriesPerVideo: 200 }, Date.now(), new Set([watchedKey]))
 * for (const { entry, reason } of plan) console.log(entry.key, reason)
 * ```
 *
 * @since 0.1.0
 * @category utils
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
