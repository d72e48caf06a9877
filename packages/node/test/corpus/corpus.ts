/**
 * The media test corpus: small sources (160x90, a few seconds) in the
 * containers, codecs and properties phones, cameras and recorders produce,
 * generated with ffmpeg at test time. Every picture carries its frame
 * number as ten black/white stripes (bit i is the stripe at x = 16i..16i+15),
 * so a test can read which frame a decoder shows. Not a test file.
 */
import { Effect } from "effect"
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FfmpegResolver } from "../../src/index.js"
import { run } from "../../src/internal/export/process.js"
import { fixtureDir } from "../fixtures.js"

export const width = 160
export const height = 90

/** A source the exporter must cut. */
export interface CutCase {
  readonly _tag: "Cut"
  readonly name: string
  readonly file: string
  readonly duration: number
  /** The rally to cut, in seconds from the source's start. */
  readonly rally: { readonly start: number; readonly end: number }
  /** ffmpeg arguments after the generated inputs (`-i` video pattern, `-i` audio tracks), before the output. */
  readonly encode: ReadonlyArray<string>
  /** Number of audio tracks generated (each a sine of its own pitch). */
  readonly audioTracks: number
  /** Extra ffmpeg arguments of the video input (before `-i`). */
  readonly videoFilter?: string
  /** Encoders this case needs; the case is skipped (and says so) when the installed ffmpeg lacks one. */
  readonly encoders: ReadonlyArray<string>
  /** Made from another case's file instead of the lavfi pattern (e.g. a copy cut that leaves an edit list). */
  readonly derivedFrom?: string
  /** Audio of short beeps (one every 0.5 s) instead of a sine, so a test can measure A/V sync. */
  readonly beeps?: boolean
  /** A copy clip must start at most this many seconds before the rally (all-intra: the frame at or before it). */
  readonly copyLeadIn?: number
  /** The exact cut must be a stream copy (no fallback to a re-encode), in this container. */
  readonly exactIn?: "mp4" | "mov"
  /**
   * Why an exact cut of this source falls back to accurate (part of the
   * reason the exporter reports). Absent: an exact cut must be a stream copy.
   */
  readonly exactFallsBack?: string
}

/** A source the exporter must refuse at open, with the given error tag. */
export interface RefuseCase {
  readonly _tag: "Refuse"
  readonly name: string
  readonly file: string
  readonly args: ReadonlyArray<string>
  readonly error: string
  readonly encoders: ReadonlyArray<string>
}

export type Case = CutCase | RefuseCase

export const fps = 25
/** Seconds between two beeps of a `beeps` case's audio. */
export const beepEvery = 0.5
const stripes = `geq=lum='if(bitand(N\\,pow(2\\,floor(X/16)))\\,235\\,16)':cb=128:cr=128`
/** Mid-frame times, so "the first frame at or after the start" is never a rounding question. */
const at = (frame: number) => (frame + 0.5) / fps

const x264 = (gop: number, extra: ReadonlyArray<string> = []) => [
  "-c:v",
  "libx264",
  "-preset",
  "veryfast",
  "-crf",
  "18",
  "-g",
  String(gop * fps),
  "-keyint_min",
  String(gop * fps),
  "-sc_threshold",
  "0",
  ...extra
]
const aac = ["-c:a", "aac", "-b:a", "64k"]

const cut = (
  name: string,
  file: string,
  encode: ReadonlyArray<string>,
  encoders: ReadonlyArray<string>,
  extra: Partial<CutCase> = {}
): CutCase => ({
  _tag: "Cut",
  name,
  file,
  duration: 4,
  rally: { start: at(37), end: at(80) },
  encode,
  audioTracks: 1,
  encoders,
  ...extra
})

