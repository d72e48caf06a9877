/**
 * The packet lists of an mp4/mov source read in process from its sample
 * tables must be what the ffprobe pass gives: for each generated source,
 * `allKeyframes` runs both ways (the entry's format hidden from it forces
 * ffprobe) and the keyframes, frame times, (pts, dts) pairs and truncation
 * are compared. Sources the reader does not model must be left to ffprobe.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Ffmpeg } from "../src/FfmpegResolver.js"
import { allKeyframes, probeSource, type SourceEntry, statSource } from "../src/internal/media/ffprobe.js"
import { readPacketIndex } from "../src/internal/media/mp4Index.js"
import { run } from "../src/internal/export/process.js"
import { encoders } from "./corpus/corpus.js"
import { Live, tempDir } from "./fixtures.js"

const video = (seconds: number) => ["-f", "lavfi", "-i", `testsrc2=size=160x90:rate=25:d=${seconds}`]
const audio = (seconds: number) => ["-f", "lavfi", "-i", `sine=f=440:sample_rate=48000:d=${seconds}`]
const x264 = (bframes: number) => ["-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", String(bframes)]
const aac = ["-c:a", "aac", "-b:a", "64k"]

/** Write `name` in `dir` with these ffmpeg arguments (inputs and encoding, before the output). */
const make = (dir: string, name: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { ffmpeg } = yield* Ffmpeg
    const path = NodePath.join(dir, name)
    const result = yield* run(ffmpeg.path, ["-nostdin", "-y", "-v", "error", ...args, path])
    if (result.exitCode !== 0) return yield* Effect.dieMessage(`cannot make ${name}: ${result.stderrTail.join("\n")}`)
    return path
  })

/** The source's entry with its lists read in process, and the same entry with them read by ffprobe. */
const bothWays = (path: string) =>
  Effect.gen(function*() {
    const { ffprobe } = yield* Ffmpeg
    const entry = yield* probeSource(ffprobe.path, path, yield* statSource(path))
    const local: SourceEntry = { ...entry }
    const viaFfprobe: SourceEntry = { ...entry, format: "" }
    yield* allKeyframes(ffprobe.path, local)
    yield* allKeyframes(ffprobe.path, viaFfprobe)
    return { entry, local, viaFfprobe }
  })

const expectClose = (actual: ArrayLike<number> | undefined, expected: ArrayLike<number> | undefined, what: string) => {
  expect(actual?.length, what).toBe(expected?.length)
  for (let i = 0; i < (expected?.length ?? 0); i++) {
    if (Math.abs(actual![i]! - expected![i]!) > 1e-6) expect.fail(`${what}[${i}]: ${actual![i]} instead of ${expected![i]}`)
  }
}

const expectSameLists = (local: SourceEntry, viaFfprobe: SourceEntry) => {
  expect(local.keyframes!.length).toBeGreaterThan(0)
  expectClose(local.keyframes!.flatMap((k) => [k.pts, k.dts]), viaFfprobe.keyframes!.flatMap((k) => [k.pts, k.dts]), "keyframes")
  expectClose(local.framePts, viaFfprobe.framePts, "framePts")
  expectClose(local.packets, viaFfprobe.packets, "packets")
}

/** A source read in process, with the lists ffprobe gives. */
const same = (path: string) =>
  Effect.gen(function*() {
    const index = readPacketIndex(path)
    expect(index._tag === "Unsupported" ? index.reason : "read", NodePath.basename(path)).toBe("read")
    const { entry, local, viaFfprobe } = yield* bothWays(path)
    expectSameLists(local, viaFfprobe)
    expect([local.truncated, viaFfprobe.truncated]).toEqual([undefined, undefined])
    return { entry, local, viaFfprobe }
  })

/** A source left to ffprobe, for this reason. */
const leftToFfprobe = (path: string, reason: RegExp) =>
  Effect.gen(function*() {
    const index = readPacketIndex(path)
    expect(index._tag === "Unsupported" ? index.reason : "read in process").toMatch(reason)
    const { local, viaFfprobe } = yield* bothWays(path)
    expectSameLists(local, viaFfprobe)
  })

