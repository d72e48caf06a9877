/**
 * Writing results and messages. Results (paths, tables, JSON) go to stdout;
 * progress and errors go to stderr, so `--json` output stays parseable.
 *
 * @internal
 */
import * as Metrics from "@rallycache/core/Metrics"
import { colorOn } from "../CliErrors.js"
import { Clock, Effect } from "effect"

/** @internal */
export const stdout = (text: string): Effect.Effect<void> =>
  Effect.sync(() => {
    process.stdout.write(text.endsWith("\n") ? text : text + "\n")
  })

/** @internal */
export const stderr = (text: string): Effect.Effect<void> =>
  Effect.sync(() => {
    process.stderr.write(text.endsWith("\n") ? text : text + "\n")
  })

/** One JSON object on one line of stdout. @internal */
export const json = (value: unknown): Effect.Effect<void> => stdout(JSON.stringify(value))

/** @internal */
export const isTTY = (): boolean => process.stderr.isTTY === true && process.env["TERM"] !== "dumb"

const useColor = (): boolean => colorOn("stderr")

const ansi = (code: string) => (text: string): string => useColor() ? `\u001b[${code}m${text}\u001b[0m` : text

/** @internal */
export const bold = ansi("1")
/** @internal */
export const dim = ansi("2")
/** @internal */
export const green = ansi("32")
/** @internal */
export const red = ansi("31")
/** @internal */
export const yellow = ansi("33")
/** @internal */
export const cyan = ansi("36")

/** Human-readable bytes (binary units). @internal */
export const formatBytes = (bytes: number): string => {
  if (!Number.isFinite(bytes)) return String(bytes)
  const units = ["B", "KiB", "MiB", "GiB", "TiB"]
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`
}

/** Human-readable milliseconds. @internal */
export const formatMs = (ms: number): string => {
  if (!Number.isFinite(ms)) return String(ms)
  if (ms < 1) return `${ms.toFixed(2)} ms`
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
}

/** @internal */
export const formatPercent = (ratio: number): string => `${(ratio * 100).toFixed(ratio >= 0.9995 || ratio === 0 ? 0 : 1)}%`

/** Round to `digits` decimals, for JSON. @internal */
export const round = (value: number, digits = 3): number => {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

const visibleLength = (text: string): number => text.replace(/\u001b\[[0-9;]*m/g, "").length

/**
 * Aligned columns; the first row is the header when `header` is set.
 *
 * @internal
 */
export const table = (rows: ReadonlyArray<ReadonlyArray<string>>, options: { readonly header?: boolean } = {}): string => {
  const widths: Array<number> = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))
    })
  }
  const lines = rows.map((row, r) =>
    row.map((cell, i) => {
      const pad = " ".repeat(Math.max(0, (widths[i] ?? 0) - visibleLength(cell)))
      const text = i === row.length - 1 ? cell : cell + pad
      return r === 0 && options.header === true ? bold(text) : text
    }).join("  ").trimEnd()
  )
  return lines.join("\n")
}

/**
 * A bar of `width` cells filled to `ratio`.
 *
 * @internal
 */
export const bar = (ratio: number, width = 24): string => {
  const r = Math.min(1, Math.max(0, Number.isFinite(ratio) ? ratio : 0))
  const full = Math.round(r * width)
  return "█".repeat(full) + "░".repeat(width - full)
}

/**
 * p-th percentile (0-100) of `values`, nearest rank (core's
 * `Metrics.quantile`); 0 for no values.
 *
 * @internal
 */
export const percentile = (values: ReadonlyArray<number>, p: number): number =>
  Metrics.quantile(values.slice().sort((a, b) => a - b), p / 100)

/**
 * `1 clip`, `2 clips`: a count and its noun, singular or plural.
 *
 * @internal
 */
export const count = (n: number, singular: string, plural = `${singular}s`): string =>
  `${n} ${n === 1 ? singular : plural}`

/**
 * The metrics snapshot as a table (for `--metrics` and the demo).
 *
 * @internal
 */
export const metricsTable = (m: Metrics.MetricsSnapshot): string => {
  const evictions = Object.entries(m.evictions).filter(([, n]) => n > 0).map(([reason, n]) => `${reason} ${n}`)
  return table([
    ["metric", "value"],
    ["cache hits", String(m.hits)],
    ["cache misses", String(m.misses)],
    ["hit rate", formatPercent(m.hitRate)],
    ["exports", String(m.exports)],
    ["export failures", String(m.exportFailures)],
    ["export retries", String(m.exportRetries)],
    [
      "export time",
      m.exportMs.count === 0
        ? "-"
        : `p50 ${formatMs(m.exportMs.p50)}, p99 ${formatMs(m.exportMs.p99)}, max ${formatMs(m.exportMs.max)}`
    ],
    ["validations", `${m.validations.valid} valid, ${m.validations.invalid} invalid`],
    [
      "queue",
      `high ${m.queue.high}, normal ${m.queue.normal}, low ${m.queue.low}, running ${m.queue.running}`
    ],
    ["cache usage", `${formatBytes(m.cacheBytes)} in ${m.cacheEntries} clips`],
    ["evictions", evictions.length === 0 ? "none" : evictions.join(", ")],
    ["heap used", formatBytes(m.heapUsedBytes)]
  ], { header: true })
}

/** Milliseconds from a monotonic, sub-millisecond clock (the Effect `Clock`). @internal */
export const nowMs: Effect.Effect<number> = Effect.map(Clock.currentTimeNanos, (nanos) => Number(nanos) / 1e6)
