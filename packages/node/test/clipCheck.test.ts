import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Ffmpeg } from "../src/FfmpegResolver.js"
import * as ClipCheck from "../src/internal/media/clipCheck.js"
import { run } from "../src/internal/export/process.js"
import { ffprobeJson, Live, tempDir, testVideo } from "./fixtures.js"

/** The first `seconds` of the 6 s test video (keyframes every second), written into `out` with `codec` args, in `format`. */
const cut = (out: string, format: string, codec: ReadonlyArray<string>, seconds = 3) =>
  Effect.gen(function*() {
    const { ffmpeg } = yield* Ffmpeg
    const source = yield* testVideo
    const result = yield* run(ffmpeg.path, [
      "-nostdin",
      "-y",
      "-v",
      "error",
      "-i",
      source,
      "-t",
      String(seconds),
      ...codec,
      ...(format === "mp4" ? ["-movflags", "+faststart"] : []),
      "-f",
      format,
      out
    ])
    if (result.exitCode !== 0) return yield* Effect.dieMessage(result.stderrTail.join("\n"))
    return out
  })

const copy = ["-map", "0:v:0", "-map", "0:a:0", "-c", "copy"]
const expectation = { duration: 3, video: true, audio: true }

/** Packets per stream kind, counted by ffprobe: what the in-process reading must agree with. */
const packetCounts = (path: string) =>
  Effect.map(ffprobeJson(path, ["-count_packets", "-show_entries", "stream=codec_type,nb_read_packets"]), (json) =>
    Object.fromEntries(
      (json["streams"] as Array<Record<string, string>>).map((s) => [s["codec_type"], Number(s["nb_read_packets"])])
    ))

const samplesOf = (info: ClipCheck.ClipInfo) => Object.fromEntries(info.streams.map((s) => [s.kind, s.samples]))

const detailOf = (path: string) =>
  Effect.map(Effect.flip(ClipCheck.check(path, expectation)), (error) => error.detail)

const truncate = (from: string, to: string, bytes: number) =>
  NodeFs.writeFileSync(to, NodeFs.readFileSync(from).subarray(0, bytes))

describe("clipCheck", () => {
  it.live("reads a copy-cut mp4: both streams, their durations, the movie's duration", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("clipcheck")
      const clip = yield* cut(NodePath.join(dir, "c.mp4"), "mp4", [...copy, "-use_editlist", "0"])
      const info = yield* ClipCheck.check(clip, expectation)
      expect(info.container).toBe("mp4")
      expect(info.streams.map((s) => s.kind).sort()).toEqual(["audio", "video"])
      expect(samplesOf(info)).toEqual(yield* packetCounts(clip))
      const video = info.streams.find((s) => s.kind === "video")!
      expect(Math.abs(video.duration - 3)).toBeLessThan(0.15)
      expect(info.size).toBe(NodeFs.statSync(clip).size)
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)

  it.live("reads Matroska and WebM clips", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("clipcheck")
      const mkv = yield* cut(NodePath.join(dir, "c.mkv"), "matroska", copy)
      const webm = yield* cut(NodePath.join(dir, "c.webm"), "webm", [
        "-c:v",
        "libvpx",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-c:a",
        "libopus"
      ], 2)
      const a = yield* ClipCheck.check(mkv, expectation)
      const b = yield* ClipCheck.check(webm, { duration: 2, video: true, audio: true })
      expect(a.container).toBe("matroska")
      expect(samplesOf(a)).toEqual(yield* packetCounts(mkv))
      expect(samplesOf(b)).toEqual(yield* packetCounts(webm))
      expect(b.duration).toBeCloseTo(2, 1)
      expect(b.streams.map((s) => s.kind).sort()).toEqual(["audio", "video"])
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)

  it.live("fails a clip cut short, even a faststart mp4 whose index is whole", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("clipcheck")
      const mp4 = yield* cut(NodePath.join(dir, "c.mp4"), "mp4", copy)
      const mkv = yield* cut(NodePath.join(dir, "c.mkv"), "matroska", copy)
      const size = NodeFs.statSync(mp4).size
      truncate(mp4, NodePath.join(dir, "half.mp4"), Math.floor(size / 2))
      truncate(mp4, NodePath.join(dir, "short.mp4"), size - 1)
      truncate(mkv, NodePath.join(dir, "half.mkv"), Math.floor(NodeFs.statSync(mkv).size / 2))
      expect(yield* detailOf(NodePath.join(dir, "half.mp4"))).toMatch(/mdat box .* file ends/)
      expect(yield* detailOf(NodePath.join(dir, "short.mp4"))).toMatch(/file ends/)
      expect(yield* detailOf(NodePath.join(dir, "half.mkv"))).toMatch(/segment needs .* file ends/)
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)

  it.live("fails wrong sizes: a shrunken mdat whose samples now lie outside it, trailing bytes", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("clipcheck")
      const mp4 = yield* cut(NodePath.join(dir, "c.mp4"), "mp4", copy)
      const bytes = NodeFs.readFileSync(mp4)
      // Cut the file short and rewrite the mdat's size to match: the boxes are consistent, the index is not.
      const mdat = bytes.indexOf("mdat", 0, "latin1") - 4
      const shrunk = Buffer.from(bytes.subarray(0, bytes.length - 4096))
      shrunk.writeUInt32BE(shrunk.length - mdat, mdat)
      NodeFs.writeFileSync(NodePath.join(dir, "shrunk.mp4"), shrunk)
      expect(yield* detailOf(NodePath.join(dir, "shrunk.mp4"))).toMatch(/chunk at bytes .* outside the media data/)
      NodeFs.writeFileSync(NodePath.join(dir, "padded.mp4"), Buffer.concat([bytes, Buffer.alloc(100)]))
      expect(yield* detailOf(NodePath.join(dir, "padded.mp4"))).toMatch(/no mp4 box at byte/)
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)

  it.live("fails a 0-byte file, a non-media file, a missing stream and a wrong duration", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("clipcheck")
      NodeFs.writeFileSync(NodePath.join(dir, "empty.mp4"), "")
      NodeFs.writeFileSync(NodePath.join(dir, "text.mp4"), "not a video at all\n".repeat(50))
      expect(yield* detailOf(NodePath.join(dir, "empty.mp4"))).toBe("the file is empty")
      expect(yield* detailOf(NodePath.join(dir, "text.mp4"))).toMatch(/not an mp4 or Matroska/)
      expect(yield* detailOf(NodePath.join(dir, "missing.mp4"))).toMatch(/cannot read the clip: ENOENT/)
      const silent = yield* cut(NodePath.join(dir, "v.mp4"), "mp4", ["-map", "0:v:0", "-c", "copy"])
      expect(yield* detailOf(silent)).toBe("the clip has no audio stream")
      const long = yield* ClipCheck.check(silent, { duration: 3, video: true, audio: false })
      expect(long.streams).toHaveLength(1)
      const wrong = yield* Effect.flip(ClipCheck.check(silent, { duration: 6, video: true, audio: false }))
      expect(wrong.detail).toMatch(/video lasts 3\.\d+ s instead of 6\.000 s/)
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)
})
