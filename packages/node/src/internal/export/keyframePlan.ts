/**
 * Where a stream-copy cut (copy or exact mode) starts and ends: the choice
 * of keyframe and seek time, and the parsers of the ffprobe packet lists it
 * is chosen from. Kept free of effects so it can be property-tested.
 *
 * @internal
 */
import type { StreamCopyCut } from "./ffmpegArgs.js"
import { decodedMaxima, firstWhere, lastSpaced } from "./keyframeLookup.js"

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
 * `start`. `keyframes` must be sorted by pts. `videoDelay`: whether ffmpeg
 * applies its dts heuristic to this source (a stream has a decoding delay).
 *
 * @internal
 */
export const copyPlan = (
  keyframes: ReadonlyArray<Keyframe>,
  start: number,
  end: number,
  sourceDuration: number,
  seekByIndex = true,
  videoDelay = true
): CopyPlan => {
  const clippedEnd = Math.min(end, sourceDuration)
  if (!seekByIndex) return copyPlanByTime(keyframes, start, clippedEnd)
  // Without the heuristic the demuxer lands on the last keyframe whose dts is at or before the seek: any
  // keyframe can be chosen, however close the next (all-intra sources have one every frame).
  const heuristic = videoDelay ? dtsHeuristic : 0
  // The last keyframe at or before `start` whose successor is far enough
  // (in dts) for a seek target that both the plain and the heuristic seek
  // resolve to it. With a normal GOP (>= 0.3 s) that is simply the last
  // keyframe at or before `start`.
  const atOrBefore = atOrBeforeCount(keyframes, start)
  const chosen = atOrBefore === 0 ? -1 : videoDelay ? lastSpaced(keyframes, dtsHeuristic + 0.004)[atOrBefore - 1]! : atOrBefore - 1
  if (chosen < 0) {
    const clipStart = Math.min(keyframes[0]?.pts ?? 0, start)
    return { seek: null, duration: Math.max(clippedEnd, 0.001), clipStart: Math.max(0, clipStart), clipEnd: clippedEnd }
  }
  const k = keyframes[chosen]!
  const next = keyframes[chosen + 1]
  // Sit in the middle of the safe window so a small disagreement between
  // ffprobe's and ffmpeg's timestamps (edit lists, rounding) is harmless.
  const room = next === undefined ? 0.4 : next.dts - k.dts - heuristic
  const seek = k.dts + heuristic + Math.min(0.2, room / 2)
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
 * Source time of the first frame at or after `start` (`framePts` sorted,
 * relative to the file's start), or `undefined` when none is.
 *
 * @internal
 */
export const firstFrameAt = (framePts: ArrayLike<number>, start: number): number | undefined =>
  framePts[frameIndexAt(framePts, start)]

/**
 * Index in `framePts` (sorted) of the first frame at or after `start`
 * (`framePts.length` when none is).
 *
 * @internal
 */
export const frameIndexAt = (framePts: ArrayLike<number>, start: number): number => {
  let lo = 0
  let hi = framePts.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (framePts[mid]! < start - frameTolerance) lo = mid + 1
    else hi = mid
  }
  return lo
}

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
  seekByIndex = true,
  videoDelay = true
): ExactPlan | null => {
  const clippedEnd = Math.min(end, sourceDuration)
  const first = firstFrameAt(framePts, start)
  if (first === undefined || first >= clippedEnd) return null
  const keyframe = copyPlan(keyframes, first, clippedEnd, sourceDuration, seekByIndex, videoDelay)
  return {
    videoSeek: keyframe.seek,
    present: first,
    duration: clippedEnd - first,
    clipStart: Math.min(keyframe.clipStart, first),
    firstFrame: first,
    clipEnd: clippedEnd
  }
}

/** How many keyframes (sorted by pts) present at or before `time`: a binary search, however long the source. */
const atOrBeforeCount = (keyframes: ReadonlyArray<Keyframe>, time: number): number =>
  firstWhere(keyframes.length, (i) => keyframes[i]!.pts > time + 1e-6)

/**
 * Whether pictures lead the keyframe at `keyframePts`: packets decoded after
 * it (before the next keyframe) but presented before it. In an open GOP they
 * reference pictures of the GOP before, which a cut removes, so they decode
 * with errors. `packets` holds (pts, dts) pairs in decode order.
 *
 * @internal
 */
