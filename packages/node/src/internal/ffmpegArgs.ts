/**
 * Pure parts of the ffmpeg exporter: where a copy-mode cut really starts,
 * the argument lists, the `-progress` parser and the classification of a
 * failed run. Kept free of effects so they can be property-tested.
 *
 * @internal
 */

/** A keyframe of the source's first video stream, times relative to the file's start_time. @internal */
export interface Keyframe {
  readonly pts: number
  readonly dts: number
}

/**
 * ffmpeg.c moves an input seek `3/23` s earlier when any stream has B-frames
 * (its "dts heuristic"), and the mov demuxer then picks the last keyframe
 * whose *dts* is at or before that target. With `-ss start` a start just after
 * a keyframe therefore lands one GOP earlier than needed. We instead choose
 * the keyframe ourselves and give ffmpeg a seek time that lands on it whether
 * or not the heuristic applies.
 *
 * @internal
 */
export const dtsHeuristic = 3 / 23

/** @internal */
export interface CopyPlan {
  /** The `-ss` given to ffmpeg (input seek), or `null` to read from the beginning. */
  readonly seek: number | null
  /** The `-t` given to ffmpeg. */
  readonly duration: number
  /** Source time of the clip's first frame (the keyframe). */
  readonly clipStart: number
  /** Source time where the clip ends. */
  readonly clipEnd: number
}

/**
 * Plan a stream-copy cut of `[start, end]` from the keyframe at or before
 * `start`. `keyframes` must be sorted by pts.
 *
 * @internal
 */
export const copyPlan = (
  keyframes: ReadonlyArray<Keyframe>,
  start: number,
  end: number,
  sourceDuration: number,
  seekByIndex = true
): CopyPlan => {
  const clippedEnd = Math.min(end, sourceDuration)
  if (!seekByIndex) return copyPlanByTime(keyframes, start, clippedEnd)
  // The last keyframe at or before `start` whose successor is far enough
  // (in dts) for a seek target that both the plain and the heuristic seek
  // resolve to it. With a normal GOP (>= 0.3 s) that is simply the last
  // keyframe at or before `start`.
  let chosen = -1
  for (let i = 0; i < keyframes.length; i++) {
    const k = keyframes[i]!
    if (k.pts > start + 1e-6) break
    const next = keyframes[i + 1]
    if (next === undefined || next.dts - k.dts > dtsHeuristic + 0.004) chosen = i
  }
  if (chosen < 0) {
    const clipStart = Math.min(keyframes[0]?.pts ?? 0, start)
    return { seek: null, duration: Math.max(clippedEnd, 0.001), clipStart: Math.max(0, clipStart), clipEnd: clippedEnd }
  }
  const k = keyframes[chosen]!
  const next = keyframes[chosen + 1]
  // Sit in the middle of the safe window so a small disagreement between
  // ffprobe's and ffmpeg's timestamps (edit lists, rounding) is harmless.
  const room = next === undefined ? 0.4 : next.dts - k.dts - dtsHeuristic
  const seek = k.dts + dtsHeuristic + Math.min(0.2, room / 2)
  return {
    seek: Math.max(0, seek),
    duration: Math.max(clippedEnd - Math.max(0, seek), 0.001),
    clipStart: Math.max(0, k.pts),
    clipEnd: clippedEnd
  }
}

/** @internal */
export interface ExactPlan extends Omit<StreamCopyCut, "audioDuration"> {
  /** Source time of the keyframe the stored data starts at. */
  readonly clipStart: number
  /** Source time of the rally's first frame (the first one presented). */
  readonly firstFrame: number
  readonly clipEnd: number
}

/**
 * Tolerance when matching a rally's start to a frame: a start given to the
 * millisecond still names the frame it was read from.
 *
 * @internal
 */
export const frameTolerance = 0.0005

/**
 * Plan an exact cut of `[start, end]`: present from the first frame at or
 * after `start` (`framePts` sorted, relative to the file's start) and store
 * from the keyframe at or before it. `null` when no frame starts in the rally.
 *
 * @internal
 */
export const exactPlan = (
  keyframes: ReadonlyArray<Keyframe>,
  framePts: ArrayLike<number>,
  start: number,
  end: number,
  sourceDuration: number,
  seekByIndex = true
): ExactPlan | null => {
  const clippedEnd = Math.min(end, sourceDuration)
  let lo = 0
  let hi = framePts.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (framePts[mid]! < start - frameTolerance) lo = mid + 1
    else hi = mid
  }
  if (lo >= framePts.length) return null
  const first = framePts[lo]!
  if (first >= clippedEnd) return null
  const keyframe = copyPlan(keyframes, first, clippedEnd, sourceDuration, seekByIndex)
  return {
    videoSeek: keyframe.seek,
    present: first,
    duration: clippedEnd - first,
    clipStart: Math.min(keyframe.clipStart, first),
    firstFrame: first,
    clipEnd: clippedEnd
  }
}