/** Every case of the corpus. */
export const cases: ReadonlyArray<Case> = [
  cut("mp4 H.264 + AAC, B-frames", "h264-aac.mp4", [...x264(2, ["-bf", "3"]), ...aac], ["libx264", "aac"]),
  cut("mov H.264 + PCM", "h264-pcm.mov", [...x264(2), "-c:a", "pcm_s16le"], ["libx264", "pcm_s16le"], { exactIn: "mov" }),
  cut("m4v H.264 + AAC", "h264-aac.m4v", [...x264(2), ...aac, "-f", "ipod"], ["libx264", "aac"]),
  cut("mkv H.264 + AC-3", "h264-ac3.mkv", [...x264(2), "-c:a", "ac3", "-b:a", "96k"], ["libx264", "ac3"]),
  cut("webm VP9 + Opus", "vp9-opus.webm", [
    "-c:v",
    "libvpx-vp9",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
    "-g",
    "50",
    "-b:v",
    "300k",
    "-c:a",
    "libopus",
    "-b:a",
    "48k"
  ], ["libvpx-vp9", "libopus"]),
  cut("MPEG-TS H.264 + AAC starting at 11 s", "h264-aac-start11.ts", [
    ...x264(2),
    ...aac,
    "-output_ts_offset",
    "11",
    "-f",
    "mpegts"
  ], ["libx264", "aac"]),
  // Timestamps wrap past 2^33 (90 kHz) 1.5 s into the file; the rally starts before the wrap and ends after it.
  cut("MPEG-TS H.264 + AAC whose timestamps wrap past 2^33", "h264-aac-wrap.ts", [
    ...x264(1),
    ...aac,
    "-output_ts_offset",
    String(Math.floor(2 ** 33 / 90000 * 10) / 10 - 2.9),
    "-f",
    "mpegts"
  ], ["libx264", "aac"], { duration: 3, rally: { start: 1.01, end: 2 }, exactIn: "mp4" }),
  // The same source, a rally that ends before the wrap (its exact clip once started one frame early).
  cut("MPEG-TS H.264 + AAC whose timestamps wrap past 2^33, rally before the wrap", "h264-aac-wrap-before.ts", [
    ...x264(1),
    ...aac,
    "-output_ts_offset",
    String(Math.floor(2 ** 33 / 90000 * 10) / 10 - 2.9),
    "-f",
    "mpegts"
  ], ["libx264", "aac"], { duration: 3, rally: { start: at(7), end: 1.3 }, exactIn: "mp4" }),
  cut("M2TS HEVC + AC-3 starting at 600 s", "hevc-ac3.m2ts", [
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "keyint=50:min-keyint=50:scenecut=0:log-level=error",
    "-c:a",
    "ac3",
    "-b:a",
    "96k",
    "-output_ts_offset",
    "600",
    "-f",
    "mpegts",
    "-mpegts_m2ts_mode",
    "1"
  ], ["libx265", "ac3"]),
  cut("avi MPEG-4 + MP3", "mpeg4-mp3.avi", [
    "-c:v",
    "mpeg4",
    "-q:v",
    "3",
    "-g",
    "50",
    "-c:a",
    "libmp3lame",
    "-b:a",
    "64k"
  ], ["mpeg4", "libmp3lame"]),
  cut("mp4 HEVC hvc1, 10-bit, BT.2020 PQ", "hevc10-hvc1.mp4", [
    "-pix_fmt",
    "yuv420p10le",
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "keyint=50:min-keyint=50:scenecut=0:log-level=error:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc",
    "-color_primaries",
    "bt2020",
    "-color_trc",
    "smpte2084",
    "-colorspace",
    "bt2020nc",
    "-tag:v",
    "hvc1",
    ...aac
  ], ["libx265", "aac"]),
  cut("mp4 HEVC hev1", "hevc-hev1.mp4", [
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "keyint=50:min-keyint=50:scenecut=0:log-level=error",
    "-tag:v",
    "hev1",
    ...aac
  ], ["libx265", "aac"]),
  cut("mkv AV1 + Opus", "av1-opus.mkv", [
    "-c:v",
    "libaom-av1",
    "-cpu-used",
    "8",
    "-usage",
    "realtime",
    "-g",
    "50",
    "-b:v",
    "200k",
    "-c:a",
    "libopus",
    "-b:a",
    "48k"
  ], ["libaom-av1", "libopus"], { exactFallsBack: "edit lists are not honoured" }),
  cut("mov ProRes + PCM", "prores-pcm.mov", ["-c:v", "prores_ks", "-profile:v", "0", "-c:a", "pcm_s24le"], [
    "prores_ks",
    "pcm_s24le"
  ], { copyLeadIn: 0.04, exactIn: "mov" }),
  // All-intra: every frame a keyframe, no decoding delay, so ffmpeg's seek has no dts heuristic to avoid.
  cut("mov ProRes 422 Proxy 10-bit 4:2:2 + PCM, rally at 2.4 s", "prores-proxy-s16.mov", [
    "-c:v",
    "prores_ks",
    "-profile:v",
    "0",
    "-pix_fmt",
    "yuv422p10le",
    "-c:a",
    "pcm_s16le"
  ], ["prores_ks", "pcm_s16le"], { duration: 3, rally: { start: at(60), end: at(72) }, copyLeadIn: 0.04, exactIn: "mov" }),
  cut("mp4 H.264 rotated 90°", "h264-rot90.mp4", [...x264(2), ...aac, "-metadata:s:v:0", "rotate=90"], [
    "libx264",
    "aac"
  ]),
  cut("mp4 H.264 + two audio tracks (eng, fra)", "h264-2audio.mp4", [
    ...x264(2),
    ...aac,
    "-metadata:s:a:0",
    "language=eng",
    "-metadata:s:a:1",
    "language=fra"
  ], ["libx264", "aac"], { audioTracks: 2 }),
  cut("mp4 H.264 variable frame rate", "h264-vfr.mp4", [...x264(2), ...aac, "-fps_mode", "vfr"], ["libx264", "aac"], {
    videoFilter: "setpts='N/25/TB+if(gte(N\\,40)\\,0.013*(N-40)/TB\\,0)'"
  }),
  cut("mp4 H.264 open GOP", "h264-opengop.mp4", [...x264(2, ["-bf", "3", "-x264-params", "open-gop=1"]), ...aac], [
    "libx264",
    "aac"
  ]),
  // A recovery-point I frame every second: the B-frames that lead it reference the GOP before.
  cut("mp4 H.264 open GOP, cut after a non-IDR keyframe", "h264-opengop-nonidr.mp4", [
    ...x264(1, ["-bf", "3", "-x264-params", "open-gop=1"]),
    ...aac
  ], ["libx264", "aac"], { duration: 3, rally: { start: at(33), end: at(60) }, exactIn: "mp4" }),
  // As recorders write: an empty moov, a fragment per keyframe, and no edit list for the AAC priming.
  cut("mp4 fragmented, a fragment per keyframe", "h264-aac-frag.mp4", [
    ...x264(1, ["-bf", "3"]),
    ...aac,
    "-movflags",
    "frag_keyframe+empty_moov"
  ], ["libx264", "aac"], { duration: 3, rally: { start: at(33), end: at(60) }, beeps: true, exactIn: "mp4" }),
  cut("mp4 H.264 10 s GOP", "h264-gop10.mp4", [...x264(10, ["-bf", "3"]), ...aac], ["libx264", "aac"], {
    duration: 12,
    rally: { start: at(137), end: at(240) }
  }),
  cut("mp4 H.264 with negative composition offsets", "h264-negcts.mp4", [
    ...x264(2, ["-bf", "3"]),
    ...aac,
    "-movflags",
    "+negative_cts_offsets",
    "-use_editlist",
    "0"
  ], ["libx264", "aac"]),
  cut("mp4 with an edit list hiding its first frames", "h264-editlist.mp4", [], ["libx264", "aac"], {
    derivedFrom: "h264-aac.mp4",
    duration: 3.4
  }),
  {
    _tag: "Refuse",
    name: "audio only",
    file: "audio-only.m4a",
    args: ["-f", "lavfi", "-i", "sine=f=440:d=3", ...aac],
    error: "UnsupportedSource",
    encoders: ["aac"]
  },
  {
    _tag: "Refuse",
    name: "audio with cover art",
    file: "audio-cover.mp4",
    args: [
      "-f",
      "lavfi",
      "-i",
      "sine=f=440:d=3",
      "-f",
      "lavfi",
      "-i",
      `color=c=red:s=${width}x${height}:d=1`,
      "-map",
      "0",
      "-map",
      "1",
      "-frames:v",
      "1",
      "-c:v",
      "png",
      "-disposition:v:0",
      "attached_pic",
      ...aac
    ],
    error: "UnsupportedSource",
    encoders: ["aac", "png"]
  },
  {
    _tag: "Refuse",
    name: "encrypted mp4 (CENC)",
    file: "cenc.mp4",
    args: [
      "-f",
      "lavfi",
      "-i",
      `color=c=black:s=${width}x${height}:r=${fps}:d=1`,
      "-c:v",
      "libx264",
      "-preset",
      "veryfast",
      "-encryption_scheme",
      "cenc-aes-ctr",
      "-encryption_key",
      "00112233445566778899aabbccddeeff",
      "-encryption_kid",
      "0123456789abcdef0123456789abcdef"
    ],
    error: "UnsupportedSource",
    encoders: ["libx264"]
  }
]

