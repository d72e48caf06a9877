import { spawn } from "node:child_process"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { exampleBundle } from "../../../test/support/bundle.js"

const exampleRoot = Path.resolve(import.meta.dirname, "..")

/** Runs an entry point (its bundle) to its exit; no Postgres is started: the flags are checked first. */
const run = (file: string, args: ReadonlyArray<string>) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [exampleBundle(exampleRoot, Path.basename(file, ".ts")), ...args], {
      cwd: exampleRoot,
      env: { ...process.env, DATABASE_URL: "postgres://nobody@127.0.0.1:1/none" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.once("error", reject)
    child.once("exit", (code) => resolve({ code, stdout, stderr }))
  })

describe("bad flags", () => {
  for (
    const [file, args, says] of [
      ["runner.ts", ["--port", "abc"], "runner: --port (or RUNNER_PORT) must be a number from 1 to 65535"],
      ["runner.ts", ["--", "--concurrency", "0"], "runner: --concurrency must be an integer of 1 or more"],
      ["front.ts", ["--port", "abc"], "front: --port must be a number from 0 to 65535"],
      ["front.ts", ["--bogus"], "front: Received unknown argument: '--bogus'"]
    ] as const
  ) {
    it(`${file} ${args.join(" ")} exits 2 with one line`, async () => {
      const result = await run(file, args)
      expect(result.code, result.stderr).toBe(2)
      expect(result.stderr).toBe(`${says}\n`)
      expect(result.stdout).toBe("")
    })
  }
})
