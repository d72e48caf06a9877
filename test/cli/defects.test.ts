/**
 * Defects found by using the CLI from outside (issues 12 and 13), each
 * checked with the real process.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { makeWebm } from "../support/webm.js"
import { errorLines, ffmpegPath, parseJson, runCli, sampleVideo, tempDir, writeJson } from "./support.js"

const work = tempDir

const expectOneLineExit2 = (result: { code: number | null; stdout: string; stderr: string }, pattern: RegExp) => {
  expect(result.code, result.stderr).toBe(2)
  expect(result.stdout).toBe("")
  const lines = errorLines(result)
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
}

describe("rallycache defects", () => {
  it.live("--cache-dir \"\" is bad input and writes nothing in the current folder", () =>
    Effect.gen(function*() {
      const cwd = work("cli-empty-dir")
      for (const args of [["cache", "stats"], ["cache", "gc", "--json"], ["cache", "clear"]]) {
        expectOneLineExit2(yield* runCli([...args, "--cache-dir", ""], { cwd }), /^--cache-dir is empty/)
      }
      const video = yield* sampleVideo()
      const rallies = writeJson(cwd, "rallies.json", { rallies: [{ start: 0.5, end: 2 }] })
      expectOneLineExit2(
        yield* runCli(["export", video, "--rallies", rallies, "--cache-dir", ""], { cwd }),
        /^--cache-dir is empty/
      )
      expect(fs.readdirSync(cwd)).toEqual(["rallies.json"])
    }))

  it.live("cache clear --video \"\" is bad input and removes nothing", () =>
    Effect.gen(function*() {
      const dir = work("cli-clear-empty")
      const cacheDir = path.join(dir, "cache")
      const video = yield* sampleVideo()
      const rallies = writeJson(dir, "rallies.json", { rallies: [{ start: 0.5, end: 2 }] })
      expect((yield* runCli(["export", video, "--rallies", rallies, "--cache-dir", cacheDir])).code).toBe(0)
      expectOneLineExit2(yield* runCli(["cache", "clear", "--video", "", "--cache-dir", cacheDir]), /^--video is empty/)
      expect(parseJson(yield* runCli(["cache", "stats", "--json", "--cache-dir", cacheDir]))["entries"]).toBe(1)
    }))

  it.live("export --out twice into the same folder leaves no temporary file", () =>
    Effect.gen(function*() {
      const dir = work("cli-out-twice")
      const cacheDir = path.join(dir, "cache")
      const out = path.join(dir, "out")
      const video = yield* sampleVideo()
      const rallies = writeJson(dir, "rallies.json", { rallies: [{ start: 0.5, end: 2 }, { start: 2.5, end: 4 }] })
      const args = ["export", video, "--rallies", rallies, "--out", out, "--json", "--cache-dir", cacheDir]
      const first = yield* runCli(args)
      expect(first.code, first.stderr).toBe(0)
      const second = yield* runCli(args)
      expect(second.code, second.stderr).toBe(0)
      // readdirSync lists hidden files too: the `.rally-000.mp4.<pid>.<rand>.part` names must be gone.
      expect(fs.readdirSync(out).sort()).toEqual(["rally-000.mp4", "rally-001.mp4"])
      const clips = parseJson(second)["clips"] as Array<{ path: string; bytes: number }>
      for (const clip of clips) expect(fs.statSync(clip.path).size).toBe(clip.bytes)
    }))

  it.live("export --out keeps the clip's container in the name: a webm clip is rally-000.webm", () =>
    Effect.gen(function*() {
      const dir = work("cli-out-webm")
      const source = path.join(dir, "match.webm")
      // VP8 + Vorbis do not fit mp4: a copy cut goes into webm (exact mode would re-encode to mp4).
      makeWebm(yield* ffmpegPath, source, 4)
      const out = path.join(dir, "out")
      const rallies = writeJson(dir, "rallies.json", { rallies: [{ start: 1, end: 3 }] })
      const result = yield* runCli([
        "export", source, "--rallies", rallies, "--out", out, "--json", "--mode", "copy", "--cache-dir", path.join(dir, "cache")
      ])
      expect(result.code, result.stderr).toBe(0)
      expect(fs.readdirSync(out)).toEqual(["rally-000.webm"])
      const clips = parseJson(result)["clips"] as Array<{ path: string }>
      expect(clips.map((clip) => path.basename(clip.path))).toEqual(["rally-000.webm"])
      // The bytes are webm's (EBML magic), not an mp4 under a webm name.
      expect(fs.readFileSync(path.join(out, "rally-000.webm")).subarray(0, 4).toString("hex")).toBe("1a45dfa3")
    }))

  it.live("--help writes no colour codes when stdout is not a terminal", () =>
    Effect.gen(function*() {
      for (const args of [["--help"], ["export", "--help"], ["cache", "stats", "--help"]]) {
        const result = yield* runCli(args)
        expect(result.code, result.stderr).toBe(0)
        expect(result.stdout).toMatch(/rallycache/)
        expect(result.stdout).not.toMatch(/\u001b\[/)
      }
    }))

  it.live("counts are singular for one: 1 navigation, 1 miss", () =>
    Effect.gen(function*() {
      const dir = work("cli-plural")
      const video = yield* sampleVideo()
      const rallies = writeJson(dir, "rallies.json", { rallies: [{ start: 0.5, end: 1 }] })
      const result = yield* runCli([
        "watch",
        video,
        "--rallies",
        rallies,
        "--speed",
        "100",
        "--cache-dir",
        path.join(dir, "cache")
      ])
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout + result.stderr).toMatch(/1 navigation: 0 hits, 1 miss,/)
      expect(result.stdout + result.stderr).not.toMatch(/\b1 (misses|navigations|hits)\b/)
    }))

  it.live("cache verify --deep reports a clip whose media is broken (same size) through the store's checks", () =>
    Effect.gen(function*() {
      const dir = work("cli-verify-deep")
      const cacheDir = path.join(dir, "cache")
      const video = yield* sampleVideo()
      const rallies = writeJson(dir, "rallies.json", { rallies: [{ start: 0.5, end: 2 }, { start: 2.5, end: 4 }] })
      const first = yield* runCli(["export", video, "--rallies", rallies, "--json", "--cache-dir", cacheDir])
      expect(first.code, first.stderr).toBe(0)
      const clips = parseJson(first)["clips"] as Array<{ path: string; bytes: number }>
      const victim = clips[1]!
      fs.writeFileSync(victim.path, Buffer.alloc(victim.bytes, 0x41))
      const quick = yield* runCli(["cache", "verify", "--json", "--cache-dir", cacheDir])
      expect(parseJson(quick)).toEqual({ checked: 2, valid: 2, removed: [] })
      const deep = yield* runCli(["cache", "verify", "--deep", "--cache-dir", cacheDir])
      expect(deep.code, deep.stderr).toBe(0)
      expect(deep.stdout).toMatch(/^removed [0-9a-f]{32} \(.+ rally 1\): media: /m)
      expect(deep.stdout).toMatch(/checked 2 clips \(deep\): 1 valid, 1 removed/)
      expect(fs.existsSync(victim.path)).toBe(false)
    }))

  it.live("a rally shorter than one frame of the source is bad input: exit 2, one line, nothing exported", () =>
    Effect.gen(function*() {
      const dir = work("cli-short-rally")
      const cacheDir = path.join(dir, "cache")
      const video = yield* sampleVideo()
      // 10,000 rallies of 0.5 ms each (the sample has 25 or 30 frames a second).
      const tiny = Array.from({ length: 10_000 }, (_, i) => ({ start: i * 0.0005, end: i * 0.0005 + 0.0005 }))
      const rallies = writeJson(dir, "tiny.json", { rallies: tiny })
      const result = yield* runCli(["export", video, "--rallies", rallies, "--json", "--cache-dir", cacheDir])
      expectOneLineExit2(result, /^rally 0: it lasts 0\.0005 s, shorter than one frame of the video \(0\.0\d+ s at \d+ fps\)/)
      const stats = yield* runCli(["cache", "stats", "--json", "--cache-dir", cacheDir])
      expect(parseJson(stats)["entries"]).toBe(0)
      // One frame or more is a rally.
      const oneFrame = writeJson(dir, "frame.json", { rallies: [{ start: 1, end: 1.05 }] })
      const ok = yield* runCli(["export", video, "--rallies", oneFrame, "--json", "--cache-dir", cacheDir])
      expect(ok.code, ok.stderr).toBe(0)
    }))
})
