import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { SerializedError } from "vitest"
import type { Reporter, TestModule } from "vitest/node"

/**
 * Shared by the files of one run on purpose, and removed with the run's
 * folder: generated sample videos, and the reliability tests' figures log.
 */
const sharedByTheRun = new Set(["rallycache-fixtures", "rallycache-reliability-figures.jsonl"])

const count = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`

/** A temp folder a test made and did not remove. */
const isLeftover = (name: string): boolean => name.startsWith("rallycache-") && !sharedByTheRun.has(name)

/**
 * Prints one closing line, `tests: N passed, N failed, N skipped`, as the very
 * last line of the run (at process exit, after every other reporter), so a CI
 * that reads plain text sees the outcome. A suite or file that failed outside
 * its tests (a `beforeAll` that threw, a file that does not load) counts as one
 * failure, and so does an unhandled error: the line reads as a pass only when
 * the run passed.
 *
 * It also checks that tests clean up after themselves: the run gets a temp
 * folder of its own (`TMPDIR`, set before any worker starts, so test processes
 * and their children inherit it), and every `rallycache-*` entry left in it at
 * the end is listed and fails the run. Everything else in it (caches of tsx or
 * Chromium) is removed silently with the folder.
 */
export default class SummaryReporter implements Reporter {
  private runTmp: string | undefined

  onInit(): void {
    const base = os.tmpdir()
    this.runTmp = fs.mkdtempSync(path.join(base, "vitest-run-"))
    // World-writable with the sticky bit, like /tmp: some tests run servers as
    // another user (Postgres refuses to run as root).
    fs.chmodSync(this.runTmp, 0o1777)
    process.env["TMPDIR"] = this.runTmp
    const dir = this.runTmp
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }))
  }

  onTestRunEnd(
    testModules: ReadonlyArray<TestModule>,
    unhandledErrors: ReadonlyArray<SerializedError> = []
  ): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === "passed") passed++
        else if (state === "failed") failed++
        else skipped++
      }
      // Errors of the file itself (it did not load, an afterAll threw) or of a
      // suite (its beforeAll threw, and its tests were skipped).
      if (module.errors().length > 0) failed++
      for (const suite of module.children.allSuites()) {
        if (suite.errors().length > 0) failed++
      }
    }
    // vitest fails the run on an error no test caught: it counts as a failure.
    failed += unhandledErrors.length
    const leftovers = this.leftovers()
    const extra = [
      unhandledErrors.length > 0 ? count(unhandledErrors.length, "unhandled error", "unhandled errors") : undefined,
      leftovers.length > 0 ? `${count(leftovers.length, "temp folder", "temp folders")} left` : undefined
    ].filter((part) => part !== undefined)
    if (leftovers.length > 0) {
      process.exitCode = 1
      process.stderr.write(
        `\nTests left these in the temp folder (a test must remove what it creates):\n${
          leftovers.map((name) => `  ${name}`).join("\n")
        }\n`
      )
    }
    const line = `tests: ${passed} passed, ${failed} failed, ${skipped} skipped${
      extra.length > 0 ? `, ${extra.join(", ")}` : ""
    }`
    process.once("exit", () => {
      fs.writeSync(1, `\n${line}\n`)
    })
  }

  /** The `rallycache-*` entries left in the run's temp folder, which is emptied for the next run (watch mode). */
  private leftovers(): Array<string> {
    const dir = this.runTmp
    if (dir === undefined) return []
    const names = fs.readdirSync(dir)
    for (const name of names) fs.rmSync(path.join(dir, name), { recursive: true, force: true, maxRetries: 3 })
    return names.filter(isLeftover).sort()
  }
}
