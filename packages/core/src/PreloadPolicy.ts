/**
 * The `PreloadPolicy` service decides which rallies to export, and how
 * urgently, from where the viewer is.
 *
 * @since 0.1.0
 */
import { Context, Layer } from "effect"
import type { Priority, Rally } from "./Domain.js"

/**
 * What to export around the current rally. Rallies left out are not
 * wanted: queued work for them is cancelled.
 *
 * @since 0.1.0
 * @category models
 */
export type PreloadPlan = ReadonlyArray<{ readonly index: number; readonly priority: Priority }>

/**
 * @since 0.1.0
 * @category models
 */
export interface PreloadInput {
  readonly rallies: ReadonlyArray<Rally>
  readonly current: number
  /** Rallies after the current one to export at normal priority (`preloadAhead`). */
  readonly ahead: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PreloadPolicyShape {
  readonly plan: (input: PreloadInput) => PreloadPlan
}

/**
 * @since 0.1.0
 * @category tags
 */
export class PreloadPolicy extends Context.Tag("@rallycache/core/PreloadPolicy")<PreloadPolicy, PreloadPolicyShape>() {}

/**
 * A policy from a plain function. The plans it returns are cleaned before
 * anyone sees them: entries naming a rally that is not in the list are
 * dropped, and a rally named twice keeps its first entry, so a user policy
 * cannot make the manager queue one clip twice or export a rally that does
 * not exist.
 *
 * @example
 * ```ts
 * import { PreloadPolicy } from "@rallycache/core"
 *
 * // Only the current rally and the one before it (for viewers who replay).
 * const previousToo = PreloadPolicy.make(({ current }) => [
 *   { index: current, priority: "high" },
 *   { index: current - 1, priority: "normal" }
 * ])
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (plan: (input: PreloadInput) => PreloadPlan): PreloadPolicyShape => ({
  plan: (input) => {
    const known = new Set<number>()
    for (const rally of input.rallies) known.add(rally.index)
    const seen = new Set<number>()
    const cleaned: Array<{ readonly index: number; readonly priority: Priority }> = []
    for (const item of plan(input)) {
      if (!known.has(item.index) || seen.has(item.index)) continue
      seen.add(item.index)
      cleaned.push({ index: item.index, priority: item.priority })
    }
    return cleaned
  }
})

/**
 * A layer of a user policy (see `make`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFrom = (plan: (input: PreloadInput) => PreloadPlan): Layer.Layer<PreloadPolicy> =>
  Layer.succeed(PreloadPolicy, make(plan))

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
 * import { PreloadPolicy } from "@rallycache/core"
 *
 * PreloadPolicy.planPreload({ rallies, current: 3, ahead: 2 })
 * // [{index: 3, priority: "high"}, {index: 4, priority: "normal"}, {index: 5, priority: "normal"},
 * //  {index: 6, priority: "low"}, ..., {index: 2, priority: "low"}, {index: 1, priority: "low"}, {index: 0, priority: "low"}]
 * ```
 *
 * @since 0.1.0
 * @category utils
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
 * import { PreloadPolicy } from "@rallycache/core"
 *
 * PreloadPolicy.planWindow(1)({ rallies, current: 3, ahead: 2 })
 * // [{index: 3, priority: "high"}, {index: 4, priority: "normal"}]
 * ```
 *
 * @since 0.1.0
 * @category utils
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

/**
 * The default policy (`planPreload`): the current rally high, the
 * next `preloadAhead` normal, every other rally low.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<PreloadPolicy> = Layer.succeed(PreloadPolicy, { plan: planPreload })

/**
 * The window policy (`planWindow`): only the current rally (high) and
 * the next `n` (normal), or the next `preloadAhead` without `n`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWindow = (n?: number): Layer.Layer<PreloadPolicy> =>
  Layer.succeed(PreloadPolicy, { plan: planWindow(n) })
