/**
 * The `PreloadPolicy` service decides which rallies to export, and how
 * urgently, from where the viewer is.
 *
 * @since 0.1.0
 */
import { Context, Layer } from "effect"
import type { Priority, Rally } from "./Domain.js"
import * as Policy from "./Policy.js"

/**
 * What to export around the current rally. Rallies left out are not
 * wanted: queued work for them is cancelled.
 *
 * @since 0.1.0
 */
export type PreloadPlan = ReadonlyArray<{ readonly index: number; readonly priority: Priority }>

/**
 * @since 0.1.0
 */
export interface PreloadInput {
  readonly rallies: ReadonlyArray<Rally>
  readonly current: number
  /** Rallies after the current one to export at normal priority (`preloadAhead`). */
  readonly ahead: number
}

/**
 * @since 0.1.0
 */
export interface PreloadPolicyShape {
  readonly plan: (input: PreloadInput) => PreloadPlan
}

/**
 * @since 0.1.0
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
 */
export const layerFrom = (plan: (input: PreloadInput) => PreloadPlan): Layer.Layer<PreloadPolicy> =>
  Layer.succeed(PreloadPolicy, make(plan))

/**
 * The default policy (`Policy.planPreload`): the current rally high, the
 * next `preloadAhead` normal, every other rally low.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<PreloadPolicy> = Layer.succeed(PreloadPolicy, { plan: Policy.planPreload })

/**
 * The window policy (`Policy.planWindow`): only the current rally (high) and
 * the next `n` (normal), or the next `preloadAhead` without `n`.
 *
 * @since 0.1.0
 */
export const layerWindow = (n?: number): Layer.Layer<PreloadPolicy> =>
  Layer.succeed(PreloadPolicy, { plan: Policy.planWindow(n) })
