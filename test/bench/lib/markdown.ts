/**
 * `--markdown`: the README tables, from one run. The summary table of the
 * root README (one row per question a user asks, each figure beside its
 * baseline) and the full table of test/bench/README.md, both rendered from
 * the same figures, so that every number a README shows comes from one run
 * and can be pasted as printed.
 */
import type { Figure } from "./figure.js"
import type { Report } from "./table.js"
import { formatNumber, renderTable } from "./table.js"
import { describeMachine } from "./machine.js"

const find = (figures: ReadonlyArray<Figure>, key: string): Figure | undefined => figures.find((f) => f.key === key)

/** The value of `key` with its unit, or "—" when it was not measured. */
const value = (figures: ReadonlyArray<Figure>, key: string): string => {
  const f = find(figures, key)
  if (f === undefined || f.value === null) return "—"
  return f.unit === "" || f.unit === "x" ? formatNumber(f.value) : `${formatNumber(f.value)} ${f.unit}`
}

const ratio = (figures: ReadonlyArray<Figure>, key: string): string => {
  const f = find(figures, key)
  return f === undefined || f.ratio === null ? "—" : `${formatNumber(f.ratio)}x`
}

/** The goal of `key` and whether it held: "<= 1.2x", "<= 1.2x: **missed**". */
const goal = (figures: ReadonlyArray<Figure>, key: string): string => {
  const f = find(figures, key)
  if (f === undefined || f.goal === null) return "—"
  const text = f.goal.replace(/^ratio /, "")
  return f.held === false ? `${text}: **missed**` : f.held === null ? `${text}: not measured` : text
}

const joined = (figures: ReadonlyArray<Figure>, keys: ReadonlyArray<string>): string =>
  keys.map((k) => value(figures, k)).join(" / ")

/** "N rallies" from a match figure's note ("5 rallies, copy mode"). */
const ralliesOf = (figures: ReadonlyArray<Figure>, key: string): string =>
  /(\d+) rallies/.exec(find(figures, key)?.note ?? "")?.[0] ?? "? rallies"

export const renderSummary = (figures: ReadonlyArray<Figure>): string => {
  const f = figures
  const rows: Array<[string, string, string, string]> = [
    [
      "cached clip, `getClip` p50 / p99 (10,000 entries)",
      joined(f, ["navigation.hitP50Ms", "navigation.hitP99Ms"]),
      `copy cut on demand: ${value(f, "navigation.onDemandP50Ms")} p50`,
      `${goal(f, "navigation.hitP99Ms")}; ${goal(f, "navigation.speedupVsOnDemand")} faster: ${value(f, "navigation.speedupVsOnDemand")}x`
    ],
    [
      "export, copy mode, checked and crash-safe",
      value(f, "export.copyMs"),
      `the bare ffmpeg cut: ${ratio(f, "export.copyRatioVsBareCut")}; ffmpeg + fsync + the same check + rename: ${ratio(f, "export.copyRatioVsFfmpegPlusCheck")}`,
      goal(f, "export.copyRatioVsBareCut")
    ],
    [
      "export, accurate mode",
      value(f, "export.accurateMs"),
      `the same ffmpeg command: ${ratio(f, "export.accurateRatio")}`,
      "—"
    ],
    [
      `whole match, ${ralliesOf(f, "match.rallycache2Ms")}, copy, concurrency 2`,
      value(f, "match.rallycache2Ms"),
      `p-queue over the same cuts, finished alike: ${value(f, "match.pqueue2Ms")} (${ratio(f, "match.copy.makespanRatioVsPQueue")})`,
      goal(f, "match.copy.makespanRatioVsPQueue")
    ],
    [
      `whole match, ${ralliesOf(f, "match.accurate.rallycache2Ms")}, accurate, concurrency 2`,
      value(f, "match.accurate.rallycache2Ms"),
      `p-queue over the same cuts, finished alike: ${value(f, "match.accurate.pqueue2Ms")} (${ratio(f, "match.accurate.makespanRatioVsPQueue")})`,
      goal(f, "match.accurate.makespanRatioVsPQueue")
    ],
    [
      "time to ready under load (accurate), with preemption",
      value(f, "ready.preemptMs"),
      `idle: ${value(f, "ready.idleMs")} (${ratio(f, "ready.preemptRatio")}); without preemption: ${value(f, "ready.noPreemptMs")} (${ratio(f, "ready.noPreemptRatio")})`,
      goal(f, "ready.preemptRatio")
    ],
    [
      "preload hit rate, watcher / skipper / jumper (**modelled**, virtual time)",
      joined(f, ["preload.watcher.hitRate", "preload.skipper.hitRate", "preload.jumper.hitRate"]),
      `"next only": ${joined(f, ["preload.watcher.nextOnly.hitRate", "preload.skipper.nextOnly.hitRate", "preload.jumper.nextOnly.hitRate"])}; none: ${joined(f, ["preload.watcher.none.hitRate", "preload.skipper.none.hitRate", "preload.jumper.none.hitRate"])}`,
      ">= next only"
    ],
    [
      "preload in real time, watcher / skipper: hit rate; wait p50, p99",
      `${joined(f, ["preload.live.watcher.hitRate", "preload.live.skipper.hitRate"])}; ${joined(f, ["preload.live.watcher.waitP50Ms", "preload.live.skipper.waitP50Ms"])}; ${joined(f, ["preload.live.watcher.waitP99Ms", "preload.live.skipper.waitP99Ms"])}`,
      "—",
      "—"
    ],
    [
      "queue overhead per no-op job, 10k / 100k",
      joined(f, ["queue.perJobUs10k", "queue.perJobUs100k"]),
      `p-queue: ${ratio(f, "queue.overheadRatioVsPQueue10k")} / ${ratio(f, "queue.overheadRatioVsPQueue100k")}`,
      `${goal(f, "queue.overheadRatioVsPQueue10k")} at 10k; growth ${goal(f, "queue.perJobGrowth10kTo100k")}`
    ],
    [
      "index start-up, 10k / 100k entries",
      joined(f, ["index.reconcile10kMs", "index.reconcile100kMs"]),
      `read + parse + Map of the same journal: ${ratio(f, "index.reconcile10kRatioVsFloor")} / ${ratio(f, "index.reconcile100kRatioVsFloor")}; every clip checked after ${value(f, "index.sweep100kMs")} at 100k`,
      `${goal(f, "index.reconcile10kRatioVsFloor")} / ${goal(f, "index.reconcile100kRatioVsFloor")}`
    ],
    ["memory per index entry", value(f, "index.bytesPerEntry"), "—", goal(f, "index.bytesPerEntry")],
    ["lookup p99 at 100k entries", value(f, "index.lookupP99Us100k"), "—", goal(f, "index.lookupP99Us100k")]
  ]
  return [
    "| figure | rallycache | baseline (same run) | goal |",
    "|---|---|---|---|",
    ...rows.map((r) => `| ${r.join(" | ")} |`)
  ].join("\n")
}

