/**
 * `pnpm bench --markdown` prints the root README's tables from one run's
 * figures: the summary, and the viewer's table when that scenario ran (its
 * figures rendered as the README shows them, each browser beside its
 * one-element page). Rendered here from figures made by hand, as the
 * scenarios make them, so no browser is needed.
 */
import { describe, expect, it } from "@effect/vitest"
import { atMost, figure, type Figure } from "../bench/lib/figure.js"
import { renderViewer } from "../bench/lib/markdown.js"

const viewerFigures = (browser: string, scale: number, missGoal: number): Array<Figure> => [
  ...(["prepared", "notPrepared", "miss"] as const).flatMap((c, i) => [
    figure({ key: `viewer.${browser}.${c}P50Ms`, value: 10 * scale * (i + 1), unit: "ms", baseline: 200 + i, baselineLabel: "one-element page" }),
    figure({
      key: `viewer.${browser}.${c}P99Ms`,
      value: 15 * scale * (i + 1),
      unit: "ms",
      baseline: 400 + i,
      baselineLabel: "one-element page",
      goal: atMost(c === "prepared" ? 20 : c === "notPrepared" ? 100 : missGoal, "ms")
    })
  ]),
  figure({
    key: `viewer.${browser}.bytesPerSwitch`,
    value: 843_438 * scale,
    unit: "B",
    baseline: 3_251_478,
    baselineLabel: "mean size of the clip switched to",
    note: "one-element page: 0.34 MB per switch"
  })
]

describe("bench --markdown", () => {
  it("renders no viewer table when the viewer scenario did not run", () => {
    expect(renderViewer([figure({ key: "queue.perJobUs10k", value: 3, unit: "µs" })])).toBeUndefined()
  })

  it("renders the viewer's figures, each browser beside its one-element page, and which goals held", () => {
    const table = renderViewer([...viewerFigures("chromium", 1, 1678), ...viewerFigures("firefox", 2, 734)])!
    const lines = table.split("\n")
    expect(lines[0]).toBe("| click → first painted frame, p50 / p99 | Chromium | its one-element page | Firefox ESR | its one-element page | goal (p99) |")
    expect(lines).toContain("| next rally, prepared in the page | 10.0 ms / 15.0 ms | 200 ms / 400 ms | 20.0 ms / 30.0 ms | 200 ms / 400 ms | <= 20 ms: held in Chromium, **missed** in Firefox ESR |")
    expect(lines).toContain("| a rally cached on the server, not prepared | 20.0 ms / 30.0 ms | 201 ms / 401 ms | 40.0 ms / 60.0 ms | 201 ms / 401 ms | <= 100 ms |")
    expect(lines).toContain("| a miss (still queued on the server) | 30.0 ms / 45.0 ms | 202 ms / 402 ms | 60.0 ms / 90.0 ms | 202 ms / 402 ms | <= 1678 ms / <= 734 ms |")
    expect(lines).toContain("| clip bytes per switch (mean clip: 3.25 MB) | 0.843 MB | 0.34 MB | 1.69 MB | 0.34 MB | — |")
  })

  it("renders one browser when only one ran", () => {
    const table = renderViewer(viewerFigures("firefox", 10, 734))!
    expect(table.split("\n")[0]).toBe("| click → first painted frame, p50 / p99 | Firefox ESR | its one-element page | goal (p99) |")
    expect(table).toContain("<= 20 ms: **missed**")
  })
})