/** What the source holds, as far as choosing a container goes. @internal */
export interface StreamLayout {
  /** codec_name of the first video stream. */
  readonly video: string
  /** codec_tag_string of the first video stream (e.g. `hvc1`, `hev1`, `avc1`, `[0][0][0][0]`). */
  readonly videoTag: string
  /** codec_name of every audio stream, in order. */
  readonly audio: ReadonlyArray<string>
  /** See `seeksByIndex`. */
  readonly seekByIndex: boolean
}

const mp4Video = new Set(["h264", "hevc", "av1", "vp9", "mpeg4"])
const mp4Audio = new Set(["aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"])
const webmVideo = new Set(["vp8", "vp9", "av1"])
const webmAudio = new Set(["opus", "vorbis"])

/**
 * The clip's container for a stream copy of `layout`: mp4 where every stream
 * fits it, else webm for VP8/VP9/AV1 with Opus/Vorbis, else Matroska.
 *
 * @internal
 */
export const containerFor = (layout: StreamLayout): "mp4" | "mkv" | "webm" => {
  if (mp4Video.has(layout.video) && layout.audio.every((codec) => mp4Audio.has(codec))) return "mp4"
  if (webmVideo.has(layout.video) && layout.audio.every((codec) => webmAudio.has(codec))) return "webm"
  return "mkv"
}

/**
 * Video codecs whose lead-in an mp4 edit list hides in ffmpeg's own decode
 * (checked by the media corpus test). ffmpeg 5.1's AV1 decoders (libdav1d,
 * libaom) output the frames the edit list marks as discarded, so an exact
 * AV1 clip is cut `accurate` instead.
 *
 * @internal
 */
export const editListCodecs: ReadonlySet<string> = new Set(["h264", "hevc", "vp9", "mpeg4"])

/** ffmpeg's muxer name of a container. @internal */
export const muxerOf = (container: "mp4" | "mkv" | "webm"): string => container === "mkv" ? "matroska" : container

/**
 * MPEG-TS and MPEG-PS have no index: ffmpeg seeks them by timestamp
 * search, lands on some packet at or before the target, and a stream copy
 * starts at the first keyframe after that. Seeking to the middle of the GOP
 * before the wanted keyframe lands in that GOP, so the copy starts at the
 * wanted keyframe.
 */
const copyPlanByTime = (keyframes: ReadonlyArray<Keyframe>, start: number, clippedEnd: number): CopyPlan => {
  let chosen = -1
  for (let i = 0; i < keyframes.length && keyframes[i]!.pts <= start + 1e-6; i++) chosen = i
  if (chosen <= 0) {
    const clipStart = Math.max(0, Math.min(keyframes[0]?.pts ?? 0, start))
    return { seek: null, duration: Math.max(clippedEnd, 0.001), clipStart, clipEnd: clippedEnd }
  }
  const k = keyframes[chosen]!
  const seek = (keyframes[chosen - 1]!.pts + k.pts) / 2
  return { seek, duration: Math.max(clippedEnd - seek, 0.001), clipStart: Math.max(0, k.pts), clipEnd: clippedEnd }
}

/**
 * Whether ffmpeg seeks this demuxer through an index (mp4, mkv, avi...) or
 * by searching timestamps (MPEG-TS, MPEG-PS), from ffprobe's format_name.
 *
 * @internal
 */
export const seeksByIndex = (formatName: string): boolean =>
  !formatName.split(",").some((name) => name === "mpegts" || name === "mpeg" || name === "mpegvideo")

/**
 * Typical keyframe interval: the median gap between consecutive keyframes.
 *
 * @internal
 */
export const keyframeInterval = (keyframes: ReadonlyArray<Keyframe>): number | null => {
  if (keyframes.length < 2) return null
  const gaps: Array<number> = []
  for (let i = 1; i < keyframes.length; i++) gaps.push(keyframes[i]!.pts - keyframes[i - 1]!.pts)
  gaps.sort((a, b) => a - b)
  const median = gaps[Math.floor(gaps.length / 2)]!
  return Math.round(median * 1000) / 1000
}

/**
 * Parse ffprobe's `-show_entries packet=pts_time,dts_time,flags -of csv=p=0`
 * output into keyframes relative to `startTime`, sorted by pts.
 *
 * @internal
 */
