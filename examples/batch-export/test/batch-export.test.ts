import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { execFile } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { exampleBundle } from "../../../test/support/bundle.js"
import * as Temp from "../../../test/support/temp.js"

/** `src/main.ts`, bundled once for the run: the tests that do not type a README command start it. */
const main = exampleBundle(NodePath.resolve(__dirname, ".."), "main")

const repoRoot = NodePath.resolve(__dirname, "../../..")

/** Environment of a run: no inherited RALLYCACHE_* or INIT_CWD. */
const cleanEnv = (env: Record<string, string>) => {
  const out: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("RALLYCACHE_") && key !== "INIT_CWD") out[key] = value
  }
  return { ...out, ...env }
}

const exec = (file: string, args: ReadonlyArray<string>, env: Record<string, string>, cwd?: string) =>
  Effect.async<{ code: number; stdout: string; stderr: string }>((resume) => {
    execFile(file, args, { env: cleanEnv(env), cwd }, (error, stdout, stderr) => {
      resume(Effect.succeed({ code: error === null ? 0 : Number(error.code ?? 1), stdout, stderr }))
    })
  })

const run = (args: ReadonlyArray<string>, env: Record<string, string>) => exec(process.execPath, [main, ...args], env)

/**
 * As the root README shows it, typed in `cwd`: `pnpm --dir
 * examples/batch-export start ...`, which passes the exit code through
 * (`pnpm --filter` is a recursive run: any failure becomes exit code 1).
 */
const viaPnpm = (args: ReadonlyArray<string>, env: Record<string, string>, cwd: string) =>
  exec("pnpm", ["--dir", NodePath.join(repoRoot, "examples", "batch-export"), "start", ...args], env, cwd)

/** The `--filter` form: the same paths and output, exit code 1 on any failure. */
const viaFilter = (args: ReadonlyArray<string>, env: Record<string, string>, cwd: string) =>
  exec("pnpm", ["--dir", repoRoot, "--filter", "batch-export", "start", ...args], env, cwd)

/** stderr without pnpm's own lines (its warnings and its "ELIFECYCLE" report). */
const ownLines = (stderr: string) =>
  stderr.split("\n").filter((line) => line.trim() !== "" && !/\[WARN\]|ELIFECYCLE|ERR_PNPM|pnpm recursive run|^\$ |^\s*$/.test(line))

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

  it.live("as the root README shows it: through pnpm, paths from where it was typed, the rallies file format", () =>
    Effect.gen(function*() {
      const video = yield* sample
      const dir = Temp.tempDir("batch-pnpm")
      NodeFs.copyFileSync(video, NodePath.join(dir, "match.mp4"))
      // The root README's rallies file: an object, times in seconds or m:ss.
      NodeFs.writeFileSync(
        NodePath.join(dir, "rallies.json"),
        JSON.stringify({ videoId: "final", rallies: [{ start: 0.5, end: "0:03" }, { start: "0:04", end: 7 }] })
      )
      const env = { RALLYCACHE_CACHE_DIR: NodePath.join(dir, "cache") }
      const result = yield* viaPnpm(["match.mp4", "rallies.json"], env, dir)
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout).toMatch(/^\s*0\s+\S+ s\s+\S+\/cache\/clips\/\S+$/m)
      expect(result.stdout).toMatch(/^\s*1\s+\S+ s\s+\S+\/cache\/clips\/\S+$/m)
      expect(result.stderr).toContain("2 exported")
      const filtered = yield* viaFilter(["match.mp4", "rallies.json"], env, dir)
      expect(filtered.code, filtered.stderr).toBe(0)
      expect(filtered.stderr).toContain("0 exported")
    }))

  it.live("a missing rallies file has its own message, and bad input exits 2 through pnpm too", () =>
    Effect.gen(function*() {
      const video = yield* sample
      const dir = Temp.tempDir("batch-missing")
      NodeFs.copyFileSync(video, NodePath.join(dir, "match.mp4"))
      NodeFs.writeFileSync(NodePath.join(dir, "bad.json"), JSON.stringify({ rallies: [{ start: "1:2x", end: 3 }] }))
      const env = { RALLYCACHE_CACHE_DIR: NodePath.join(dir, "cache") }

      const missing = yield* viaPnpm(["match.mp4", "nope.json"], env, dir)
      expect(missing.code, missing.stderr).toBe(2)
      expect(ownLines(missing.stderr)).toEqual([`rallies file ${NodePath.join(dir, "nope.json")}: not found (check the path)`])

      const bad = yield* viaPnpm(["match.mp4", "bad.json"], env, dir)
      expect(bad.code, bad.stderr).toBe(2)
      expect(ownLines(bad.stderr)).toEqual([`rallies[0].start: "1:2x" is not a time (use seconds or m:ss)`])

      const filtered = yield* viaFilter(["match.mp4", "nope.json"], env, dir)
      expect(filtered.code).not.toBe(0)
      expect(ownLines(filtered.stderr)[0]).toMatch(/: not found \(check the path\)$/)

      const usage = yield* run([], env)
      expect(usage.code).toBe(2)
      expect(usage.stderr).toMatch(/usage: pnpm --filter batch-export start <video.mp4> <rallies.json>/)
    }))

  it.live("the README's command and rallies file, typed as shown in the folder of the files", () =>
    Effect.gen(function*() {
      const readme = NodeFs.readFileSync(NodePath.resolve(__dirname, "../README.md"), "utf8")
      const command = /```sh\n([^\n]+)\n```/.exec(readme)?.[1]
      const ralliesJson = /```json\n([\s\S]+?)```/.exec(readme)?.[1]
      expect(command).toMatch(/^pnpm --dir <repo>\/examples\/batch-export start match\.mp4 rallies\.json$/)
      const dir = Temp.tempDir("batch-readme")
      NodeFs.copyFileSync(yield* sample, NodePath.join(dir, "match.mp4"))
      NodeFs.writeFileSync(NodePath.join(dir, "rallies.json"), ralliesJson!)
      const env = { RALLYCACHE_CACHE_DIR: NodePath.join(dir, "cache") }
      const typed = command!.replace("<repo>", repoRoot)
      const first = yield* exec("sh", ["-c", typed], env, dir)
      expect(first.code, first.stderr).toBe(0)
      const lines = first.stdout.trim().split("\n").filter((line) => !line.startsWith("$ ") && line.trim() !== "")
      expect(lines).toHaveLength(2)
      for (const line of lines) expect(line).toMatch(/^\s*\d+ {2}\d+\.\d\d-\d+\.\d\d s {2}\/\S+\/clips\/[0-9a-f]+\.mp4$/)
      // "A second run finds every clip in the cache and prints the same lines."
      const second = yield* exec("sh", ["-c", typed], env, dir)
      expect(second.code).toBe(0)
      expect(second.stdout).toBe(first.stdout)
      expect(second.stderr).toContain("0 exported")
    }))
})
