/**
 * Reading sources with ffprobe: stream layout, duration and keyframes,
 * cached per (path, size, mtime, inode).
 *
 * @internal
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import { Domain, Errors } from "@rallycache/core"
import { Effect, Option } from "effect"
import type { StreamLayout } from "../export/ffmpegArgs.js"
import { truncationOf } from "../export/ffmpegOutput.js"
import type { Keyframe } from "../export/keyframePlan.js"
import {
  keyframeInterval,
  packetLists,
  parseFramePts,
  parseKeyframes,
  parsePackets,
  seeksByIndex
} from "../export/keyframePlan.js"
import { readPacketIndex } from "./mp4Index.js"
import { run } from "../export/process.js"
import { isUrl, shownUrl, statUrl } from "./urlSource.js"

/** @internal */
export interface SourceEntry {
  readonly path: string
  readonly info: Domain.SourceInfo
  /** ffprobe's format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  readonly format: string
  /** format start_time: every time we hand to ffmpeg is relative to it. */
  readonly startTime: number
  /** Codecs of the streams a clip keeps. */
  readonly layout: StreamLayout
  /** All keyframes of the first video stream, read on first use. */
  keyframes: ReadonlyArray<Keyframe> | undefined
  /** Presentation times of every frame of the first video stream (sorted, relative), read with the keyframes. */
  framePts: Float64Array | undefined
  /** (pts, dts) of every packet of the first video stream in decode order, read with the keyframes. */
  packets: Float64Array | undefined
  /**
   * Read with the keyframes: where the data of a truncated file ends (the
   * decode time of the last video packet listed: ffprobe lists the one the
   * end cuts, the sample tables stop before it), with what ffprobe or the
   * tables said; `undefined` while unread or when the file is whole.
   */
  truncated: { readonly dataEnd: number; readonly detail: string } | undefined
}

type ProbeError = Errors.SourceNotFound | Errors.SourceUnreadable | Errors.NotMediaFile | Errors.UnsupportedSource

/** Video codecs that are not pictures of the match (cover art, thumbnails). */
const stillCodecs = new Set(["mjpeg", "png", "bmp", "gif", "webp"])

const lastLine = (lines: ReadonlyArray<string>): string =>
  (lines.at(-1) ?? "ffprobe could not read it").replace(/^.*?: /, "").trim()

/** @internal */
export const fingerprintOf = (info: FileSystem.File.Info): string => {
  const mtime = Option.match(info.mtime, { onNone: () => 0, onSome: (date) => date.getTime() })
  const ino = Option.getOrElse(info.ino, () => 0)
  return `s${info.size}-m${mtime}-i${ino}-d${info.dev}`
}

/** The size in bytes a fingerprint from `fingerprintOf` records. @internal */
export const sizeOfFingerprint = (fingerprint: string): number => Number(/^s(\d+)-/.exec(fingerprint)?.[1] ?? 0)

/** The fingerprint of `path`, with the typed errors of a bad source. @internal */
export const statSource = (path: string): Effect.Effect<string, ProbeError, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    if (isUrl(path)) return yield* statUrl(path)
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(path).pipe(
      Effect.mapError((error): ProbeError =>
        error._tag === "SystemError" && error.reason === "NotFound"
          ? new Errors.SourceNotFound({ path })
          : new Errors.SourceUnreadable({ path, reason: error.message })
      )
    )
    if (info.type === "Directory") {
      return yield* new Errors.SourceUnreadable({ path, reason: "it is a directory" })
    }
    if (info.type !== "File") {
      return yield* new Errors.SourceUnreadable({ path, reason: `it is not a regular file (${info.type})` })
    }
    if (info.size === FileSystem.Size(0)) {
      return yield* new Errors.NotMediaFile({ path, detail: "the file is empty" })
    }
    return fingerprintOf(info)
  })

