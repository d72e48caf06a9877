/**
 * Matroska/WebM sources opened without ffprobe (`mkvProbe`) and cut in
 * process into webm/mkv (`mkvCut`): for every mkv/webm case of the media
 * corpus (and a two-language source and VP8 sources made here), the entry
 * read in process equals the one ffprobe's two runs and its packet list
 * give, field by field; an exporter whose ffprobe cannot run opens and cuts
 * them, and its clips present the same decoded frames and audio samples as
 * the clips of an exporter that opened them with ffprobe and cut them with
 * ffmpeg. A webm copy clip is written in process (same streams, cues and
 * packet times as ffmpeg's); mp4 clips of these sources stay ffmpeg's. A
 * truncated or malformed file is refused (left to ffprobe and ffmpeg),
 * never a crash.
 */
import { NodeContext } from "@effect/platform-node"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Domain, Exporter } from "@rallycache/core"
import { Effect, Exit, Layer, ManagedRuntime, Schema } from "effect"
import * as NodeChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { cases, type CutCase, generateArgs } from "./corpus/corpus.js"
import { FfmpegExporter, FfmpegResolver } from "../src/index.js"
import { allKeyframes, probeSource, type SourceEntry } from "../src/internal/media/ffprobe.js"
import { EbmlFile, Id } from "../src/internal/media/mkvEbml.js"
import { mkvProbe, readMatroska } from "../src/internal/media/mkvProbe.js"
import { facts } from "./corpus/inspect.js"
import { cutAndVerify, exporterLayer, ffmpegText, Live, streamHashes } from "./fixtures.js"

const videoId = Schema.decodeSync(Domain.VideoId)("in-process-mkv")
/** An exporter whose ffprobe cannot start: whatever it opens, it opens in process. */
const withoutFfprobe = ManagedRuntime.make(
  FfmpegExporter.layerWithFfmpeg().pipe(
    Layer.provideMerge(
      Layer.effect(
        FfmpegResolver.Ffmpeg,
        Effect.map(FfmpegResolver.Ffmpeg, (found) => ({
          ...found,
          ffprobe: { ...found.ffprobe, path: NodePath.join(NodeOs.tmpdir(), "rallycache-no-ffprobe-here") }
        }))
      ).pipe(Layer.provide(Live))
    ),
    Layer.provideMerge(NodeContext.layer)
  )
)
const inProcess = ManagedRuntime.make(exporterLayer())
const viaFfmpeg = ManagedRuntime.make(exporterLayer({ inProcess: false }))

const mkvCases = cases.filter((c): c is CutCase => c._tag === "Cut" && /\.(mkv|webm)$/.test(c.file))
/** Two audio tracks with their languages, Opus and AC-3, beside VP9: made by a stream copy of two corpus files. */
const twoLanguages = "vp9-opus-ac3-eng-fra.mkv"
const vp8Vorbis = "vp8-vorbis.webm"
const vp8Opus = "vp8-opus.webm"

const ffmpeg = ffmpegText

const ffprobeStreams = (path: string) =>
  new Promise<Array<Record<string, unknown>>>((resolve, reject) =>
    NodeChildProcess.execFile(
      "ffprobe",
      ["-v", "error", "-show_entries", "stream=codec_type,width,height:stream_tags=language", "-of", "json", path],
      (error, stdout) =>
        error === null ? resolve((JSON.parse(stdout) as { streams: Array<Record<string, unknown>> }).streams) : reject(error)
    )
  )

let dir = ""
const made: Array<{ name: string; file: string; rally: CutCase["rally"]; audioTracks: number }> = []

