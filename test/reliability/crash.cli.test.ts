/**
 * Crash safety with real processes, first half: SIGKILLs of `rallycache
 * export` at random moments, in a row, in one cache folder (the body and
 * what it holds: `crash.ts`; the second half, in a folder and with a seed
 * of its own, is `crash.cli.second.test.ts`, so that the two run side by
 * side). Also: a pid record torn by a kill is reaped at the next start.
 */
import { describe, expect, it } from "@effect/vitest"
import { NodeFileSystem } from "@effect/platform-node"
import { FfmpegExporter } from "@rallycache/node"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { killsInARow } from "./crash.js"
import { seed, size, tempDir } from "./support.js"

describe("crash safety (SIGKILL of the CLI)", () => {
  it.live("SIGKILL at random moments, in a row, in one cache folder: nothing invalid, no temp file, no orphan, the set completes", () =>
    killsInARow({ name: "crash.cli", kills: size(6, 50), seedValue: seed, firstSet: 0 }), { timeout: size(600_000, 1_800_000) })

  it.live("a pid record torn by a kill (empty file) is reaped at the next start, not 60 s later", () =>
    Effect.gen(function*() {
      const runDir = NodePath.join(tempDir("torn"), "run")
      NodeFs.mkdirSync(runDir)
      // A pid that surely runs no ffmpeg any more: a finished child's.
      const dead = spawnSync("true").pid
      NodeFs.writeFileSync(NodePath.join(runDir, `${dead}.json`), "")
      NodeFs.writeFileSync(NodePath.join(runDir, `${process.pid}.json`), "{\"pid\":")
      yield* FfmpegExporter.reapStale(runDir).pipe(Effect.provide(NodeFileSystem.layer))
      expect(NodeFs.readdirSync(runDir)).toEqual([])
    }))
})