/** Frames per second from ffprobe's `avg_frame_rate` (else `r_frame_rate`), as `30000/1001`; null when unknown. */
const frameRateOf = (stream: Record<string, unknown>): number | null => {
  for (const field of ["avg_frame_rate", "r_frame_rate"]) {
    const m = /^(\d+)\/(\d+)$/.exec(String(stream[field] ?? ""))
    if (m !== null && Number(m[2]) > 0 && Number(m[1]) > 0) return Number(m[1]) / Number(m[2])
  }
  return null
}

const num = (value: unknown): number | null => {
  const n = typeof value === "string" || typeof value === "number" ? Number(value) : NaN
  return Number.isFinite(n) ? n : null
}

/**
 * Probe a source: streams, duration, and the keyframes of its first 10
 * seconds (packets only: nothing is decoded).
 *
 * @internal
 */
export const probeSource = (
  ffprobe: string,
  path: string,
  fingerprint: string
): Effect.Effect<SourceEntry, ProbeError, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const toUnreadable = (error: { message: string }) =>
      new Errors.SourceUnreadable({ path, reason: `cannot run ffprobe: ${error.message}` })
    const [format, head] = yield* Effect.all([
      run(ffprobe, [
        "-v",
        "error",
        "-show_entries",
        "format=duration,start_time,format_name:stream=codec_type,codec_name,codec_tag_string,avg_frame_rate,r_frame_rate,has_b_frames:stream_disposition=attached_pic",
        "-of",
        "json",
        path
      ], {
        collectStdout: true
      }),
      run(ffprobe, [
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-read_intervals",
        "%+10",
        "-show_entries",
        "packet=pts_time,dts_time,flags",
        "-of",
        "csv=p=0",
        path
      ], { collectStdout: true })
    ], { concurrency: 2 }).pipe(Effect.mapError(toUnreadable))
    if (format.exitCode !== 0) {
      const detail = lastLine(format.stderrTail)
      const shown = shownUrl(path)
      if (/Permission denied/i.test(detail)) return yield* new Errors.SourceUnreadable({ path: shown, reason: detail })
      if (/No such file|404 Not Found/i.test(detail)) return yield* new Errors.SourceNotFound({ path: shown })
      if (isUrl(path) && /Server returned|Connection refused|Connection timed out|Input\/output error/i.test(detail)) {
        return yield* new Errors.SourceUnreadable({ path: shown, reason: detail })
      }
      return yield* new Errors.NotMediaFile({ path: shown, detail })
    }
    let parsed: { format?: Record<string, unknown>; streams?: Array<Record<string, unknown>> }
    try {
      parsed = JSON.parse(format.stdout) as typeof parsed
    } catch {
      return yield* new Errors.NotMediaFile({ path, detail: "ffprobe gave no readable answer" })
    }
    const streams = parsed.streams ?? []
    const videos = streams.filter((s) =>
      s["codec_type"] === "video" &&
      !stillCodecs.has(String(s["codec_name"])) &&
      (s["disposition"] as Record<string, unknown> | undefined)?.["attached_pic"] !== 1
    )
    const audios = streams.filter((s) => s["codec_type"] === "audio")
    const hasVideo = videos.length > 0
    const hasAudio = audios.length > 0
    const duration = num(parsed.format?.["duration"])
    if (!hasVideo && !hasAudio) {
      return yield* new Errors.NotMediaFile({ path, detail: "it has no video or audio stream" })
    }
    if (!hasVideo) {
      return yield* new Errors.UnsupportedSource({ path, reason: "it has no video stream" })
    }
    const video = videos[0]!
    const videoCodec = typeof video["codec_name"] === "string" ? video["codec_name"] : "none"
    if (videoCodec === "none" || videoCodec === "unknown") {
      return yield* new Errors.UnsupportedSource({ path, reason: "ffmpeg knows no decoder for its video stream" })
    }
    if (duration === null || duration <= 0) {
      return yield* new Errors.NotMediaFile({ path, detail: "its duration is unknown" })
    }
    const startTime = num(parsed.format?.["start_time"]) ?? 0
    const formatName = String(parsed.format?.["format_name"] ?? "")
    const keyframes = head.exitCode === 0 ? parseKeyframes(head.stdout, startTime) : []
    return {
      path,
      info: new Domain.SourceInfo({
        fingerprint,
        duration,
        keyframeInterval: keyframeInterval(keyframes),
        hasVideo,
        hasAudio,
        frameRate: frameRateOf(video)
      }),
      format: formatName,
      startTime,
      layout: {
        video: videoCodec,
        videoTag: String(video["codec_tag_string"] ?? ""),
        audio: audios.map((s) => String(s["codec_name"] ?? "none")),
        seekByIndex: seeksByIndex(formatName),
        videoDelay: streams.some((s) => (num(s["has_b_frames"]) ?? 0) > 0),
        mov: formatName.split(",").includes("mov")
      },
      keyframes: undefined,
      framePts: undefined,
      packets: undefined,
      truncated: undefined
    }
  })

