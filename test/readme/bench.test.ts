/**
 * The benchmark commands the READMEs show, typed as shown from the
 * repository root: the harness runs, prints the table, the JSON object and
 * the floors. The figures themselves are the bench's business (ratios in
 * the same run), not this test's: it checks that each command works and
 * prints what its README says it prints. `RALLYCACHE_BENCH_SMOKE=1` makes
 * each run go down the same paths at the smallest counts (one repetition,
 * a short low-resolution fixture), so the suite does not pay for figures
 * it does not read.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repoRoot = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

const run = (command: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(command, args, {
      cwd: repoRoot,
      env: { ...process.env, RALLYCACHE_BENCH_SMOKE: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.once("close", (code) => resolve({ code, stdout, stderr }))
  })

interface Row {
  readonly key: string
  readonly value: number
  readonly baseline: number | null
  readonly ratio: number | null
}

describe("bench commands", () => {
  it("pnpm bench --help lists the options and every scenario", async () => {
    const result = await run("pnpm", ["bench", "--help"])
    expect(result.code, result.stderr).toBe(0)
    expect(result.stdout).toMatch(/--quick/)
    for (const scenario of ["navigation", "export", "match", "long", "ready", "preload", "preloadLive", "queue", "index", "cluster"]) {
      expect(result.stdout).toContain(scenario)
    }
  })

  it("pnpm bench --json --quick --only queue prints one JSON object whose ratios are value / baseline of the same run", async () => {
    const result = await run("pnpm", ["bench", "--json", "--quick", "--only", "queue"])
    expect(result.code, result.stderr).toBe(0)
    const json = JSON.parse(result.stdout) as Record<string, unknown> & { rows: ReadonlyArray<Row> }
    for (const key of ["queue.perJobUs10k", "queue.overheadRatioVsPQueue10k", "queue.perJobGrowth10kTo100k"]) {
      expect(typeof json[key], key).toBe("number")
    }
    const perJob = json.rows.find((row) => row.key === "queue.perJobUs10k")!
    expect(perJob.baseline).toBeGreaterThan(0)
    expect(perJob.ratio).toBeCloseTo(perJob.value / perJob.baseline!, 6)
    expect(json["queue.overheadRatioVsPQueue10k"]).toBeCloseTo(perJob.ratio!, 6)
  }, 300_000)

  it("pnpm bench --markdown --json-out bench.json --quick --only queue prints the README tables and writes the same run's JSON", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "rallycache-bench-json-"))
    try {
      const file = path.join(dir, "bench.json")
      const result = await run("pnpm", ["bench", "--markdown", "--json-out", file, "--quick", "--only", "queue"])
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout).toMatch(/^\| .*figure.* \|/m)
      const json = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>
      const ratio = json["queue.overheadRatioVsPQueue10k"]
      expect(typeof ratio).toBe("number")
      // The table shows the figure the file holds (3 significant digits).
      expect(result.stdout).toMatch(new RegExp(`queue\\.overheadRatioVsPQueue10k .*\\| +${Number(ratio).toPrecision(3)} x`))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 300_000)

  it("pnpm exec tsx test/bench/floors.ts --quick --json prints every step and the floor of the copy export", async () => {
    const result = await run("pnpm", ["exec", "tsx", "test/bench/floors.ts", "--quick", "--json"])
    expect(result.code, result.stderr).toBe(0)
    const json = JSON.parse(result.stdout) as { medians: Record<string, number>; crashSafeRatioVsBareCut: number }
    for (const step of ["bareCut", "spawn", "fsyncClip", "clipCheck", "crashSafeCut", "sourceProbe", "allKeyframes"]) {
      expect(json.medians[step], step).toBeGreaterThan(0)
    }
    // The crash-safe cut does the bare cut and more.
    expect(json.crashSafeRatioVsBareCut).toBeCloseTo(json.medians["crashSafeCut"]! / json.medians["bareCut"]!, 6)
  }, 300_000)
})