beforeAll(async () => {
  dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-inprocess-mkv-"))
  const encoders = await ffmpeg(["-encoders"])
  await Promise.all(mkvCases.map(async (c) => {
    if (c.encoders.some((e) => !new RegExp(`\\s${e}\\s`).test(encoders))) {
      console.warn(`in-process mkv: ${c.name} skipped, the installed ffmpeg cannot make it`)
      return
    }
    await ffmpeg(["-y", ...generateArgs(c, NodePath.join(dir, c.file), dir)])
    made.push({ name: c.name, file: c.file, rally: c.rally, audioTracks: c.audioTracks })
  }))
  if (made.some((c) => c.file === "vp9-opus.webm") && made.some((c) => c.file === "h264-ac3.mkv")) {
    await ffmpeg([
      "-y",
      "-i",
      NodePath.join(dir, "vp9-opus.webm"),
      "-i",
      NodePath.join(dir, "h264-ac3.mkv"),
      "-map",
      "0:v",
      "-map",
      "0:a",
      "-map",
      "1:a",
      "-c",
      "copy",
      "-metadata:s:a:0",
      "language=eng",
      "-metadata:s:a:1",
      "language=fra",
      "-metadata:s:v:0",
      "stereo_mode=left_right",
      "-color_primaries",
      "bt709",
      NodePath.join(dir, twoLanguages)
    ])
    made.push({ name: "mkv VP9 + Opus (eng) + AC-3 (fra)", file: twoLanguages, rally: mkvCases[0]!.rally, audioTracks: 2 })
  }
  // VP8 does not fit mp4: the copy clip is a webm (cut in process), whose audio end comes from the packet list.
  const vp8 = (audio: ReadonlyArray<string>, file: string, name: string) =>
    ffmpeg([
      "-y",
      "-f",
      "lavfi",
      "-i",
      "testsrc2=size=160x90:rate=25:duration=4",
      "-f",
      "lavfi",
      "-i",
      "sine=frequency=440:sample_rate=48000:duration=4",
      "-c:v",
      "libvpx",
      "-deadline",
      "realtime",
      "-cpu-used",
      "8",
      "-g",
      "25",
      "-b:v",
      "200k",
      ...audio,
      NodePath.join(dir, file)
    ]).then(() => made.push({ name, file, rally: mkvCases[0]!.rally, audioTracks: 1 }))
  if (/\slibvpx\s/.test(encoders) && /\slibopus\s/.test(encoders)) {
    await vp8(["-c:a", "libopus", "-b:a", "48k"], vp8Opus, "webm VP8 + Opus (a webm clip)")
  }
  if (/\slibvpx\s/.test(encoders) && /\slibvorbis\s/.test(encoders)) {
    await vp8(["-c:a", "libvorbis", "-q:a", "2"], vp8Vorbis, "webm VP8 + Vorbis (a webm clip)")
  }
  made.sort((a, b) => a.file.localeCompare(b.file))
}, 180_000)

afterAll(async () => {
  await withoutFfprobe.dispose()
  await inProcess.dispose()
  await viaFfmpeg.dispose()
  if (dir !== "") NodeFs.rmSync(dir, { recursive: true, force: true })
})

/** ffprobe's entry of `path`, with the packet list of its whole-file pass. */
const ffprobeEntry = (path: string) =>
  viaFfmpeg.runPromise(Effect.gen(function*() {
    const { ffprobe } = yield* FfmpegResolver.Ffmpeg
    const entry = yield* probeSource(ffprobe.path, path, "f")
    yield* allKeyframes(ffprobe.path, entry)
    return entry
  }))

const closeArrays = (mine: ArrayLike<number> | undefined, theirs: ArrayLike<number> | undefined, say: string) => {
  expect(mine?.length, say).toBe(theirs?.length)
  for (let i = 0; i < (theirs?.length ?? 0); i++) expect(mine![i]!, `${say}[${i}]`).toBeCloseTo(theirs![i]!, 6)
}

const cut = (runtime: typeof inProcess, file: string, rally: CutCase["rally"], mode: Domain.ExportMode, tag: string) =>
  cutAndVerify(runtime, { dir, videoId, source: NodePath.join(dir, file), rally, mode, tag, extension: "clip" })

/** The CueTime of every CuePoint of a Matroska file, in order. */
const cueTimes = (path: string): Array<number> => {
  const fd = NodeFs.openSync(path, "r")
  try {
    const file = new EbmlFile(fd)
    const header = file.element(0, file.size)
    const segment = file.element(header.end, file.size)
    const cues = file.children(segment.start, segment.end).find((e) => e.id === Id.Cues)
    if (cues === undefined) return []
    return file.children(cues.start, cues.end).filter((e) => e.id === Id.CuePoint).map((point) => {
      const time = file.children(point.start, point.end).find((e) => e.id === Id.CueTime)
      return time === undefined ? -1 : file.uint(time)
    })
  } finally {
    NodeFs.closeSync(fd)
  }
}

/** Per-frame hashes of the decoded stream (edit lists applied, as a player shows it); no timestamps. */
const hashes = async (path: string, map: string) => (await streamHashes(path, [map]))[0]!

