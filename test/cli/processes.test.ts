/**
 * The CLI among other processes: Ctrl-C ends its ffmpeg and leaves no
 * partial file; two CLIs share one cache folder.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { launcher, parseJson, repoRoot, runCli, sampleVideo, tempDir, writeJson } from "./support.js"

const childPids = (pid: number): Array<number> => {
  const result = spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" })
  return result.stdout.split("\n").map((s) => Number(s.trim())).filter((n) => n > 0)
}

/** Running (a zombie, waiting for a parent that never reaps, does not count). */
const alive = (pid: number): boolean => {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

describe("rallycache with other processes", () => {
  it.live("SIGINT during accurate exports: exit 130, no ffmpeg left, no partial file", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo(60)
      const work = tempDir("cli-sigint")
      const cacheDir = path.join(work, "cache")
      const ralliesFile = writeJson(work, "rallies.json", {
        rallies: [{ start: 0, end: 20 }, { start: 20, end: 40 }, { start: 40, end: 59 }]
      })
      const result = yield* Effect.async<{ code: number | null; ffmpeg: Array<number>; stderr: string }>((resume) => {
        const child = spawn(process.execPath, [
          launcher,
          "export",
          video,
          "--rallies",
          ralliesFile,
          "--mode",
          "accurate",
          "--cache-dir",
          cacheDir
        ], { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] })
        let stderr = ""
        child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
        let ffmpeg: Array<number> = []
        const tmp = path.join(cacheDir, "tmp")
        const poll = setInterval(() => {
          const parts = fs.existsSync(tmp) ? fs.readdirSync(tmp).filter((f) => f.endsWith(".part")) : []
          const children = childPids(child.pid!)
          if (parts.length > 0 && children.length > 0) {
            ffmpeg = children
            clearInterval(poll)
            child.kill("SIGINT")
          }
        }, 20)
        child.on("close", (code) => {
          clearInterval(poll)
          resume(Effect.succeed({ code, ffmpeg, stderr }))
        })
      })
      // The export was caught running, then interrupted.
      expect(result.ffmpeg.length, result.stderr).toBeGreaterThan(0)
      expect(result.code, result.stderr).toBe(130)
      for (const pid of result.ffmpeg) expect(alive(pid)).toBe(false)
      expect(fs.readdirSync(path.join(cacheDir, "tmp"))).toEqual([])
      // The index is intact: what was committed is valid, and a rerun completes the set.
      const verify = yield* runCli(["cache", "verify", "--deep", "--json", "--cache-dir", cacheDir])
      expect(parseJson(verify)["removed"]).toEqual([])
    }))

  it.live("two CLIs at once on one cache folder both succeed, and each clip is stored once", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo()
      const work = tempDir("cli-two")
      const cacheDir = path.join(work, "cache")
      const ralliesFile = writeJson(work, "rallies.json", {
        rallies: [{ start: 0.5, end: 2 }, { start: 2.5, end: 4 }, { start: 4.2, end: 5.8 }]
      })
      const args = ["export", video, "--rallies", ralliesFile, "--mode", "accurate", "--json", "--cache-dir", cacheDir]
      const [a, b] = yield* Effect.all([runCli(args), runCli(args)], { concurrency: 2 })
      expect(a.code, a.stderr).toBe(0)
      expect(b.code, b.stderr).toBe(0)
      const pathsA = (parseJson(a)["clips"] as Array<{ path: string }>).map((c) => c.path)
      const pathsB = (parseJson(b)["clips"] as Array<{ path: string }>).map((c) => c.path)
      expect(pathsA).toEqual(pathsB)
      const stats = parseJson(yield* runCli(["cache", "stats", "--json", "--cache-dir", cacheDir]))
      expect(stats["entries"]).toBe(3)
      const verify = parseJson(yield* runCli(["cache", "verify", "--deep", "--json", "--cache-dir", cacheDir]))
      expect(verify).toEqual({ checked: 3, valid: 3, removed: [] })
    }))
})
