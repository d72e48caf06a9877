/**
 * The CLI's contract, checked from outside: real processes, a real cache
 * folder, real ffmpeg on a small generated video.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { ffprobePath, parseJson, probeDuration, runCli, sampleVideo, tempDir, writeJson } from "./support.js"

const rallies = {
  videoId: "cli-test",
  rallies: [{ start: 0.5, end: 2 }, { start: "0:02.5", end: "0:04" }, { start: 4.2, end: "0:05.8" }]
}

const clipKeys = ["index", "start", "end", "clipStart", "clipEnd", "firstFrame", "leadIn", "path", "bytes", "cached", "exportMs"]

interface ClipJson {
  readonly index: number
  readonly start: number
  readonly end: number
  readonly clipStart: number
  readonly clipEnd: number
  readonly firstFrame?: number
  readonly leadIn?: number
  readonly path: string
  readonly bytes: number
  readonly cached: boolean
  readonly exportMs: number
}

describe("rallycache export / get / cache", () => {
  it.live("export --json, a second export fully cached, --out, get, stats, verify", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo()
      const work = tempDir("cli-export")
      const cacheDir = path.join(work, "cache")
      const ralliesFile = writeJson(work, "rallies.json", rallies)

      // First export: every clip is exported.
      const first = yield* runCli(["export", video, "--rallies", ralliesFile, "--json", "--cache-dir", cacheDir])
      expect(first.code, first.stderr).toBe(0)
      const json = parseJson(first)
      expect(Object.keys(json).sort()).toEqual(["clips", "metrics", "mode", "videoId"])
      expect(json["videoId"]).toBe("cli-test")
      // The default mode is exact.
      expect(json["mode"]).toBe("exact")
      const clips = json["clips"] as Array<ClipJson>
      expect(clips.map((c) => c.index)).toEqual([0, 1, 2])
      for (const clip of clips) {
        expect(Object.keys(clip).sort()).toEqual([...clipKeys].sort())
        expect(clip.cached).toBe(false)
        expect(clip.bytes).toBeGreaterThan(0)
        expect(fs.statSync(clip.path).size).toBe(clip.bytes)
        expect(clip.path.startsWith(cacheDir)).toBe(true)
        // Exact mode stores from the keyframe at or before the rally (1 s GOP) and presents
        // the rally's first frame (25 fps) first: the lead-in is what lies between.
        expect(clip.clipStart).toBeLessThanOrEqual(clip.start + 0.05)
        expect(clip.clipStart).toBeGreaterThan(clip.start - 1.1)
        expect(clip.firstFrame).toBeGreaterThanOrEqual(clip.start - 0.001)
        expect(clip.firstFrame).toBeLessThan(clip.start + 0.04)
        expect(clip.leadIn).toBeCloseTo(clip.firstFrame! - clip.clipStart, 3)
      }
      expect(clips[1]!.start).toBeCloseTo(2.5, 6)
      expect(json["metrics"]).toEqual({
        hits: 0,
        misses: 3,
        exported: 3,
        failed: 0,
        bytes: clips.reduce((sum, c) => sum + c.bytes, 0)
      })

      // Second export into --out: nothing is exported again.
      const out = path.join(work, "out")
      const second = yield* runCli([
        "export",
        video,
        "--rallies",
        ralliesFile,
        "--out",
        out,
        "--json",
        "--cache-dir",
        cacheDir
      ])
      expect(second.code, second.stderr).toBe(0)
      const secondJson = parseJson(second)
      const secondClips = secondJson["clips"] as Array<ClipJson>
      expect(secondClips.every((c) => c.cached)).toBe(true)
      expect(secondClips.every((c) => c.exportMs === 0)).toBe(true)
      expect(secondJson["metrics"]).toMatchObject({ hits: 3, misses: 0, exported: 0, failed: 0 })

      // --out holds rally-000.mp4... playable, and no temp file.
      expect(fs.readdirSync(out).sort()).toEqual(["rally-000.mp4", "rally-001.mp4", "rally-002.mp4"])
      const ffprobe = yield* ffprobePath
      secondClips.forEach((clip, i) => {
        expect(clip.path).toBe(path.join(out, `rally-00${i}.mp4`))
        const duration = probeDuration(ffprobe, clip.path)
        expect(duration).toBeGreaterThan(clip.end - clip.start - 0.1)
        expect(duration).toBeLessThan(clip.clipEnd - clip.clipStart + 0.6)
      })

      // --only picks rallies by index.
      const only = yield* runCli(["export", video, "--rallies", ralliesFile, "--only", "0,2", "--json", "--cache-dir", cacheDir])
      expect(only.code, only.stderr).toBe(0)
      expect((parseJson(only)["clips"] as Array<ClipJson>).map((c) => c.index)).toEqual([0, 2])

      // get: {"path","cached","waitMs"}.
      const get = yield* runCli(["get", video, "--rallies", ralliesFile, "--index", "1", "--json", "--cache-dir", cacheDir])
      expect(get.code, get.stderr).toBe(0)
      const getJson = parseJson(get)
      expect(Object.keys(getJson).sort()).toEqual(["cached", "path", "waitMs"])
      expect(getJson["cached"]).toBe(true)
      expect(getJson["path"]).toBe(clips[1]!.path)
      expect(typeof getJson["waitMs"]).toBe("number")
      const plainGet = yield* runCli(["get", video, "--rallies", ralliesFile, "--index", "1", "--cache-dir", cacheDir])
      expect(plainGet.stdout.trim()).toBe(clips[1]!.path)

      // cache stats.
      const stats = yield* runCli(["cache", "stats", "--json", "--cache-dir", cacheDir])
      expect(stats.code, stats.stderr).toBe(0)
      const statsJson = parseJson(stats)
      for (const key of ["entries", "bytes", "maxBytes", "maxAgeDays", "videos", "hitRate", "oldest", "newest"]) {
        expect(statsJson).toHaveProperty(key)
      }
      expect(statsJson["entries"]).toBe(3)
      expect(statsJson["bytes"]).toBe(clips.reduce((sum, c) => sum + c.bytes, 0))
      expect(statsJson["videos"]).toBe(1)
      expect(statsJson["maxAgeDays"]).toBe(7)
      expect(statsJson["maxBytes"]).toBe(500 * 1024 * 1024)
      // 3 misses, then 3 + 2 + 1 + 1 hits.
      expect(statsJson["hitRate"]).toBeCloseTo(7 / 10, 3)
      expect(Date.parse(String(statsJson["oldest"]))).toBeLessThanOrEqual(Date.parse(String(statsJson["newest"])))

      // A clip cut to half its size is found and removed by verify...
      const victim = clips[2]!
      fs.truncateSync(victim.path, Math.floor(victim.bytes / 2))
      const verify = yield* runCli(["cache", "verify", "--json", "--cache-dir", cacheDir])
      expect(verify.code, verify.stderr).toBe(0)
      const verifyJson = parseJson(verify)
      expect(verifyJson["checked"]).toBe(3)
      expect(verifyJson["valid"]).toBe(2)
      const removed = verifyJson["removed"] as Array<{ key: string; reason: string }>
      expect(removed.length).toBe(1)
      expect(path.basename(victim.path)).toContain(removed[0]!.key)
      expect(removed[0]!.reason).toMatch(/size/)
      expect(fs.existsSync(victim.path)).toBe(false)
      // ...the hard link in --out is untouched...
      expect(probeDuration(ffprobe, path.join(out, "rally-002.mp4"))).toBeGreaterThan(1)
      // ...and the next export re-exports only that clip.
      const again = yield* runCli(["export", video, "--rallies", ralliesFile, "--json", "--cache-dir", cacheDir])
      expect(again.code, again.stderr).toBe(0)
      expect((parseJson(again)["clips"] as Array<ClipJson>).map((c) => c.cached)).toEqual([true, true, false])

      // A deep verify reads the media: every clip is valid now.
      const deep = yield* runCli(["cache", "verify", "--deep", "--json", "--cache-dir", cacheDir])
      expect(deep.code, deep.stderr).toBe(0)
      expect(parseJson(deep)).toEqual({ checked: 3, valid: 3, removed: [] })
    }))

  it.live("cache gc respects RALLYCACHE_MAX_BYTES and says why; clear empties the cache", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo()
      const work = tempDir("cli-gc")
      const cacheDir = path.join(work, "cache")
      const ralliesFile = writeJson(work, "rallies.json", rallies)
      const first = yield* runCli(["export", video, "--rallies", ralliesFile, "--json", "--cache-dir", cacheDir])
      expect(first.code, first.stderr).toBe(0)
      const clips = parseJson(first)["clips"] as Array<ClipJson>
      const total = clips.reduce((sum, c) => sum + c.bytes, 0)
      const limit = total - 1

      const gc = yield* runCli(["cache", "gc", "--json", "--cache-dir", cacheDir], {
        env: { RALLYCACHE_MAX_BYTES: String(limit) }
      })
      expect(gc.code, gc.stderr).toBe(0)
      const gcJson = parseJson(gc)
      const evicted = gcJson["evicted"] as Array<{ key: string; reason: string; bytes: number }>
      expect(evicted.length).toBeGreaterThanOrEqual(1)
      expect(evicted.every((e) => e.reason === "size")).toBe(true)
      expect(gcJson["bytes"]).toBeLessThanOrEqual(limit)
      expect(gcJson["bytes"]).toBe(total - evicted.reduce((sum, e) => sum + e.bytes, 0))

      const stats = yield* runCli(["cache", "stats", "--json", "--cache-dir", cacheDir])
      expect(parseJson(stats)["bytes"]).toBeLessThanOrEqual(limit)

      // Within the limits, gc evicts nothing.
      const idle = yield* runCli(["cache", "gc", "--json", "--cache-dir", cacheDir])
      expect((parseJson(idle)["evicted"] as Array<unknown>).length).toBe(0)

      const clear = yield* runCli(["cache", "clear", "--json", "--cache-dir", cacheDir])
      expect(clear.code, clear.stderr).toBe(0)
      expect(parseJson(clear)).toMatchObject({ entries: 0, bytes: 0 })
      expect(parseJson(yield* runCli(["cache", "stats", "--json", "--cache-dir", cacheDir]))["entries"]).toBe(0)
    }))

  it.live("watch --json reports each navigation", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo()
      const work = tempDir("cli-watch")
      const ralliesFile = writeJson(work, "rallies.json", rallies)
      const result = yield* runCli([
        "watch",
        video,
        "--rallies",
        ralliesFile,
        "--speed",
        "20",
        "--json",
        "--cache-dir",
        path.join(work, "cache")
      ])
      expect(result.code, result.stderr).toBe(0)
      const json = parseJson(result)
      expect(Object.keys(json).sort()).toEqual(["hitRate", "navigations", "p50WaitMs", "p99WaitMs"])
      const navigations = json["navigations"] as Array<{ index: number; hit: boolean; waitMs: number }>
      expect(navigations.map((n) => n.index)).toEqual([0, 1, 2])
      for (const n of navigations) expect(Object.keys(n).sort()).toEqual(["hit", "index", "waitMs"])
      // Nothing was cached before the first navigation.
      expect(navigations[0]!.hit).toBe(false)
      expect(json["hitRate"]).toBeCloseTo(navigations.filter((n) => n.hit).length / 3, 3)
      expect(json["p99WaitMs"]).toBeGreaterThanOrEqual(json["p50WaitMs"] as number)
    }))
})