describe("opening a Matroska/WebM source without ffprobe", () => {
  it("reads what ffprobe reads: streams, duration, start, frame rate, every packet's times and keyframes", async () => {
    expect(made.length).toBeGreaterThan(0)
    for (const c of made) {
      const path = NodePath.join(dir, c.file)
      const mine: SourceEntry | undefined = mkvProbe(path, "f")
      expect(mine, c.name).toBeDefined()
      const theirs = await ffprobeEntry(path)
      expect(mine!.layout, c.name).toEqual(theirs.layout)
      expect(mine!.format, c.name).toBe(theirs.format)
      expect(mine!.startTime, c.name).toBeCloseTo(theirs.startTime, 6)
      expect(mine!.info.duration, c.name).toBeCloseTo(theirs.info.duration, 6)
      expect(mine!.info.frameRate ?? 0, c.name).toBeCloseTo(theirs.info.frameRate ?? 0, 3)
      expect([mine!.info.hasVideo, mine!.info.hasAudio], c.name).toEqual([theirs.info.hasVideo, theirs.info.hasAudio])
      expect(mine!.info.keyframeInterval, c.name).toBe(theirs.info.keyframeInterval)
      closeArrays(mine!.keyframes?.flatMap((k) => [k.pts, k.dts]), theirs.keyframes?.flatMap((k) => [k.pts, k.dts]), `${c.name} keyframes`)
      closeArrays(mine!.framePts, theirs.framePts, `${c.name} frame times`)
      closeArrays(mine!.packets, theirs.packets, `${c.name} packets`)
      expect(mine!.truncated, c.name).toBeUndefined()

      // The track list: sizes and languages as ffprobe lists them.
      const fd = NodeFs.openSync(path, "r")
      const mkv = (() => {
        try {
          return readMatroska(fd)!
        } finally {
          NodeFs.closeSync(fd)
        }
      })()
      const streams = await ffprobeStreams(path)
      expect(mkv.tracks.map((t) => t.type === 1 ? "video" : t.type === 2 ? "audio" : "other"), c.name)
        .toEqual(streams.map((s) => s["codec_type"]))
      for (const [i, t] of mkv.tracks.entries()) {
        const s = streams[i]!
        if (t.type === 1) expect([t.width, t.height], c.name).toEqual([s["width"], s["height"]])
        // ffprobe leaves "und" (undetermined) out.
        expect(t.language, c.name).toBe((s["tags"] as Record<string, string> | undefined)?.["language"] ?? "und")
      }
      if (c.file === twoLanguages) {
        expect(mkv.tracks.map((t) => t.language)).toEqual(["und", "eng", "fra"])
        // Matroska's StereoMode 1 is side by side, left eye first; the primaries make a Colour element.
        expect([mkv.tracks[0]!.stereoMode, mkv.tracks[0]!.hasColour]).toEqual([1, true])
      } else {
        expect(mkv.tracks[0]!.stereoMode, c.name).toBeUndefined()
      }
      const opus = mkv.tracks.find((t) => t.codec === "opus")
      if (opus !== undefined) {
        // Opus: its header is the codec configuration, 6.5 ms of pre-skip and 80 ms of pre-roll, as ffmpeg writes them.
        expect(opus.codecPrivate?.subarray(0, 8).toString("latin1"), c.name).toBe("OpusHead")
        expect([opus.codecDelay, opus.seekPreRoll], c.name).toEqual([6_500_000, 80_000_000])
      }
      const h264 = mkv.tracks.find((t) => t.codec === "h264")
      // H.264: an avcC record (version 1, then the profile of the SPS).
      if (h264 !== undefined) expect(h264.codecPrivate?.[0], c.name).toBe(1)
    }
  }, 120_000)

  for (const mode of ["copy", "exact"] as const) {
    it(`${mode}: an exporter without ffprobe cuts them as one that opened them with ffprobe`, async () => {
      for (const c of made) {
        const [mine, theirs] = await Promise.all([
          cut(withoutFfprobe, c.file, c.rally, mode, "in-process"),
          cut(viaFfmpeg, c.file, c.rally, mode, "ffprobe")
        ])
        // A webm/mkv copy clip is cut in process; an mp4 clip of these sources (and every exact clip) is ffmpeg's.
        const inProcessClip = mode === "copy" && theirs.result.container !== undefined
        expect(theirs.result.cutBy, c.name).toBe("ffmpeg")
        expect(mine.result.cutBy, c.name).toBe(inProcessClip ? "in-process" : "ffmpeg")
        expect(mine.result.inProcessRefused, c.name).toBeUndefined()
        expect({ ...mine.result, sizeBytes: 0, cutBy: "" }, c.name).toEqual({ ...theirs.result, sizeBytes: 0, cutBy: "" })
        expect(mine.verified, c.name).toEqual({ _tag: "Valid" })
        if (c.file === vp8Vorbis && mode === "copy") expect(mine.result.container).toBe("webm")
        if (inProcessClip) {
          const [mineFacts, theirFacts] = await Promise.all([
            viaFfmpeg.runPromise(facts(mine.out)),
            viaFfmpeg.runPromise(facts(theirs.out))
          ])
          expect(mineFacts.streams, c.name).toEqual(theirFacts.streams)
          // Seekable: a cue per keyframe, where ffmpeg puts them; the same packets at the same times.
          expect(cueTimes(mine.out), c.name).toEqual(cueTimes(theirs.out))
          expect(cueTimes(mine.out).length, c.name).toBeGreaterThan(0)
          const [a, b] = [mkvProbe(mine.out, "f")!, mkvProbe(theirs.out, "f")!]
          expect(a.packets, c.name).toEqual(b.packets)
          expect(a.startTime, c.name).toBe(b.startTime)
        }
        for (const map of ["0:v:0", ...Array.from({ length: c.audioTracks }, (_, a) => `0:a:${a}`)]) {
          const [a, b] = await Promise.all([hashes(mine.out, map), hashes(theirs.out, map)])
          expect(a.length, `${c.name} ${map}`).toBeGreaterThan(0)
          expect(a, `${c.name} ${map}`).toEqual(b)
        }
      }
    }, 120_000)
  }
})

