/**
 * Renders figures as a plain-text table (stdout) or one JSON object.
 */
import type { Figure } from "./figure.js"
import type { Machine } from "./machine.js"

/** Three significant digits, no exponent for everyday magnitudes. */
export const formatNumber = (value: number | null): string => {
  if (value === null || !Number.isFinite(value)) return "—"
  if (value === 0) return "0"
  const abs = Math.abs(value)
  if (abs >= 1000) return Math.round(value).toString()
  if (abs >= 100) return value.toFixed(0)
  if (abs >= 10) return value.toFixed(1)
  if (abs >= 1) return value.toFixed(2)
  if (abs >= 0.001) return value.toPrecision(3)
  return value.toExponential(2)
}

const withUnit = (value: number | null, unit: string): string => {
  const text = formatNumber(value)
  return text === "—" || unit === "" ? text : `${text} ${unit}`
}

export const renderTable = (figures: ReadonlyArray<Figure>): string => {
  const header = ["figure", "value", "baseline", "ratio", "goal", "held"]
  const rows = figures.map((f) => [
    f.key,
    withUnit(f.value, f.unit),
    f.baseline === null ? "—" : `${withUnit(f.baseline, f.baselineUnit)}${f.baselineLabel === null ? "" : ` (${f.baselineLabel})`}`,
    formatNumber(f.ratio),
    f.goal ?? "—",
    f.held === null ? (f.note !== null && f.value === null ? "n/a" : "—") : f.held ? "yes" : "NO"
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: ReadonlyArray<string>): string =>
    `| ${cells.map((c, i) => (i === 0 || i >= 4 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`
  const out = [line(header), `|${widths.map((w, i) => (i === 0 || i >= 4 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`]
  for (const row of rows) out.push(line(row))
  const notes = figures.filter((f) => f.note !== null)
  if (notes.length > 0) {
    out.push("")
    for (const f of notes) out.push(`- ${f.key}: ${f.note}`)
  }
  return out.join("\n")
}

export interface Report {
  readonly machine: Machine
  readonly quick: boolean
  readonly durationMs: number
  /** 1-minute load average when the run ended. */
  readonly loadAtEnd: number
  readonly figures: ReadonlyArray<Figure>
  readonly errors: ReadonlyArray<{ readonly scenario: string; readonly message: string }>
}

/**
 * One JSON object: every figure's stable key maps to its value (so
 * `jq '."navigation.hitP99Ms"'` works), and `rows` / `meta` carry the rest.
 * Figure keys always contain a dot, so they never clash with `rows`/`meta`.
 */
export const renderJson = (report: Report): string => {
  const out: Record<string, unknown> = {}
  for (const f of report.figures) out[f.key] = f.value
  out["rows"] = report.figures
  out["meta"] = {
    machine: report.machine,
    quick: report.quick,
    durationMs: Math.round(report.durationMs),
    loadAverageAtEnd: report.loadAtEnd,
    errors: report.errors
  }
  return JSON.stringify(out, null, 2)
}
