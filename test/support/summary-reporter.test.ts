/**
 * The closing line of a run counts what failed outside tests too: a suite
 * whose beforeAll threw, a file that does not load, a temp folder left behind.
 * Runs vitest on generated test files with the summary reporter.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { tempDir } from "./temp.js"

const here = path.dirname(fileURLToPath(import.meta.url))
const vitest = createRequire(path.join(here, "..", "..", "package.json")).resolve("vitest/vitest.mjs")

/** Run vitest on `files` (name to source) with the summary reporter: exit code and last line. */
const runVitest = (files: Record<string, string>) => {
  const dir = tempDir("summary")
  for (const [name, source] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), source)
  fs.writeFileSync(
    path.join(dir, "vitest.config.mjs"),
    `export default { test: { globals: true, include: ["*.test.mjs"], reporters: [${
      JSON.stringify(path.join(here, "summary-reporter.ts"))
    }] } }\n`
  )
  const result = spawnSync(process.execPath, [vitest, "run", "--root", dir, "--config", "vitest.config.mjs"], {
    cwd: dir,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" }
  })
  return { code: result.status, last: result.stdout.trimEnd().split("\n").at(-1), stderr: result.stderr }
}

describe("summary reporter", () => {
  it("counts a suite whose beforeAll failed, and a file that does not load, as failed", () => {
    const result = runVitest({
      "hook.test.mjs": `describe("a", () => {
  beforeAll(() => { throw new Error("no database") })
  it("one", () => {})
  it("two", () => {})
})
it("passes", () => {})
`,
      "broken.test.mjs": `import "./does-not-exist.mjs"\nit("never runs", () => {})\n`
    })
    expect(result.code).toBe(1)
    expect(result.last).toBe("tests: 1 passed, 2 failed, 2 skipped")
  }, 60_000)

  it("fails a run that leaves a rallycache-* folder in the temp folder, and names it", () => {
    const result = runVitest({
      "leak.test.mjs": `import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
it("leaks", () => { fs.mkdirSync(path.join(os.tmpdir(), "rallycache-leaky")) })
`
    })
    expect(result.code).toBe(1)
    expect(result.last).toBe("tests: 1 passed, 0 failed, 0 skipped, 1 temp folder left")
    expect(result.stderr).toContain("  rallycache-leaky")
  }, 60_000)

  it("counts an unhandled error as a failure, though every test passed", () => {
    const result = runVitest({
      "stray.test.mjs": `it("passes, and leaves a rejection nobody handles", () => {
  void Promise.reject(new Error("stray rejection"))
})
it("passes", () => {})
`
    })
    expect(result.code).toBe(1)
    expect(result.last).toBe("tests: 2 passed, 1 failed, 0 skipped, 1 unhandled error")
  }, 60_000)

  it("reads as a pass when everything passed", () => {
    const result = runVitest({ "ok.test.mjs": `it("passes", () => {})\n` })
    expect({ code: result.code, last: result.last }).toEqual({ code: 0, last: "tests: 1 passed, 0 failed, 0 skipped" })
  }, 60_000)
})
