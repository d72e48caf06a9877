/**
 * Small statistics helpers for the benchmark suite.
 */

import { Effect, Random } from "effect"

/** The `q` quantile (0..1) of `samples`, nearest-rank. `NaN` when empty. */
export const quantile = (samples: ReadonlyArray<number>, q: number): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = Float64Array.from(samples).sort()
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))
  return sorted[rank]!
}

/** The middle sample, or the mean of the two middle ones for an even count. */
export const median = (samples: ReadonlyArray<number>): number => {
  if (samples.length === 0) return Number.NaN
  const sorted = Float64Array.from(samples).sort()
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const max = (samples: ReadonlyArray<number>): number =>
  samples.reduce((m, x) => (x > m ? x : m), Number.NEGATIVE_INFINITY)

export const mean = (samples: ReadonlyArray<number>): number =>
  samples.length === 0 ? Number.NaN : samples.reduce((s, x) => s + x, 0) / samples.length

/** `a / b`, or `null` when either side is missing or `b` is 0. */
export const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a === null || a === undefined || b === null || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0
    ? null
    : a / b

/** Milliseconds since an arbitrary origin, sub-microsecond resolution. */
export const nowMs = (): number => performance.now()

/** Effect's seeded generator, driven synchronously: deterministic fixtures and traces. */
export const prng = (seed: number): () => number => {
  const random = Random.make(seed)
  return () => Effect.runSync(random.next)
}
