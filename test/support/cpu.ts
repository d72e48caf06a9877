/**
 * vitest set-up file, loaded only when `RALLYCACHE_TEST_CPU` names a file:
 * appends one JSON line per test file with the CPU its worker process used
 * (user + system, with the children it waited for: the CLI, ffmpeg, npm...),
 * to find where the suite's time goes. Processes that detach from their
 * parent (a daemonised Postgres, ffmpeg orphaned by a SIGKILLed CLI) are not
 * counted.
 */
import * as fs from "node:fs"
import { afterAll, beforeAll } from "vitest"

const out = process.env["RALLYCACHE_TEST_CPU"]

/** Seconds of CPU of this process and its waited-for children, from /proc (clock ticks at 100 Hz). */
const cpuSeconds = (): { readonly self: number; readonly children: number } => {
  const stat = fs.readFileSync("/proc/self/stat", "utf8")
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ").map(Number)
  return { self: (fields[11]! + fields[12]!) / 100, children: (fields[13]! + fields[14]!) / 100 }
}

let start = { self: 0, children: 0 }
let file = ""

beforeAll((suite) => {
  start = cpuSeconds()
  file = (suite as { file?: { filepath?: string } }).file?.filepath ?? ""
})

afterAll(() => {
  if (out === undefined) return
  const end = cpuSeconds()
  const line = {
    file,
    pid: process.pid,
    // The whole process (its start and the file's imports included) and the part after the imports.
    totalSelf: end.self,
    totalChildren: end.children,
    testsSelf: Math.round((end.self - start.self) * 100) / 100,
    testsChildren: Math.round((end.children - start.children) * 100) / 100
  }
  fs.appendFileSync(out, JSON.stringify(line) + "\n")
})
