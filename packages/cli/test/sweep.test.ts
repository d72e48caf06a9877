import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { spawn, spawnSync } from "node:child_process"
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

  it.live("a zombie writer counts as gone", () =>
    Effect.gen(function*() {
      const dir = Temp.tempDir("sweep-zombie")
      // `sleep 0` exits at once and its parent (exec'd into `sleep 30`) never reaps it: a zombie.
      const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] })
      try {
        const zombie = yield* Effect.async<number>((resume) => {
          parent.stdout.setEncoding("utf8").once("data", (text: string) => resume(Effect.succeed(Number(text.trim()))))
        })
        // Wait for the child to have exited (state Z), not for a fixed time.
        const state = () => {
          const stat = fs.readFileSync(`/proc/${zombie}/stat`, "utf8")
          return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
        }
        yield* Effect.sync(state).pipe(
          Effect.repeat({ schedule: Schedule.spaced("5 millis"), until: (s) => s === "Z" }),
          Effect.timeout("10 seconds")
        )
        fs.writeFileSync(path.join(dir, `cli-stats.json.${zombie}.tmp`), "x")
        expect(yield* CliStats.sweep(dir)).toBe(1)
        expect(fs.readdirSync(dir)).toEqual([])
      } finally {
        parent.kill("SIGKILL")
        fs.rmSync(dir, { recursive: true, force: true })
      }
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
