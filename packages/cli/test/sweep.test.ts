import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as CliStats from "../src/internal/cliStats.js"
import * as Temp from "../../../test/support/temp.js"

describe("temporary files of killed runs", () => {
  it.effect("are swept when their writer is gone, kept while it lives", () =>
    Effect.gen(function*() {
      const dir = Temp.tempDir("sweep")
      const dead = spawnSync("true").pid
      const names = [
        `cli-stats.json.${dead}.tmp`,
        `cli-stats.json.${process.pid}.tmp`,
        `cli-stats.json.${process.ppid}.tmp`,
        "cli-stats.json",
        "journal.1.tmp"
      ]
      for (const name of names) fs.writeFileSync(path.join(dir, name), "x")
      expect(yield* CliStats.sweep(dir)).toBe(1)
      expect(fs.readdirSync(dir).sort()).toEqual(names.slice(1).sort())
    }))

  it.effect("stats survive a torn or foreign file", () =>
    Effect.gen(function*() {
      const dir = Temp.tempDir("stats")
      fs.writeFileSync(path.join(dir, "cli-stats.json"), "{\"hits\": 3, \"mis")
      expect(yield* CliStats.read(dir)).toEqual({ hits: 0, misses: 0 })
      yield* CliStats.add(dir, { hits: 2, misses: 1 })
      yield* CliStats.add(dir, { hits: 1, misses: 0 })
      expect(yield* CliStats.read(dir)).toEqual({ hits: 3, misses: 1 })
      expect(fs.readdirSync(dir)).toEqual(["cli-stats.json"])
    }))
})