export const parseKeyframes = (csv: string, startTime: number): Array<Keyframe> => {
  const keyframes: Array<Keyframe> = []
  for (const line of csv.split("\n")) {
    const [ptsText, dtsText, flags] = line.split(",")
    if (flags === undefined || !flags.includes("K")) continue
    const pts = Number(ptsText)
    const dts = dtsText === "N/A" || dtsText === undefined ? pts : Number(dtsText)
    if (!Number.isFinite(pts) || !Number.isFinite(dts)) continue
    keyframes.push({ pts: pts - startTime, dts: dts - startTime })
  }
  keyframes.sort((a, b) => a.pts - b.pts)
  return keyframes
}

/**
 * Where the video of a stream copy ends, relative to `present`: ffmpeg
 * stops copying at the first packet whose *decode* time is `duration` past
 * `present`, so with B-frames the kept frames present past it.
 * `packets` holds (pts, dts) pairs in decode order, relative to the file.
 *
 * @internal
 */
export const videoEndOfCopy = (
  packets: ArrayLike<number>,
  present: number,
  duration: number,
  frameDuration: number
): number => {
  let end = duration
  for (let i = 0; i + 1 < packets.length; i += 2) {
    const pts = packets[i]!
    const dts = packets[i + 1]!
    if (dts - present >= duration) break
    end = Math.max(end, pts - present + frameDuration)
  }
  return end
}

/**
 * (pts, dts) pairs of every packet in decode order, relative to
 * `startTime`, from the same ffprobe output as `parseKeyframes`.
 *
 * @internal
 */
export const parsePackets = (csv: string, startTime: number): Float64Array => {
  const pairs: Array<number> = []
  for (const line of csv.split("\n")) {
    const [ptsText, dtsText] = line.split(",")
    const pts = Number(ptsText)
    if (ptsText === undefined || ptsText === "" || !Number.isFinite(pts)) continue
    const dts = dtsText === undefined || dtsText === "N/A" ? pts : Number(dtsText)
    pairs.push(pts - startTime, (Number.isFinite(dts) ? dts : pts) - startTime)
  }
  return Float64Array.from(pairs)
}

/**
 * Every frame's presentation time from the same ffprobe output as
 * `parseKeyframes`, relative to `startTime`, sorted.
 *
 * @internal
 */
export const parseFramePts = (csv: string, startTime: number): Float64Array => {
  const times: Array<number> = []
  for (const line of csv.split("\n")) {
    const comma = line.indexOf(",")
    if (comma <= 0) continue
    const pts = Number(line.slice(0, comma))
    if (Number.isFinite(pts)) times.push(pts - startTime)
  }
  return Float64Array.from(times).sort()
}

/** @internal */
export interface EncodeSettings {
  readonly preset: string
  readonly crf: number
  readonly audioBitrate: string
}

const common = ["-nostdin", "-y", "-hide_banner", "-v", "error", "-progress", "pipe:1", "-nostats"]
/** The first video stream and every audio track (with its language tag); no data or subtitle streams. */
const maps = ["-map", "0:v:0?", "-map", "0:a?", "-dn", "-sn"]

/** Keep HEVC's `hvc1` tag (parameter sets out of band, as Safari requires); ffmpeg's mp4 default is `hev1`. */
const videoTag = (layout: StreamLayout | undefined): Array<string> =>
  layout?.video === "hevc" && layout.videoTag === "hvc1" ? ["-tag:v", "hvc1"] : []

/** @internal */
export interface StreamCopyCut {
  /** The video input's `-ss`, chosen by `copyPlan` so the demuxer lands on the wanted keyframe (`null`: from the beginning). */
  readonly videoSeek: number | null
  /** Source time (relative) presented first: the keyframe (copy) or the rally's first frame (exact). */
  readonly present: number
  /** Seconds presented from `present`. */
  readonly duration: number
  /**
   * Seconds of audio to copy from `present`: in mp4 more than `duration`
   * (the edit list ends both streams at `duration`); elsewhere the end of
   * the last video frame the copy keeps (see `videoEndOfCopy`).
   */
  readonly audioDuration: number
}

/**
 * Arguments of a stream-copy cut. The video and the audio are read through
 * two inputs of the same file: the video one seeks where the demuxer lands
 * on the keyframe (ffmpeg's own `-ss` would move a seek 3/23 s earlier on
 * B-frame sources and land one GOP early), and `-itsoffset` puts `present`
 * at time 0; the audio one seeks to `present` itself. In mp4, what comes
 * before 0 (the lead-in of an exact cut, the audio before the keyframe) is
 * hidden by the edit list ffmpeg writes; other containers have no edit list,
 * so the audio before 0 is dropped (`-copypriorss:a 0`).
 *
 * @internal
 */