/** ffmpeg arguments generating `c` into `path`. */
export const generateArgs = (c: CutCase, path: string, dir: string): Array<string> => {
  if (c.derivedFrom !== undefined) {
    // A stream copy from mid-GOP keeps ffmpeg's edit list: the source itself hides its first frames.
    return ["-ss", "0.6", "-i", NodePath.join(dir, c.derivedFrom), "-map", "0", "-c", "copy", path]
  }
  const video = `color=c=black:s=${width}x${height}:r=${fps}:d=${c.duration},format=yuv420p,${stripes}${
    c.videoFilter === undefined ? "" : `,${c.videoFilter}`
  }`
  const inputs = ["-f", "lavfi", "-i", video]
  const maps = ["-map", "0:v"]
  for (let i = 0; i < c.audioTracks; i++) {
    inputs.push(
      "-f",
      "lavfi",
      "-i",
      c.beeps === true
        ? `aevalsrc=exprs='if(lt(mod(t\\,${beepEvery})\\,0.02)\\,0.8*sin(2*PI*1000*t)\\,0)':s=48000:d=${c.duration}`
        : `sine=f=${330 + 110 * i}:sample_rate=48000:d=${c.duration}`
    )
    maps.push("-map", `${i + 1}:a`)
  }
  return [...inputs, ...maps, ...c.encode, path]
}