/**
 * Every keyframe of the first video stream, from the packet index (no
 * decoding). Read once per source: from the sample tables of an mp4/mov
 * that `mp4Index` models, else by an ffprobe pass over the whole file
 * (about 65 ms for 5 minutes of 720p30).
 *
 * @internal
 */
export const allKeyframes = (
  ffprobe: string,
  entry: SourceEntry
): Effect.Effect<ReadonlyArray<Keyframe>, Errors.SourceUnreadable, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    if (entry.keyframes !== undefined) return entry.keyframes
    if (!entry.info.hasVideo) return []
    // An mp4/mov: its sample tables, when mp4Index models them; anything else is left to ffprobe.
    const local = entry.format.split(",").includes("mov") && !isUrl(entry.path)
      ? yield* Effect.sync(() => readPacketIndex(entry.path, entry))
      : undefined
    if (local?._tag === "Index") {
      const lists = packetLists(local, entry.startTime)
      setLists(entry, lists, local.truncated)
      return lists.keyframes
    }
    if (local !== undefined) yield* Effect.logDebug(`ffprobe lists the packets of ${entry.path}: ${local.reason}`)
    const result = yield* run(ffprobe, [
      "-v",
      "error",
      "-select_streams",
      "v:0",
      "-show_entries",
      "packet=pts_time,dts_time,flags",
      "-of",
      "csv=p=0",
      entry.path
    ], { collectStdout: true }).pipe(
      Effect.mapError((error) =>
        new Errors.SourceUnreadable({ path: entry.path, reason: `cannot run ffprobe: ${error.message}` })
      )
    )
    if (result.exitCode !== 0) {
      return yield* new Errors.SourceUnreadable({ path: entry.path, reason: lastLine(result.stderrTail) })
    }
    const truncation = truncationOf(result.stderrTail)
    const lists = {
      keyframes: parseKeyframes(result.stdout, entry.startTime),
      framePts: parseFramePts(result.stdout, entry.startTime),
      packets: parsePackets(result.stdout, entry.startTime)
    }
    setLists(entry, lists, truncation === undefined ? undefined : `ffprobe: ${truncation}`)
    return lists.keyframes
  })

/** Keep the lists on the entry; the data of a truncated file ends at the decode time of the last packet listed. */
const setLists = (
  entry: SourceEntry,
  lists: { keyframes: ReadonlyArray<Keyframe>; framePts: Float64Array; packets: Float64Array },
  truncation: string | undefined
) => {
  entry.framePts = lists.framePts
  entry.packets = lists.packets
  if (truncation !== undefined) {
    const packets = lists.packets
    entry.truncated = { dataEnd: packets.length >= 2 ? packets[packets.length - 1]! : 0, detail: truncation }
  }
  entry.keyframes = lists.keyframes
}
