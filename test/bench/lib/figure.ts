/**
 * One measured figure: a row of the table and a key of the JSON.
 */
import { ratio as safeRatio } from "./stats.js"

export interface Goal {
  /** Human-readable, e.g. "<= 0.2 ms". */
  readonly text: string
  /** Whether the goal held, from the figure's value and ratio. */
  readonly test: (value: number, ratio: number | null) => boolean
}

export interface Figure {
  /** Stable name, e.g. `navigation.hitP99Ms`: the JSON key. */
  readonly key: string
  readonly value: number | null
  readonly unit: string
  /** What the value is compared with, measured in the same run. */
  readonly baseline: number | null
  /** Unit of the baseline when it differs from the value's (a ratio against milliseconds). */
  readonly baselineUnit: string
  readonly baselineLabel: string | null
  /** `value / baseline` unless the figure is itself a ratio. */
  readonly ratio: number | null
  readonly goal: string | null
  /** `null` when there is no goal or no value. */
  readonly held: boolean | null
  readonly note: string | null
}

export interface FigureInput {
  readonly key: string
  readonly value: number | null
  readonly unit: string
  readonly baseline?: number | null
  readonly baselineUnit?: string
  readonly baselineLabel?: string
  /** Overrides `value / baseline`. */
  readonly ratio?: number | null
  readonly goal?: Goal
  readonly note?: string
}

export const figure = (input: FigureInput): Figure => {
  const value = input.value !== null && Number.isFinite(input.value) ? input.value : null
  const baseline = input.baseline ?? null
  const ratio = input.ratio !== undefined ? input.ratio : safeRatio(value, baseline)
  return {
    key: input.key,
    value,
    unit: input.unit,
    baseline,
    baselineUnit: input.baselineUnit ?? input.unit,
    baselineLabel: input.baselineLabel ?? null,
    ratio,
    goal: input.goal?.text ?? null,
    held: input.goal === undefined || value === null ? null : input.goal.test(value, ratio),
    note: input.note ?? null
  }
}

/** A figure that could not be measured (dependency missing, scenario failed). */
export const missing = (key: string, unit: string, note: string, goal?: Goal): Figure =>
  figure({ key, value: null, unit, note, ...(goal === undefined ? {} : { goal }) })

export const atMost = (limit: number, unit: string): Goal => ({
  text: `<= ${limit} ${unit}`.trim(),
  test: (value) => value <= limit
})

export const atLeast = (limit: number, unit: string): Goal => ({
  text: `>= ${limit} ${unit}`.trim(),
  test: (value) => value >= limit
})

/** A goal on the ratio column rather than on the value. */
export const ratioAtMost = (limit: number): Goal => ({
  text: `ratio <= ${limit}`,
  test: (_value, ratio) => ratio !== null && ratio <= limit
})

export const ratioAtLeast = (limit: number): Goal => ({
  text: `ratio >= ${limit}`,
  test: (_value, ratio) => ratio !== null && ratio >= limit
})