export const streamCopyArgs = (
  input: string,
  cut: StreamCopyCut,
  layout: StreamLayout,
  container: "mp4" | "mkv" | "webm",
  output: string
): Array<string> => {
  const present = Math.floor(cut.present * 1e6) / 1e6
  const audio = layout.audio.length > 0
  return [
    ...common,
    ...(cut.videoSeek === null ? [] : ["-ss", cut.videoSeek.toFixed(6)]),
    "-itsoffset",
    ((cut.videoSeek ?? 0) - present).toFixed(6),
    "-t",
    cut.duration.toFixed(6),
    "-i",
    input,
    ...(audio ? ["-ss", present.toFixed(6), "-t", cut.audioDuration.toFixed(6), "-i", input] : []),
    "-map",
    "0:v:0",
    ...(audio ? ["-map", "1:a"] : []),
    "-dn",
    "-sn",
    "-c",
    "copy",
    ...(container === "mp4" ? [...videoTag(layout), "-movflags", "+faststart"] : ["-copypriorss:a", "0"]),
    "-f",
    muxerOf(container),
    output
  ]
}

/**
 * Arguments of a frame-exact cut: input seek (fast) with re-encoding, which
 * decodes from the previous keyframe and drops frames before `start`.
 *
 * @internal
 */
export const accurateArgs = (
  input: string,
  start: number,
  end: number,
  settings: EncodeSettings,
  output: string,
  /** For sources seeked by timestamp search: a seek that lands before the keyframe of `start` (see `copyPlan`); the rest is decoded and dropped. */
  preSeek?: number | null
): Array<string> => [
  ...common,
  ...(preSeek === undefined
    ? ["-ss", start.toFixed(6), "-i", input]
    : [...(preSeek === null ? [] : ["-ss", preSeek.toFixed(6)]), "-i", input, "-ss", (start - (preSeek ?? 0)).toFixed(6)]),
  "-t",
  (end - start).toFixed(6),
  ...maps,
  "-c:v",
  "libx264",
  "-preset",
  settings.preset,
  "-crf",
  String(settings.crf),
  "-pix_fmt",
  "yuv420p",
  "-c:a",
  "aac",
  "-b:a",
  settings.audioBitrate,
  "-movflags",
  "+faststart",
  "-f",
  "mp4",
  output
]

/**
 * Output time in seconds from one `-progress` line, `"end"` for the last
 * block, or `null`. `out_time_ms` is really microseconds, like `out_time_us`.
 *
 * @internal
 */
export const parseProgressLine = (line: string): number | "end" | null => {
  const eq = line.indexOf("=")
  if (eq < 0) return null
  const key = line.slice(0, eq).trim()
  const value = line.slice(eq + 1).trim()
  if (key === "progress") return value === "end" ? "end" : null
  if (key === "out_time_us" || key === "out_time_ms") {
    const us = Number(value)
    return Number.isFinite(us) && us >= 0 ? us / 1e6 : null
  }
  return null
}

/** @internal */
export type FailureClass =
  | { readonly _tag: "NoSpace" }
  | { readonly _tag: "Io" }
  | { readonly _tag: "SourceMissing" }
  | { readonly _tag: "SourceUnreadable" }
  | { readonly _tag: "NotMedia" }
  | { readonly _tag: "Exit" }

/**
 * What a non-zero ffmpeg exit means, from its last stderr lines.
 *
 * @internal
 */
export const classifyStderr = (lines: ReadonlyArray<string>, input: string): FailureClass => {
  const text = lines.join("\n")
  if (/No space left on device|ENOSPC/i.test(text)) return { _tag: "NoSpace" }
  if (/Input\/output error|\bEIO\b/i.test(text)) return { _tag: "Io" }
  const aboutInput = lines.filter((line) => line.includes(input)).join("\n")
  if (/No such file or directory/i.test(aboutInput)) return { _tag: "SourceMissing" }
  if (/Permission denied/i.test(aboutInput)) return { _tag: "SourceUnreadable" }
  if (/Invalid data found when processing input|moov atom not found/i.test(aboutInput)) return { _tag: "NotMedia" }
  return { _tag: "Exit" }
}

/**
 * The last `n` lines as one string for an error's `stderr` field.
 *
 * @internal
 */
export const tail = (lines: ReadonlyArray<string>, n = 20): string => lines.slice(-n).join("\n")
