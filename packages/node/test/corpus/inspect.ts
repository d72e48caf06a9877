/**
 * Reading a corpus file or a clip back: the frame numbers a decoder shows
 * (with edit lists and rotation applied, as a player would), stream layout,
 * colour metadata and per-stream presented lengths. Not a test file.
 */
import { Effect } from "effect"
import * as NodeChildProcess from "node:child_process"
import { FfmpegResolver } from "../../src/index.js"
import { run } from "../../src/internal/export/process.js"

export interface StreamFacts {
  readonly kind: string
  readonly codec: string
  readonly language: string | undefined
  readonly rotation: number
  readonly pixFmt: string | undefined
  readonly color: string
}

export interface MediaFacts {
  readonly startTime: number
  readonly streams: ReadonlyArray<StreamFacts>
}

export interface Frames {
  /** Presentation times relative to the file's start, in decode output order. */
  readonly times: ReadonlyArray<number>
  /** The number burned into each frame. */
  readonly numbers: ReadonlyArray<number>
}

const ffprobeJson = (path: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { ffprobe } = yield* FfmpegResolver.Ffmpeg
    const result = yield* run(ffprobe.path, ["-v", "error", "-of", "json", ...args, path], { collectStdout: true })
    if (result.exitCode !== 0) return yield* Effect.dieMessage(`ffprobe ${path}: ${result.stderrTail.join("\n")}`)
    return JSON.parse(result.stdout) as Record<string, unknown>
  })

type Json = Record<string, unknown>

