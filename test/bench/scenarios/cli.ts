/**
 * Scenario `cli`: how long the `rallycache` command takes to start, as a
 * user runs it, against `node -e ''` (Node's own start) in the same run,
 * alternating the order of the runs:
 *
 * - `rallycache --help` from the bundled bin (`dist/bundle/rallycache.js`,
 *   the package's `bin`: one bundle started through V8's code cache, which
 *   the untimed first run writes), and from the unbundled modules `tsc`
 *   emits (`dist/bin.js`, what the bin was before the bundle);
 * - `rallycache cache stats` on an empty cache folder: a command that opens
 *   the store and resolves ffmpeg (from the capabilities remembered in the
 *   folder, no probe);
 * - `pnpm rallycache --version` without pnpm itself: the repository's
 *   launcher (`scripts/rallycache.mjs`), which checks that the bundle is up
 *   to date before running it.
 */
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync } from "node:fs"
import { join, resolve } from "node:path"
import type { BenchContext, Scenario } from "../lib/context.js"
import { atMost, figure, missing } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import { log } from "../lib/log.js"
import { median, nowMs } from "../lib/stats.js"

const repoRoot = resolve(import.meta.dirname, "..", "..", "..")
const bundle = join(repoRoot, "packages", "cli", "dist", "bundle", "rallycache.js")
const modules = join(repoRoot, "packages", "cli", "dist", "bin.js")
const launcher = join(repoRoot, "scripts", "rallycache.mjs")

const goalMs = 300

export const cliScenario: Scenario = {
  name: "cli",
  title: "CLI start-up",
  expected: [
    { key: "cli.helpMs", unit: "ms" },
    { key: "cli.helpUnbundledMs", unit: "ms" },
    { key: "cli.statsMs", unit: "ms" },
    { key: "cli.launcherMs", unit: "ms" }
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    if (!existsSync(bundle)) {
      return cliScenario.expected.map((e) => missing(e.key, e.unit, "no bundle: run pnpm build first"))
    }
    const cacheDir = join(context.tmpRoot, "cli-cache")
    mkdirSync(cacheDir, { recursive: true })
    const env = { ...process.env, RALLYCACHE_CACHE_DIR: cacheDir }
    const commands: Record<string, ReadonlyArray<string>> = {
      node: ["-e", ""],
      help: [bundle, "--help"],
      helpUnbundled: [modules, "--help"],
      stats: [bundle, "cache", "stats"],
      launcher: [launcher, "--version"]
    }
    const time = (args: ReadonlyArray<string>): number => {
      const started = nowMs()
      const result = spawnSync(process.execPath, args, { cwd: repoRoot, env, stdio: "ignore" })
      if (result.status !== 0) throw new Error(`node ${args.join(" ")} exited ${result.status}`)
      return nowMs() - started
    }
    // Once each before measuring: the capabilities file, the code cache, the page cache.
    for (const args of Object.values(commands)) time(args)
    const runs = context.quick ? 5 : 15
    const samples: Record<string, Array<number>> = {}
    const names = Object.keys(commands)
    for (let i = 0; i < runs; i++) {
      const order = i % 2 === 0 ? names : [...names].reverse()
      for (const name of order) (samples[name] ??= []).push(time(commands[name]!))
    }
    const node = median(samples["node"]!)
    log(`cli: node -e '' ${node.toFixed(0)} ms, --help ${median(samples["help"]!).toFixed(0)} ms (${runs} runs each)`)
    const row = (key: string, name: string, label: string, goal: boolean) =>
      figure({
        key,
        value: median(samples[name]!),
        unit: "ms",
        baseline: node,
        baselineLabel: "node -e ''",
        ...(goal ? { goal: atMost(goalMs, "ms") } : {}),
        note: label
      })
    return [
      row("cli.helpMs", "help", "rallycache --help, bundled bin", true),
      row("cli.helpUnbundledMs", "helpUnbundled", "rallycache --help from tsc's modules (dist/bin.js)", false),
      row("cli.statsMs", "stats", "rallycache cache stats, empty cache", true),
      row("cli.launcherMs", "launcher", "pnpm rallycache --version without pnpm (staleness check + bundle)", false)
    ]
  }
}
