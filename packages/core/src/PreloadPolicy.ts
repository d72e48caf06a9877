/**
 * The `PreloadPolicy` service decides which rallies to export, and how
 * urgently, from where the viewer is.
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import type { Priority, Rally } from "./Domain.js"

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
