import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"

const tsx = NodePath.resolve(__dirname, "../node_modules/.bin/tsx")
const main = NodePath.resolve(__dirname, "../src/main.ts")

const run = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    execFile(tsx, [main, ...args], { env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }))
    })
  })

const sample = SampleVideo.cached({
  duration: 12,
  width: 320,
  height: 240,
  gop: 1,
  dir: NodePath.join(NodeOs.tmpdir(), "rallycache-fixtures")
}).pipe(Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))))

describe("examples/batch-export", () => {
  it.live("exports every rally, then serves them all from the cache", () =>
    Effect.gen(function*() {
      const video = yield* sample
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "batch-export-"))
      const rallies = NodePath.join(dir, "rallies.json")
      NodeFs.writeFileSync(rallies, JSON.stringify([{ start: 0.5, end: 3 }, { start: 4, end: 7 }, { start: 8, end: 11 }]))
      const env = { RALLYCACHE_CACHE_DIR: NodePath.join(dir, "cache") }

      const first = yield* run([video, rallies], env)
      expect(first.code).toBe(0)
      const lines = first.stdout.trim().split("\n")
      expect(lines).toHaveLength(3)
      for (const line of lines) {
        const path = line.trim().split(/\s+/).at(-1)!
        expect(path.startsWith(NodePath.join(dir, "cache", "clips"))).toBe(true)
        expect(NodeFs.statSync(path).size).toBeGreaterThan(0)
      }
      expect(first.stderr).toContain("3 exported")

      const second = yield* run([video, rallies], env)
      expect(second.code).toBe(0)
      expect(second.stdout).toBe(first.stdout)
      expect(second.stderr).toContain("0 exported")
    }))

  it.live("reports a missing source in one line with exit code 2", () =>
    Effect.gen(function*() {
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "batch-export-"))
      const rallies = NodePath.join(dir, "rallies.json")
      NodeFs.writeFileSync(rallies, JSON.stringify([{ start: 0, end: 3 }]))
      const result = yield* run([NodePath.join(dir, "missing.mp4"), rallies], { RALLYCACHE_CACHE_DIR: NodePath.join(dir, "cache") })
      expect(result.code).toBe(2)
      expect(result.stderr.trim().split("\n")).toHaveLength(1)
      expect(result.stderr).toContain("source video not found")
    }))
})
