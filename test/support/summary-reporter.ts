import { writeSync } from "node:fs"
import type { Reporter, TestModule } from "vitest/node"

/**
 * Prints one closing line, `tests: N passed, N failed, N skipped`, as the very
 * last line of the run (at process exit, after every other reporter), so a CI
 * that reads plain text sees the outcome.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
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
      // A file that fails to load has no tests but must not read as a pass.
      if (module.state() === "failed" && module.children.size === 0) failed++
    }
    process.once("exit", () => {
      writeSync(1, `\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`)
    })
  }
}