/** ffmpeg's stdout as bytes (decoded frames), through a plain child process: run() collects text. */
const rawFrames = (ffmpeg: string, args: ReadonlyArray<string>) =>
  Effect.async<Buffer>((resume) => {
    const child = NodeChildProcess.execFile(
      ffmpeg,
      args,
      { encoding: "buffer", maxBuffer: 256 * 1024 * 1024 },
      (error, stdout, stderr) =>
        resume(
          error === null
            ? Effect.succeed(stdout)
            : Effect.dieMessage(`ffmpeg ${args.join(" ")}: ${error.message} ${stderr.toString()}`)
        )
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const factsEntries =
  "format=start_time:stream=codec_type,codec_name,pix_fmt,color_primaries,color_transfer,color_space:stream_tags=language:stream_side_data=rotation:stream_disposition=attached_pic"

/** Streams (without cover art), start time, rotation and colour of `path`. */
export const facts = (path: string) => Effect.map(ffprobeJson(path, ["-show_entries", factsEntries]), factsOf)

const factsOf = (json: Json): MediaFacts => {
  const streams = ((json["streams"] ?? []) as Array<Json>)
    .filter((s) => (s["disposition"] as Json | undefined)?.["attached_pic"] !== 1)
    .map((s): StreamFacts => {
      const side = (s["side_data_list"] ?? []) as Array<Json>
      const rotation = Number(side.find((d) => d["rotation"] !== undefined)?.["rotation"] ?? 0)
      const language = (s["tags"] as Json | undefined)?.["language"]
      return {
        kind: String(s["codec_type"]),
        codec: String(s["codec_name"]),
        language: typeof language === "string" && language !== "und" ? language : undefined,
        rotation: ((rotation % 360) + 360) % 360,
        pixFmt: typeof s["pix_fmt"] === "string" ? s["pix_fmt"] : undefined,
        color: [s["color_primaries"], s["color_transfer"], s["color_space"]].map((v) => v ?? "unknown").join("/")
      }
    })
  const startTime = Number((json["format"] as Json | undefined)?.["start_time"] ?? 0)
  return { startTime: Number.isFinite(startTime) ? startTime : 0, streams }
}

/**
 * Decode the first video stream as a player would (edit lists and rotation
 * applied) and read every frame's number: bit i is the stripe i of 16 columns
 * (or rows, when the picture is portrait after rotation).
 */
export const frames = (path: string, startTime: number) =>
  Effect.flatMap(
    ffprobeJson(path, [
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=index,width,height:stream_side_data=rotation:frame=best_effort_timestamp_time"
    ]),
    (probe) => framesOf(path, startTime, probe)
  )

/** `frames` from an ffprobe answer that holds the first video stream's size, rotation and frame times. */
const framesOf = (path: string, startTime: number, probe: Json) =>
  Effect.gen(function*() {
    const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
    // `v:0`: the first video stream, as `-map 0:v:0` below picks it.
    const stream = ((probe["streams"] ?? []) as Array<Json>).find((s) => s["codec_type"] === undefined || s["codec_type"] === "video")!
    const rotation = Math.abs(
      Number(((stream["side_data_list"] ?? []) as Array<Json>).find((d) => d["rotation"] !== undefined)?.["rotation"] ?? 0)
    )
    const portrait = rotation % 180 === 90
    const w = portrait ? Number(stream["height"]) : Number(stream["width"])
    const h = portrait ? Number(stream["width"]) : Number(stream["height"])
    const times = ((probe["frames"] ?? []) as Array<Json>)
      .filter((f) => f["stream_index"] === undefined || Number(f["stream_index"]) === Number(stream["index"]))
      .map((f) => Number(f["best_effort_timestamp_time"]) - startTime)
    const bytes = yield* rawFrames(ffmpeg.path, [
      "-nostdin",
      "-v",
      "error",
      "-i",
      path,
      "-map",
      "0:v:0",
      "-vsync",
      "0",
      "-f",
      "rawvideo",
      "-pix_fmt",
      "gray",
      "-"
    ])
    const size = w * h
    const numbers: Array<number> = []
    for (let offset = 0; offset + size <= bytes.length; offset += size) {
      let n = 0
      for (let bit = 0; bit < 10; bit++) {
        const along = Math.floor(((16 * bit + 8) * (portrait ? h : w)) / 160)
        const value = portrait ? bytes[offset + along * w + Math.floor(w / 2)]! : bytes[offset + Math.floor(h / 2) * w + along]!
        if (value > 128) n |= 1 << bit
      }
      numbers.push(n)
    }
    return { times, numbers } satisfies Frames
  })

/**
 * Presented length of each stream (video first, then audio tracks), and its
 * longest frame: from the decoded frames, capped by the stream's declared
 * duration where the container has one (an mp4 edit list can end a stream
 * inside its last frame).
 */
export const lengths = (path: string) =>
  Effect.map(
    ffprobeJson(path, [
      "-show_entries",
      "stream=index,codec_type,duration:stream_disposition=attached_pic:frame=stream_index,best_effort_timestamp_time,pkt_duration_time,duration_time"
    ]),
    lengthsOf
  )

const lengthsOf = (json: Json) => {
  const streams = ((json["streams"] ?? []) as Array<Json>)
    .filter((s) => (s["disposition"] as Json | undefined)?.["attached_pic"] !== 1)
  const spans = new Map<number, { first: number; end: number; maxFrame: number }>()
  for (const f of (json["frames"] ?? []) as Array<Json>) {
    const index = Number(f["stream_index"])
    const t = Number(f["best_effort_timestamp_time"])
    const d = Number(f["duration_time"] ?? f["pkt_duration_time"] ?? 0)
    if (!Number.isFinite(t)) continue
    const span = spans.get(index) ?? { first: t, end: t, maxFrame: 0 }
    span.first = Math.min(span.first, t)
    span.end = Math.max(span.end, t + (Number.isFinite(d) ? d : 0))
    span.maxFrame = Math.max(span.maxFrame, Number.isFinite(d) ? d : 0)
    spans.set(index, span)
  }
  const of = (kind: string) =>
    streams.filter((s) => s["codec_type"] === kind).map((s) => {
      const span = spans.get(Number(s["index"]))
      const declared = Number(s["duration"])
      const decoded = span === undefined ? 0 : span.end - span.first
      return {
        length: Number.isFinite(declared) && declared > 0 ? Math.min(decoded, declared) : decoded,
        maxFrame: span?.maxFrame ?? 0
      }
    })
  return { video: of("video"), audio: of("audio") }
}

/**
 * What `facts`, `frames`, `lengths` and `videoPackets` read of `path`, from one ffprobe pass
 * (and the decode of `frames`): for a clip that all of them inspect.
 */
export const inspect = (path: string) =>
  Effect.gen(function*() {
    const json = yield* ffprobeJson(path, [
      "-count_packets",
      "-show_entries",
      "format=start_time:stream=index,codec_type,codec_name,pix_fmt,color_primaries,color_transfer,color_space,width,height,duration,nb_read_packets:stream_tags=language:stream_side_data=rotation:stream_disposition=attached_pic:frame=stream_index,best_effort_timestamp_time,pkt_duration_time,duration_time"
    ])
    const all = (json["streams"] ?? []) as Array<Json>
    const video = all.find((s) => s["codec_type"] === "video")
    const facts = factsOf(json)
    return {
      facts,
      frames: yield* framesOf(path, facts.startTime, { streams: video === undefined ? [] : [video], frames: json["frames"] }),
      lengths: lengthsOf(json),
      videoPackets: Number(video?.["nb_read_packets"] ?? 0)
    }
  })

/** Decode every stream with `-xerror`: the stderr lines (empty when clean) and the exit code. */
export const decodeErrors = (path: string) =>
  Effect.gen(function*() {
    const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
    const result = yield* run(ffmpeg.path, ["-nostdin", "-v", "error", "-xerror", "-i", path, "-map", "0", "-f", "null", "-"])
    return { exitCode: result.exitCode, stderr: result.stderrTail }
  })

/**
 * A/V sync of a file whose audio beeps every `every` s of the generated
 * time, on the timestamps a player honours (gaps in the audio kept as
 * silence): for each of the first beeps, where the video stands when it
 * sounds (frame number over `fps`, plus the time since that frame) minus
 * the beep's own generated time. 0 when picture and sound are as generated;
 * a clip keeps its source's figure when it keeps its sync. `known`: the
 * file's start time and frames when the caller has read them already.
 */
export const avSync = (
  path: string,
  fps: number,
  every: number,
  known?: { readonly startTime: number; readonly frames: Frames }
) =>
  Effect.gen(function*() {
    const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
    const startTime = known?.startTime ?? (yield* facts(path)).startTime
    const video = known?.frames ?? (yield* frames(path, startTime))
    const rate = 48000
    const bytes = yield* rawFrames(ffmpeg.path, [
      "-nostdin",
      "-v",
      "error",
      "-i",
      path,
      "-map",
      "0:a:0",
      "-af",
      "aresample=async=1:min_hard_comp=0.001:first_pts=0",
      "-f",
      "s16le",
      "-ac",
      "1",
      "-ar",
      String(rate),
      "-"
    ])
    const samples = new Int16Array(bytes.buffer, bytes.byteOffset, Math.floor(bytes.length / 2))
    const times = video.times.map((t) => t + startTime)
    const offsets: Array<number> = []
    for (let i = rate / 100; i < samples.length && offsets.length < 3; i++) {
      if (Math.abs(samples[i]!) <= 8000) continue
      let quiet = true
      for (let j = i - rate / 100; j < i - rate / 1000 && quiet; j++) quiet = Math.abs(samples[j]!) < 300
      if (!quiet) continue
      const t = i / rate
      let k = -1
      for (let f = 0; f < times.length && times[f]! <= t + 1e-9; f++) k = f
      if (k < 0) continue
      const position = video.numbers[k]! / fps + (t - times[k]!)
      offsets.push(position - Math.round(position / every) * every)
    }
    return offsets
  })

/**
 * How a clip's first video stream was made: its packets as stored (an mp4
 * edit list hides lead-in packets from a decoder, not from this count), and
 * the source's keyframe times (relative to its start).
 */
export const videoPackets = (path: string) =>
  Effect.map(
    ffprobeJson(path, ["-count_packets", "-select_streams", "v:0", "-show_entries", "stream=nb_read_packets"]),
    (json) => Number(((json["streams"] ?? []) as Array<Json>)[0]?.["nb_read_packets"] ?? 0)
  )

/** The presentation times of the first video stream's keyframes, relative to `startTime`. */
export const keyframeTimes = (path: string, startTime: number) =>
  Effect.map(
    ffprobeJson(path, [
      "-select_streams",
      "v:0",
      "-skip_frame",
      "nokey",
      "-show_entries",
      "frame=best_effort_timestamp_time"
    ]),
    (json) => ((json["frames"] ?? []) as Array<Json>).map((f) => Number(f["best_effort_timestamp_time"]) - startTime)
  )