describe("in-process Matroska/WebM cuts that are refused", () => {
  it("a rally whose last kept Opus packet carries discard padding is cut by ffmpeg, saying why", async () => {
    if (!made.some((c) => c.file === vp8Opus)) return
    // ffmpeg writes the stream's last packet in a block group with DiscardPadding, which a SimpleBlock cannot carry.
    const rally = { start: 2.5, end: 4 }
    const [mine, theirs] = await Promise.all([
      cut(withoutFfprobe, vp8Opus, rally, "copy", "padding"),
      cut(viaFfmpeg, vp8Opus, rally, "copy", "padding-ffmpeg")
    ])
    expect(mine.result.cutBy).toBe("ffmpeg")
    expect(mine.result.inProcessRefused).toMatch(/side data/)
    expect({ ...mine.result, inProcessRefused: undefined }).toEqual({ ...theirs.result, inProcessRefused: undefined })
    expect(mine.verified).toEqual({ _tag: "Valid" })
  }, 60_000)
})

describe("a truncated or malformed Matroska/WebM source", () => {
  it("is refused by the in-process reader at every cut and left to ffprobe, never a crash", async () => {
    const source = NodePath.join(dir, made.find((c) => c.file.endsWith(".webm"))?.file ?? made[0]!.file)
    const whole = NodeFs.readFileSync(source)
    const part = NodePath.join(dir, "cut-short.webm")
    // Every length, in steps that land in the header, the track list, clusters and the cues.
    for (let length = 1; length < whole.length; length += 211) {
      NodeFs.writeFileSync(part, whole.subarray(0, length))
      expect(mkvProbe(part, "f"), `cut at ${length} of ${whole.length} bytes`).toBeUndefined()
    }
    // Bytes overwritten anywhere: read or refused, never thrown.
    let seed = 7
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
    for (let round = 0; round < 300; round++) {
      const bad = Buffer.from(whole)
      for (let k = 0; k < 4; k++) bad[Math.floor(random() * bad.length)] = Math.floor(random() * 256)
      NodeFs.writeFileSync(part, bad)
      expect(() => mkvProbe(part, "f")).not.toThrow()
    }

    // Half a file: the exporter opens it with ffprobe, as it did before (the same answer), and an exporter
    // without ffprobe cannot open it at all, so the in-process reader did not take it.
    NodeFs.writeFileSync(part, whole.subarray(0, whole.length >> 1))
    const open = (runtime: typeof inProcess) =>
      runtime.runPromiseExit(Effect.flatMap(Exporter.Exporter, (exporter) => exporter.probe(part)))
    const [mine, theirs, none] = await Promise.all([open(inProcess), open(viaFfmpeg), open(withoutFfprobe)])
    expect(Exit.isSuccess(mine)).toBe(Exit.isSuccess(theirs))
    if (Exit.isSuccess(mine) && Exit.isSuccess(theirs)) expect(mine.value.duration).toBe(theirs.value.duration)
    expect(Exit.isFailure(none)).toBe(true)
    if (Exit.isFailure(none) && none.cause._tag === "Fail") {
      expect(none.cause.error._tag).toBe("SourceUnreadable")
      expect(String(none.cause.error.message)).toMatch(/ffprobe/)
    }
    // A webm copy clip of a source ffprobe opened: the in-process cutter refuses it (nothing of its own to cut
    // from), ffmpeg cuts it as it would without the cutter.
    if (made.some((c) => c.file === vp8Vorbis)) {
      const half = NodePath.join(dir, "vp8-half.webm")
      const bytes = NodeFs.readFileSync(NodePath.join(dir, vp8Vorbis))
      NodeFs.writeFileSync(half, bytes.subarray(0, Math.floor(bytes.length * 0.6)))
      expect(mkvProbe(half, "f")).toBeUndefined()
      const rally = { start: 0.5, end: 1.5 }
      const [refused, plain] = await Promise.all([
        cut(inProcess, "vp8-half.webm", rally, "copy", "half"),
        cut(viaFfmpeg, "vp8-half.webm", rally, "copy", "half-ffmpeg")
      ])
      expect(refused.result.cutBy).toBe("ffmpeg")
      expect(refused.result.inProcessRefused).toMatch(/not opened in process/)
      expect({ ...refused.result, inProcessRefused: undefined }).toEqual(plain.result)
    }
  }, 60_000)
})
