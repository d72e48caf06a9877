/**
 * Bad usage and bad input exit with code 2 and one line on stderr (no
 * stack trace, nothing on stdout), before any export starts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { errorLines, ffmpegPath, runCli, sampleVideo, tempDir, writeJson } from "./support.js"

const expectUsageError = (
  result: { readonly code: number | null; readonly stdout: string; readonly stderr: string },
  pattern: RegExp
) => {
  expect(result.code, result.stderr).toBe(2)
  expect(result.stdout).toBe("")
  const lines = errorLines(result)
  expect(lines, result.stderr).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
  expect(result.stderr).not.toMatch(/\bat .*\.(ts|js):\d+/)
}

describe("rallycache bad input", () => {
  it.live("exit 2 with one line for each kind of bad input", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo()
      const work = tempDir("cli-bad")
      const cacheDir = path.join(work, "cache")
      const good = writeJson(work, "good.json", { rallies: [{ start: 0.5, end: 2 }, { start: 2.5, end: 4 }] })
      const run = (args: ReadonlyArray<string>) => runCli([...args, "--cache-dir", cacheDir])

      // A missing video, a missing rallies file.
      expectUsageError(
        yield* run(["export", path.join(work, "missing.mp4"), "--rallies", good, "--json"]),
        /source video not found: .*missing\.mp4/
      )
      expectUsageError(
        yield* run(["export", video, "--rallies", path.join(work, "missing.json"), "--json"]),
        /^rallies file .*missing\.json: not found \(check the --rallies path\)$/
      )

      // Malformed rallies: the message names the field and position.
      const malformed = writeJson(work, "malformed.json", {
        rallies: [{ start: 0, end: 1 }, { start: 2, end: "1:2x" }]
      })
      expectUsageError(
        yield* run(["export", video, "--rallies", malformed, "--json"]),
        /^rallies\[1\]\.end: "1:2x" is not a time \(use seconds or m:ss\)$/
      )
      const reversed = writeJson(work, "reversed.json", { rallies: [{ start: 3, end: 1 }] })
      expectUsageError(yield* run(["export", video, "--rallies", reversed, "--json"]), /^rallies\[0\]\.end: 1 is not after start 3/)
      const syntax = writeJson(work, "syntax.json", `{"rallies": [\n{"start": 1, "end": 2},,\n]}`)
      expectUsageError(yield* run(["export", video, "--rallies", syntax]), /not valid JSON at line 2, column 24/)
      const bytes = path.join(work, "bytes.json")
      fs.writeFileSync(bytes, Buffer.from([0x7b, 0xc3, 0x28, 0x7d]))
      expectUsageError(yield* run(["export", video, "--rallies", bytes]), /not valid UTF-8/)

      // A rally past the end of the 6 s video is caught against its duration.
      const late = writeJson(work, "late.json", { rallies: [{ start: 1, end: 2 }, { start: 5, end: 60 }] })
      expectUsageError(yield* run(["export", video, "--rallies", late, "--json"]), /rally 1: .*past the end/)

      // Usage: an unknown flag, a bad --only, an --index out of range, a bad value, no command.
      expectUsageError(yield* run(["export", video, "--rallies", good, "--bogus"]), /--bogus/)
      expectUsageError(yield* run(["export", video, "--rallies", good, "--only", "5"]), /^--only "5": rally 5 does not exist/)
      expectUsageError(yield* run(["export", video, "--rallies", good, "--only", "1-x"]), /^--only/)
      expectUsageError(yield* run(["get", video, "--rallies", good, "--index", "2"]), /^--index 2: the rallies file has 2 rallies/)
      expectUsageError(yield* run(["export", video, "--rallies", good, "--mode", "fast"]), /copy, exact, accurate/)
      expectUsageError(yield* run(["export", video, "--rallies", good, "--concurrency", "0"]), /--concurrency/)
      expectUsageError(yield* run(["watch", video, "--rallies", good, "--speed", "-1"]), /--speed/)
      expectUsageError(yield* run(["export", video]), /--rallies/)
      expectUsageError(yield* runCli([]), /missing command/)
      expectUsageError(yield* runCli(["cache"]), /missing subcommand/)
      expectUsageError(yield* runCli(["frobnicate"]), /frobnicate|command/)

      // Nothing was exported by any of these.
      const stats = yield* runCli(["cache", "stats", "--json", "--cache-dir", cacheDir])
      expect(JSON.parse(stats.stdout)["entries"]).toBe(0)
    }))

  it.live("an encrypted (CENC) mp4: exit 2, one line saying it is encrypted, no clip and no ffmpeg output", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo()
      const work = tempDir("cli-encrypted")
      const encrypted = path.join(work, "drm.mp4")
      const made = spawnSync(yield* ffmpegPath, [
        "-nostdin",
        "-v",
        "error",
        "-i",
        video,
        "-map",
        "0",
        "-c",
        "copy",
        "-encryption_scheme",
        "cenc-aes-ctr",
        "-encryption_key",
        "00112233445566778899aabbccddeeff",
        "-encryption_kid",
        "0123456789abcdef0123456789abcdef",
        encrypted
      ], { encoding: "utf8" })
      expect(made.status, made.stderr).toBe(0)
      const rallies = writeJson(work, "r.json", { rallies: [{ start: 1, end: 2 }] })
      const cacheDir = path.join(work, "cache")
      expectUsageError(
        yield* runCli(["export", encrypted, "--rallies", rallies, "--cache-dir", cacheDir]),
        /^cannot cut .*drm\.mp4: the video is encrypted \(DRM: cenc scheme .*\) and rallycache cannot cut encrypted video/
      )
      expect(fs.existsSync(path.join(cacheDir, "clips")) ? fs.readdirSync(path.join(cacheDir, "clips")) : []).toEqual([])
    }))

  it.live("--verbose adds the cause after the one-line message", () =>
    Effect.gen(function*() {
      const work = tempDir("cli-verbose")
      const result = yield* runCli([
        "export",
        path.join(work, "missing.mp4"),
        "--rallies",
        writeJson(work, "r.json", { rallies: [{ start: 0, end: 1 }] }),
        "--verbose",
        "--cache-dir",
        path.join(work, "cache")
      ])
      expect(result.code).toBe(2)
      expect(errorLines(result)[0]).toMatch(/source video not found/)
      expect(errorLines(result).length).toBeGreaterThan(1)
    }))
})
