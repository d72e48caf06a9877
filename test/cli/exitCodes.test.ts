/**
 * Exit code 1 through the real CLI: an export that still fails after its
 * retries, and a full disk (reported in one line, not retried). ffmpeg is
 * replaced through FFMPEG_PATH by a script that fails the way the real one
 * does; ffprobe is the real one.
 */
import { describe, expect, it } from "@effect/vitest"
import { FfmpegResolver } from "@rallycache/node"
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { errorLines, runCli, sampleVideo, tempDir, writeJson } from "./support.js"

const realFfprobe = Effect.map(FfmpegResolver.Ffmpeg, (f) => f.ffprobe.path).pipe(
  Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))),
  Effect.orDie
)

/** A stand-in ffmpeg: answers `-version`, appends a line to `count` per run, then runs `body`. */
const fakeFfmpeg = (dir: string, body: string) => {
  const file = path.join(dir, "ffmpeg")
  const count = path.join(dir, "runs")
  fs.writeFileSync(
    file,
    `#!/bin/sh\nfor a; do [ "$a" = "-version" ] && { echo "ffmpeg version 0.0-fake"; exit 0; }; done\n` +
      `echo run >> "${count}"\n${body}\n`,
    { mode: 0o755 }
  )
  return { file, runs: () => (fs.existsSync(count) ? fs.readFileSync(count, "utf8").split("\n").filter(Boolean).length : 0) }
}

const exportOnce = (bin: string, ffprobe: string, work: string) =>
  Effect.gen(function*() {
    const video = yield* sampleVideo()
    const rallies = writeJson(work, "rallies.json", { videoId: "exit-codes", rallies: [{ start: 0.5, end: 2 }] })
    // Accurate mode runs ffmpeg on every source (copy cuts of an mp4 are written in process).
    const args = ["export", video, "--rallies", rallies, "--mode", "accurate", "--cache-dir", path.join(work, "cache")]
    return yield* runCli(args, {
      env: { FFMPEG_PATH: bin, FFPROBE_PATH: ffprobe }
    })
  })

describe("rallycache exit code 1", () => {
  it.live("an export that fails every attempt (ffmpeg killed) exits 1 after maxRetries retries", () =>
    Effect.gen(function*() {
      const work = tempDir("cli-exit1")
      const fake = fakeFfmpeg(work, "kill -KILL $$")
      const result = yield* exportOnce(fake.file, yield* realFfprobe, work)
      expect(result.code, result.stderr).toBe(1)
      // Progress lines, then the summary: the reason, on the last line.
      expect(errorLines(result).at(-1)).toMatch(/^1 of 1 rallies failed; rally 0: export failed \(signal\).*SIGKILL/)
      // The first attempt and the 3 retries of the default maxRetries.
      expect(fake.runs()).toBe(4)
      expect(result.stderr).toContain("attempt 4")
      expect(result.stderr).not.toContain("attempt 5")
      expect(fs.readdirSync(path.join(work, "cache", "clips"))).toEqual([])
      fs.rmSync(work, { recursive: true, force: true })
    }))

  it.live("a full disk exits 1 saying no space left on device (no temp path), without retrying", () =>
    Effect.gen(function*() {
      const work = tempDir("cli-nospace")
      // As ffmpeg 5.1 does when the disk fills at the end: a file without its index, the error, exit 0.
      const fake = fakeFfmpeg(
        work,
        `for out; do :; done\nhead -c 4096 /dev/zero > "$out"\n` +
          `echo "Error writing trailer of $out: No space left on device" >&2\nexit 0`
      )
      const result = yield* exportOnce(fake.file, yield* realFfprobe, work)
      expect(result.code, result.stderr).toBe(1)
      const last = errorLines(result).at(-1)
      expect(last).toMatch(/^1 of 1 rallies failed; rally 0: export failed \(no-space\): no space left on device/)
      expect(result.stderr).not.toMatch(/moov|ffprobe|\.part|will be retried/)
      expect(fake.runs()).toBe(1)
      expect(result.stderr).not.toContain("attempt 2")
      expect(fs.readdirSync(path.join(work, "cache", "tmp"))).toEqual([])
      fs.rmSync(work, { recursive: true, force: true })
    }))
})