export const hasLeadingPictures = (packets: ArrayLike<number>, keyframes: ReadonlyArray<Keyframe>, keyframePts: number): boolean => {
  // Both found by binary search: a 2-hour source lists 200,000 packets, and a cut looks at one GOP.
  const index = firstWhere(keyframes.length, (i) => keyframes[i]!.pts >= keyframePts - 1e-6)
  const k = keyframes[index]
  if (k === undefined || Math.abs(k.pts - keyframePts) >= 1e-6) return false
  const nextDts = keyframes[index + 1]?.dts ?? Infinity
  const pairs = packets.length >> 1
  for (let p = firstWhere(pairs, (p) => packets[2 * p + 1]! > k.dts + 1e-9); p < pairs; p++) {
    const i = 2 * p
    const dts = packets[i + 1]!
    if (dts >= nextDts - 1e-9) break
    if (packets[i]! < k.pts - 1e-6) return true
  }
  return false
}

/**
 * MPEG-TS and MPEG-PS have no index: ffmpeg seeks them by timestamp
 * search, lands on some packet at or before the target, and a stream copy
 * starts at the first keyframe after that. Seeking to the middle of the GOP
 * before the wanted keyframe lands in that GOP, so the copy starts at the
 * wanted keyframe.
 */
const copyPlanByTime = (keyframes: ReadonlyArray<Keyframe>, start: number, clippedEnd: number): CopyPlan => {
  const chosen = atOrBeforeCount(keyframes, start) - 1
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
  // The packets copied are those before the first decoded `duration` past `present`; running maxima find it
  // and the latest presentation among them without walking the list from the source's start.
  const maxima = decodedMaxima(packets)
  const copied = firstWhere(maxima.dts.length, (p) => maxima.dts[p]! - present >= duration)
  return copied === 0 ? duration : Math.max(duration, maxima.pts[copied - 1]! - present + frameDuration)
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

type PacketList = { readonly pts: Float64Array; readonly dts: Float64Array; readonly key: Uint8Array }

/**
 * The keyframes of a packet list read in process (seconds, decode order),
 * relative to `startTime` and sorted by presentation time: all an open
 * needs, without the per-packet arrays of `packetArrays`. Without `key`
 * every packet listed is a keyframe.
 *
 * @internal
 */
export const keyframeList = (
  list: Omit<PacketList, "key"> & { readonly key?: Uint8Array },
  startTime: number
): Array<Keyframe> => {
  const keyframes: Array<Keyframe> = []
  for (let i = 0; i < list.pts.length; i++) {
    if (list.key !== undefined && list.key[i] !== 1) continue
    keyframes.push({ pts: list.pts[i]! - startTime, dts: list.dts[i]! - startTime })
  }
  return keyframes.sort((a, b) => a.pts - b.pts)
}

/**
 * The sorted frame times and (pts, dts) pairs of a packet list read in
 * process, relative to `startTime`: what a cut plans with, made on first use
 * because a long source holds hundreds of thousands of packets.
 *
 * @internal
 */
export const packetArrays = (
  list: PacketList,
  startTime: number
): { framePts: Float64Array; packets: Float64Array } => {
  const packets = new Float64Array(list.pts.length * 2)
  const framePts = new Float64Array(list.pts.length)
  for (let i = 0; i < list.pts.length; i++) {
    framePts[i] = packets[2 * i] = list.pts[i]! - startTime
    packets[2 * i + 1] = list.dts[i]! - startTime
  }
  return { framePts: sortNearlySorted(framePts), packets }
}

/**
 * The keyframes, frame times and (pts, dts) pairs of a packet list read in
 * process (seconds, decode order), relative to `startTime`: what the three
 * parsers above make of the same packets printed by ffprobe.
 *
 * @internal
 */
export const packetLists = (
  list: PacketList,
  startTime: number
): { keyframes: Array<Keyframe>; framePts: Float64Array; packets: Float64Array } => ({
  keyframes: keyframeList(list, startTime),
  ...packetArrays(list, startTime)
})

/**
 * Sorts presentation times listed in decode order in place: reordering moves
 * a frame by a few places at most, so an insertion sort is near-linear where
 * a general sort of 200,000 times is not.
 */
const sortNearlySorted = (times: Float64Array): Float64Array => {
  for (let i = 1; i < times.length; i++) {
    const t = times[i]!
    let j = i - 1
    if (!(times[j]! > t)) continue
    // A frame far out of place (a broken file): the general sort.
    if (i > 64 && times[i - 64]! > t) return times.sort()
    while (j >= 0 && times[j]! > t) {
      times[j + 1] = times[j]!
      j--
    }
    times[j + 1] = t
  }
  return times
}
