/**
 * rallycache benchmark suite: `pnpm bench [--quick] [--json | --markdown] [--only name]`.
 *
 * Every figure is measured beside its baseline in the same run and
 * reported with their ratio, because these machines are noisy. The table
 * (or, with `--json`, one JSON object; with `--markdown`, the README
 * tables) goes to stdout; progress goes to stderr.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { BenchContext, Scenario } from "./lib/context.js"
import { resolveBinaries } from "./lib/ffmpeg.js"
import type { Figure } from "./lib/figure.js"
import { missing } from "./lib/figure.js"
import type { Fixture } from "./lib/fixture.js"
import { ensureFixture, fullSpec, quickSpec, smokeSpec } from "./lib/fixture.js"
import { log } from "./lib/log.js"
import { currentLoad, describeMachine, machine } from "./lib/machine.js"
import { renderMarkdown } from "./lib/markdown.js"
import { smoke } from "./lib/smoke.js"
import { renderJson, renderTable } from "./lib/table.js"
import { cliScenario } from "./scenarios/cli.js"
import { clusterScenario } from "./scenarios/cluster.js"
import { exportScenario } from "./scenarios/export.js"
import { longSourceScenario } from "./scenarios/longSource.js"
import { matchScenario } from "./scenarios/match.js"
import { navigationScenario } from "./scenarios/navigation.js"
import { objectStoreScenario } from "./scenarios/objectStore.js"
import { preloadScenario } from "./scenarios/preload.js"
import { preloadLiveScenario } from "./scenarios/preloadLive.js"
import { readyScenario } from "./scenarios/ready.js"
import { queueScenario } from "./scenarios/queue.js"
import { storeIndexScenario } from "./scenarios/storeIndex.js"
import { viewerScenario } from "./scenarios/viewer.js"

const scenarios: ReadonlyArray<Scenario> = [
  navigationScenario,
  exportScenario,
  matchScenario,
  longSourceScenario,
  readyScenario,
  preloadScenario,
  preloadLiveScenario,
  queueScenario,
  storeIndexScenario,
  clusterScenario,
  viewerScenario,
  cliScenario,
  objectStoreScenario
]

interface Args {
  readonly json: boolean
  readonly markdown: boolean
  readonly quick: boolean
  readonly only: ReadonlyArray<string>
  readonly keepTemp: boolean
  /** Also write the JSON object to this file, whatever stdout prints. */
  readonly jsonOut: string | undefined
}

const usage = `usage: pnpm bench [--quick] [--json | --markdown] [--json-out <file>] [--only <scenario>[,<scenario>...]] [--keep-temp]
scenarios: ${scenarios.map((s) => s.name).join(", ")}`

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  let json = false
  let markdown = false
  let quick = false
  let keepTemp = false
  let jsonOut: string | undefined
  const only: Array<string> = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--") continue
    else if (arg === "--json") json = true
    else if (arg === "--markdown") markdown = true
    else if (arg === "--quick") quick = true
    else if (arg === "--keep-temp") keepTemp = true
    else if (arg === "--json-out") {
      jsonOut = argv[++i]
      if (jsonOut === undefined || jsonOut === "") throw new Error(`--json-out needs a file path\n${usage}`)
    }
    else if (arg === "--only" || arg.startsWith("--only=")) {
      const value = arg === "--only" ? argv[++i] : arg.slice("--only=".length)
      if (value === undefined || value === "") throw new Error(`--only needs a scenario name\n${usage}`)
      only.push(...value.split(",").map((s) => s.trim()).filter((s) => s.length > 0))
    } else if (arg === "--help" || arg === "-h") {
      process.stdout.write(`${usage}\n`)
      process.exit(0)
    } else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${usage}`)
  }
  for (const name of only) {
    if (!scenarios.some((s) => s.name === name)) throw new Error(`unknown scenario ${JSON.stringify(name)}\n${usage}`)
  }
  if (json && markdown) throw new Error(`--json and --markdown exclude each other\n${usage}`)
  return { json, markdown, quick, only, keepTemp, jsonOut }
}

const main = async (): Promise<number> => {
  const args = parseArgs(process.argv.slice(2))
  const started = performance.now()
  const host = machine()
  log(`${smoke ? "smoke (RALLYCACHE_BENCH_SMOKE=1, figures are not measurements) " : ""}${args.quick ? "quick" : "full"} run on ${describeMachine(host)}`)
  const tmpRoot = mkdtempSync(join(tmpdir(), "rallycache-bench-"))
  const binaries = await resolveBinaries()
  log(`ffmpeg: ${binaries.ffmpeg}`)
  let fixture: Promise<Fixture> | undefined
  const context: BenchContext = {
    quick: args.quick,
    tmpRoot,
    binaries,
    fixture: () => (fixture ??= ensureFixture(smoke ? smokeSpec : args.quick ? quickSpec : fullSpec)),
    exportDurations: undefined
  }
  const figures: Array<Figure> = []
  const errors: Array<{ scenario: string; message: string }> = []
  try {
    for (const scenario of scenarios) {
      if (args.only.length > 0 && !args.only.includes(scenario.name)) continue
      log(`▶ ${scenario.title}`)
      const scenarioStarted = performance.now()
      let produced: ReadonlyArray<Figure> = []
      try {
        produced = await scenario.run(context)
      } catch (error) {
        const message = error instanceof Error ? error.message.split("\n")[0]! : String(error)
        errors.push({ scenario: scenario.name, message })
        log(`✗ ${scenario.name} failed: ${message}`)
        if (error instanceof Error && error.stack !== undefined) log(error.stack.split("\n").slice(1, 4).join("\n"))
      }
      figures.push(...produced)
      // Every expected key appears, measured or not, so the JSON keys are stable.
      for (const expected of scenario.expected) {
        if (!produced.some((f) => f.key === expected.key)) {
          figures.push(missing(expected.key, expected.unit, `not measured: ${errors.at(-1)?.scenario === scenario.name ? errors.at(-1)!.message : "scenario skipped it"}`))
        }
      }
      log(`✓ ${scenario.name} in ${((performance.now() - scenarioStarted) / 1000).toFixed(1)} s`)
    }
  } finally {
    if (!args.keepTemp) rmSync(tmpRoot, { recursive: true, force: true })
    else log(`temp files kept in ${tmpRoot}`)
  }
  const durationMs = performance.now() - started
  const loadAtEnd = currentLoad()
  const report = { machine: host, quick: args.quick, durationMs, loadAtEnd, figures, errors }
  if (args.jsonOut !== undefined) writeFileSync(args.jsonOut, `${renderJson(report)}\n`)
  if (args.json) {
    process.stdout.write(`${renderJson(report)}\n`)
  } else if (args.markdown) {
    process.stdout.write(`${renderMarkdown(report)}\n`)
  } else {
    process.stdout.write(
      `rallycache bench (${args.quick ? "quick" : "full"}), ${describeMachine(host)}, ${loadAtEnd} at end, ${(durationMs / 1000).toFixed(0)} s\n\n${renderTable(figures)}\n`
    )
  }
  log(`done in ${(durationMs / 1000).toFixed(1)} s${errors.length > 0 ? `, ${errors.length} scenario(s) failed` : ""}`)
  return errors.length > 0 ? 1 : 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 2
  }
)
