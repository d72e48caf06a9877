/**
 * `rallycache demo` with a short match finishes and prints its table.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { runCli, tempDir } from "./support.js"

describe("rallycache demo", () => {
  it.live("a short demo generates the match, watches it and prints the metrics table", () =>
    Effect.gen(function*() {
      const dir = tempDir("cli-demo")
      const result = yield* runCli(["demo", "--dir", dir, "--duration", "8", "--speed", "8"])
      expect(result.code, result.stderr).toBe(0)
      const out = result.stdout
      for (const row of ["hit rate", "wait", "export time", "cache usage"]) expect(out).toMatch(new RegExp(`^${row}\\s`, "m"))
      expect(out).toContain(path.join(dir, "clips"))
      // Started as `node .../rallycache.js demo`: the next step is typed the same way.
      expect(out).toMatch(/^  node \S+rallycache\.js export .* --rallies .* --out/m)
      const rallies = JSON.parse(fs.readFileSync(path.join(dir, "rallies.json"), "utf8")) as {
        rallies: Array<unknown>
      }
      expect(rallies.rallies.length).toBeGreaterThanOrEqual(3)
      const clips = fs.readdirSync(path.join(dir, "clips")).filter((f) => f.endsWith(".mp4"))
      expect(clips.length).toBe(rallies.rallies.length)
      // Its cache is its own, under --dir.
      expect(fs.existsSync(path.join(dir, "cache"))).toBe(true)
    }))
})