describe("mp4Index", () => {
  it.live("H.264 with and without B-frames, HEVC, mov, variable frame rate: the lists ffprobe gives", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("mp4index")
      const bframes = yield* same(yield* make(dir, "bframes.mp4", [...video(4), ...audio(4), ...x264(3), ...aac]))
      // ffmpeg's edit list hides the B-frame delay: the first packet decodes before time 0.
      expect(bframes.local.packets![1]).toBeLessThan(0)
      expect(bframes.local.packets![0]).toBe(0)
      yield* same(yield* make(dir, "ipp.mp4", [...video(4), ...audio(4), ...x264(0), ...aac]))
      yield* same(yield* make(dir, "pcm.mov", [...video(4), ...audio(4), ...x264(3), "-c:a", "pcm_s16le"]))
      // Frames 40 on come 53 ms apart instead of 40, in a millisecond time base.
      const vfr = yield* same(
        yield* make(dir, "vfr.mp4", [
          ...video(4),
          "-vf",
          "settb=1/1000,setpts='N/25/TB+if(gte(N\\,40)\\,0.013*(N-40)/TB\\,0)'",
          "-enc_time_base:v",
          "1/1000",
          "-fps_mode",
          "vfr",
          ...x264(2)
        ])
      )
      const gaps = Array.from(vfr.local.framePts!.subarray(1), (t, i) => t - vfr.local.framePts![i]!)
      expect(gaps.filter((gap) => Math.abs(gap - 0.053) < 0.002).length).toBeGreaterThan(40)
      expect(gaps.filter((gap) => Math.abs(gap - 0.04) < 0.002).length).toBeGreaterThan(30)
      if ((yield* encoders).has("libx265")) {
        const x265 = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=25:bframes=3:log-level=error"]
        yield* same(yield* make(dir, "hevc.mp4", [...video(4), ...audio(4), ...x265, "-tag:v", "hvc1", ...aac]))
      } else {
        console.warn("mp4Index: the HEVC case is skipped, the installed ffmpeg has no libx265 encoder")
      }
    }).pipe(Effect.scoped, Effect.provide(Live)), 120_000)

  it.live("edit lists, negative composition offsets, start times: a copy cut hiding its first frames, a file starting at 0.08 s", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("mp4index")
      const source = yield* make(dir, "source.mp4", [...video(4), ...audio(4), ...x264(3), ...aac])
      // A stream copy from mid-GOP: the edit starts after the keyframe, whose packets are kept but not shown.
      const cut = yield* same(yield* make(dir, "cut.mp4", ["-ss", "1.3", "-i", source, "-map", "0", "-c", "copy"]))
      expect(cut.local.keyframes![0]!.pts).toBeLessThan(-0.1)
      // No edit list: the first frame presents at the B-frame delay, the format's start time.
      const late = yield* same(yield* make(dir, "late.mp4", [...video(4), ...x264(3), "-use_editlist", "0"]))
      expect(late.entry.startTime).toBeGreaterThan(0)
      expect(late.local.framePts![0]).toBe(0)
      // Negative composition offsets (ctts version 1), the last one made the most negative: ffmpeg takes its
      // dts shift from every entry but the last two, and so must the reader.
      const negative = yield* make(dir, "negative.mp4", [
        ...video(4),
        ...x264(3),
        "-movflags",
        "+negative_cts_offsets+faststart",
        "-use_editlist",
        "0"
      ])
      const bytes = NodeFs.readFileSync(negative)
      const ctts = bytes.indexOf("ctts", 0, "latin1")
      expect(bytes[ctts + 4]).toBe(1)
      bytes.writeInt32BE(-2000, ctts + 8 + 8 * bytes.readUInt32BE(ctts + 8))
      NodeFs.writeFileSync(negative, bytes)
      yield* same(negative)
      // A start moved by -output_ts_offset (an empty edit, then the media) is left to ffprobe.
      yield* leftToFfprobe(
        yield* make(dir, "offset.mp4", [...video(4), ...audio(4), ...x264(3), ...aac, "-output_ts_offset", "11"]),
        /several edits/
      )
    }).pipe(Effect.scoped, Effect.provide(Live)), 120_000)

  it.live("moov at the front or the end, fragmented (explicit or moof-relative base offsets); several video tracks are left to ffprobe", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("mp4index")
      const input = [...video(4), ...audio(4), ...x264(3), ...aac]
      const front = yield* make(dir, "front.mp4", [...input, "-movflags", "+faststart"])
      const end = yield* make(dir, "end.mp4", input)
      const moovAt = (path: string) => NodeFs.readFileSync(path).indexOf("moov", 0, "latin1")
      expect(moovAt(front)).toBeLessThan(moovAt(end))
      yield* same(front)
      yield* same(end)
      yield* same(yield* make(dir, "frag.mp4", [...input, "-movflags", "+frag_keyframe+empty_moov"]))
      yield* same(yield* make(dir, "frag-moof.mp4", [...input, "-movflags", "+frag_keyframe+empty_moov+default_base_moof"]))
      // A sidx indexing every fragment (with absolute base offsets ffmpeg's muxer misplaces them: moof-relative here).
      yield* same(
        yield* make(dir, "frag-sidx.mp4", [...input, "-movflags", "+frag_keyframe+empty_moov+default_base_moof+global_sidx"])
      )
      // Several fragments of a few frames each, the keyframes among them.
      yield* same(yield* make(dir, "frag-short.mp4", [...input, "-movflags", "+empty_moov", "-frag_duration", "300000"]))
      // The first fragment's samples in the moov, the others in fragments: left to ffprobe.
      yield* leftToFfprobe(yield* make(dir, "frag-moov.mp4", [...input, "-movflags", "+frag_keyframe"]), /both in the moov/)
      yield* leftToFfprobe(
        yield* make(dir, "two.mp4", [...video(4), ...video(4), "-map", "0:v", "-map", "1:v", ...x264(0)]),
        /several video tracks/
      )
    }).pipe(Effect.scoped, Effect.provide(Live)), 120_000)

  it.live("a file cut at half: truncated both ways; the tables stop before the packet ffprobe reads partly", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("mp4index")
      const whole = yield* make(dir, "whole.mp4", [...video(4), ...audio(4), ...x264(3), ...aac, "-movflags", "+faststart"])
      const half = NodePath.join(dir, "half.mp4")
      const bytes = NodeFs.readFileSync(whole)
      NodeFs.writeFileSync(half, bytes.subarray(0, Math.floor(bytes.length / 2)))
      const index = readPacketIndex(half)
      expect(index._tag).toBe("Index")
      const { local, viaFfprobe } = yield* bothWays(half)
      expect(local.truncated?.detail).toMatch(/^the file ends at byte \d+, inside video packet \d+ of 100$/)
      expect(viaFfprobe.truncated?.detail).toMatch(/^ffprobe: .*partial file/)
      // ffprobe lists one more packet: the one the end of the file cuts, read in part. Without it, the lists agree.
      const kept = viaFfprobe.packets!.subarray(0, viaFfprobe.packets!.length - 2)
      const [cutPts, cutDts] = viaFfprobe.packets!.subarray(kept.length)
      expectClose(local.packets, kept, "packets")
      expectClose(local.framePts, viaFfprobe.framePts!.filter((t) => t !== cutPts), "framePts")
      expect(local.keyframes).toEqual(viaFfprobe.keyframes!.filter((k) => k.pts !== cutPts || k.dts !== cutDts))
      expect(local.truncated!.dataEnd).toBe(kept[kept.length - 1])
      expect(local.truncated!.dataEnd).toBeLessThan(viaFfprobe.truncated!.dataEnd)
      expect(local.packets!.length / 2).toBeGreaterThan(30)
    }).pipe(Effect.scoped, Effect.provide(Live)), 120_000)
})