/** Encoders of the resolved ffmpeg. */
export const encoders = Effect.gen(function*() {
  const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
  const result = yield* run(ffmpeg.path, ["-hide_banner", "-encoders"], { collectStdout: true })
  return new Set(result.stdout.split("\n").map((line) => line.trim().split(/\s+/)[1] ?? "").filter((n) => n !== ""))
})

/**
 * The run's shared corpus folder (under the suite's fixture folder, named after the cases'
 * arguments): the test files that cut the corpus read the same sources, each made once per run.
 * Read-only for them: clips go to a folder of their own.
 */
export const sourcesDir = NodePath.join(
  fixtureDir,
  `corpus-${
    NodeCrypto.createHash("sha1")
      .update(JSON.stringify(cases.map((c) => c._tag === "Cut" ? generateArgs(c, c.file, "") : c.args)))
      .digest("hex")
      .slice(0, 12)
  }`
)

/**
 * `file` in the shared corpus folder, made by ffmpeg with `args(path)` unless it is there. Test files
 * run in parallel workers: the one that creates `file.lock` first makes it (into a temp name, then
 * renamed), the others wait for it.
 */
export const sharedSource = (file: string, args: (path: string) => ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
    const path = NodePath.join(sourcesDir, file)
    const lock = `${path}.lock`
    NodeFs.mkdirSync(sourcesDir, { recursive: true })
    // Far above any wait expected: turns a maker that died holding the lock into a failure that says so.
    const deadline = Date.now() + 300_000
    for (;;) {
      if (NodeFs.existsSync(path)) return path
      const mine = yield* Effect.try(() => NodeFs.closeSync(NodeFs.openSync(lock, "wx"))).pipe(
        Effect.as(true),
        Effect.catchAll(() => Effect.succeed(false))
      )
      if (mine) {
        const temp = NodePath.join(sourcesDir, `.${process.pid}-${file}`)
        yield* Effect.gen(function*() {
          const result = yield* run(ffmpeg.path, ["-nostdin", "-y", "-hide_banner", "-v", "error", ...args(temp)])
          if (result.exitCode !== 0) {
            return yield* Effect.dieMessage(`cannot generate ${file}: ${result.stderrTail.join("\n")}`)
          }
          NodeFs.renameSync(temp, path)
        }).pipe(Effect.ensuring(Effect.sync(() => {
          NodeFs.rmSync(temp, { force: true })
          NodeFs.rmSync(lock, { force: true })
        })))
        return path
      }
      if (Date.now() > deadline) return yield* Effect.dieMessage(`waited 300 s for another test file to make ${path}`)
      yield* Effect.sleep("50 millis")
    }
  })

/**
 * The corpus in the shared folder (`dir`, made two files at a time where missing), the cases the
 * installed ffmpeg cannot make, and a fresh folder for the clips (`work`, removed with the scope).
 */
export const generate = Effect.gen(function*() {
  const work = yield* Effect.acquireRelease(
    Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-corpus-"))),
    (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
  )
  const available = yield* encoders
  const missing = new Map<string, ReadonlyArray<string>>()
  const make = (c: Case) =>
    Effect.gen(function*() {
      const lacking = c.encoders.filter((e) => !available.has(e))
      if (lacking.length > 0) {
        missing.set(c.name, lacking)
        return
      }
      yield* sharedSource(c.file, (path) => c._tag === "Cut" ? generateArgs(c, path, sourcesDir) : [...c.args, path])
    })
  const derived = cases.filter((c) => c._tag === "Cut" && c.derivedFrom !== undefined)
  yield* Effect.forEach(cases.filter((c) => !derived.includes(c)), make, { concurrency: 2, discard: true })
  yield* Effect.forEach(derived, make, { discard: true })
  return { dir: sourcesDir, work, missing }
})