const viewerBrowsers = ["chromium", "firefox"] as const
const browserTitle: Record<(typeof viewerBrowsers)[number], string> = { chromium: "Chromium", firefox: "Firefox ESR" }

/** "p50 / p99" of a viewer case, ours or (`baseline`) the one-element page's. */
const viewerPair = (figures: ReadonlyArray<Figure>, browser: string, c: string, baseline: boolean): string =>
  ["P50Ms", "P99Ms"].map((q) => {
    const f = find(figures, `viewer.${browser}.${c}${q}`)
    const v = f === undefined ? null : baseline ? f.baseline : f.value
    return v === null ? "—" : `${formatNumber(v)} ms`
  }).join(" / ")

const megabytes = (bytes: number | null | undefined): string =>
  bytes === null || bytes === undefined || !Number.isFinite(bytes) ? "—" : `${formatNumber(bytes / 1e6)} MB`

/** A viewer case's p99 goal and, per browser measured, whether it held. */
const viewerGoal = (figures: ReadonlyArray<Figure>, browsers: ReadonlyArray<(typeof viewerBrowsers)[number]>, c: string): string => {
  const p99 = browsers.map((b) => find(figures, `viewer.${b}.${c}P99Ms`))
  const goals = [...new Set(p99.flatMap((f) => (f?.goal === undefined || f.goal === null ? [] : [f.goal])))]
  if (goals.length === 0) return "—"
  const text = goals.join(" / ")
  const held = p99.map((f) => f?.held ?? null)
  const verdict = (h: boolean | null) => (h === null ? "not measured" : h ? "held" : "**missed**")
  if (held.every((h) => h === held[0])) return held[0] === true ? text : `${text}: ${verdict(held[0] ?? null)}`
  return `${text}: ${browsers.map((b, i) => `${verdict(held[i] ?? null)} in ${browserTitle[b]}`).join(", ")}`
}

/**
 * The viewer scenario's table of the root README (click to first painted
 * frame, each browser beside its one-element page), or `undefined` when the
 * scenario did not run.
 */
export const renderViewer = (figures: ReadonlyArray<Figure>): string | undefined => {
  const browsers = viewerBrowsers.filter((b) => figures.some((f) => f.key.startsWith(`viewer.${b}.`)))
  if (browsers.length === 0) return undefined
  const rows: Array<[string, string]> = [
    ["next rally, prepared in the page", "prepared"],
    ["a rally cached on the server, not prepared", "notPrepared"],
    ["a miss (still queued on the server)", "miss"]
  ]
  const bytes = browsers.map((b) => find(figures, `viewer.${b}.bytesPerSwitch`))
  const meanClip = bytes.find((f) => typeof f?.baseline === "number")?.baseline
  const singleBytes = (f: Figure | undefined) => /one-element page: ([\d.]+) MB/.exec(f?.note ?? "")?.[1]
  return [
    `| click → first painted frame, p50 / p99 | ${browsers.map((b) => `${browserTitle[b]} | its one-element page`).join(" | ")} | goal (p99) |`,
    `|---|${browsers.map(() => "---|---|").join("")}---|`,
    ...rows.map(([title, c]) =>
      `| ${title} | ${browsers.map((b) => `${viewerPair(figures, b, c, false)} | ${viewerPair(figures, b, c, true)}`).join(" | ")} | ${
        viewerGoal(figures, browsers, c)
      } |`
    ),
    `| clip bytes per switch (mean clip: ${megabytes(meanClip)}) | ${
      bytes.map((f) => `${megabytes(f?.value)} | ${singleBytes(f) === undefined ? "—" : `${singleBytes(f)} MB`}`).join(" | ")
    } | — |`
  ].join("\n")
}

export const renderMarkdown = (report: Report): string => {
  const viewer = renderViewer(report.figures)
  return [
    `Measured by \`pnpm bench${report.quick ? " --quick" : ""}\` (${report.quick ? "quick" : "full"} run, ${(report.durationMs / 1000).toFixed(0)} s) on ${describeMachine(report.machine)}; load average ${report.loadAtEnd} at the end. Every figure beside a baseline measured in the same run.`,
    "",
    "### Summary (root README)",
    "",
    renderSummary(report.figures),
    "",
    ...(viewer === undefined ? [] : ["**What a viewer sees** (the `viewer` scenario):", "", viewer, ""]),
    "### Every figure (test/bench/README.md)",
    "",
    renderTable(report.figures)
  ].join("\n")
}
