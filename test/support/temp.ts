/**
 * Temp folders for tests that remove themselves: each one made here is
 * removed after the last test of the file that made it, pass or fail. The
 * summary reporter fails a run that leaves a `rallycache-*` entry behind.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll } from "vitest"

const made: Array<string> = []

// Registered when a test file first imports this module (vitest evaluates it
// once per file), so it runs after that file's tests.
afterAll(() => {
  for (const dir of made.splice(0)) fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
})

/** Remove `dir` (a folder or file) after the current file's tests. */
export const removeAfterAll = (dir: string): string => {
  made.push(dir)
  return dir
}

/** A new `rallycache-<prefix>-XXXXXX` folder in the temp folder, removed after the file's tests. */
export const tempDir = (prefix: string): string =>
  removeAfterAll(fs.mkdtempSync(path.join(os.tmpdir(), `rallycache-${prefix}-`)))
