/**
 * A cache folder that cannot be written (a read-only mount, another user's
 * cache) can still be inspected: `cache stats` and `doctor` read it without
 * taking a lock or repairing anything, and change nothing in it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { errorLines, parseJson, runCli, sampleVideo, tempDir, writeJson } from "./support.js"

/** Every path under `dir` with its mode, size and modification time. */
const state = (dir: string): Array<string> => {
  const out: Array<string> = []
  const walk = (abs: string) => {
    for (const name of fs.readdirSync(abs).sort()) {
      const full = path.join(abs, name)
      const stat = fs.statSync(full)
      out.push(`${path.relative(dir, full)} ${stat.mode.toString(8)} ${stat.size} ${stat.mtimeMs}`)
      if (stat.isDirectory()) walk(full)
    }
  }
  walk(dir)
  return out
}

const chmodTree = (dir: string, write: boolean) => {
  const walk = (abs: string) => {
    const stat = fs.statSync(abs)
    if (stat.isDirectory()) for (const name of fs.readdirSync(abs)) walk(path.join(abs, name))
    fs.chmodSync(abs, write ? (stat.isDirectory() ? 0o755 : 0o644) : (stat.isDirectory() ? 0o555 : 0o444))
  }
  walk(dir)
}

// root writes through any mode bits: the read-only commands then run as "nobody", who cannot.
const asReader = process.getuid?.() === 0 ? { user: { uid: 65534, gid: 65534 } } : {}

describe("a read-only cache folder", () => {
  it.live("cache stats and doctor work on it and change nothing; cache gc fails with one line", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo()
      const work = tempDir("cli-readonly")
      const cacheDir = path.join(work, "cache")
      const ralliesFile = writeJson(work, "rallies.json", { videoId: "ro", rallies: [{ start: 0.5, end: 2 }] })
      const exported = yield* runCli(["export", video, "--rallies", ralliesFile, "--json", "--cache-dir", cacheDir])
      expect(exported.code, exported.stderr).toBe(0)
      // What a killed writer leaves behind (a lock file): start-up would repair it, a reader must not.
      fs.writeFileSync(path.join(cacheDir, "locks", `${"0".repeat(32)}.lock`), "{}")
      fs.chmodSync(work, 0o755)
      chmodTree(cacheDir, false)
      const before = state(cacheDir)
      try {
        const stats = yield* runCli(["cache", "stats", "--json", "--cache-dir", cacheDir], asReader)
        expect(stats.code, stats.stderr).toBe(0)
        expect(parseJson(stats)).toMatchObject({ entries: 1, videos: 1, cacheDir })

        const doctor = yield* runCli(["doctor", "--json", "--cache-dir", cacheDir], asReader)
        expect(doctor.code, doctor.stderr).toBe(0)
        expect(parseJson(doctor)["cache"]).toMatchObject({ entries: 1 })

        // A command that must write says why it cannot, on one line.
        const gc = yield* runCli(["cache", "gc", "--cache-dir", cacheDir], asReader)
        expect(gc.code).not.toBe(0)
        expect(errorLines(gc), gc.stderr).toHaveLength(1)
        expect(gc.stderr).toMatch(/permission|EACCES|read-only/i)

        expect(state(cacheDir)).toEqual(before)
      } finally {
        chmodTree(cacheDir, true)
        fs.rmSync(work, { recursive: true, force: true })
      }
    }))
})
