/**
 * Which samples an in-process clip keeps (`mp4Cut`): those of ffmpeg's
 * stream copy of the same plan (`streamCopyArgs`): the video from the
 * planned keyframe to the last frame presented before the end (open-GOP
 * leading pictures dropped), the audio from where ffmpeg's seek of the
 * audio input lands (the decode time of the video keyframe at or before
 * the present time) to a quarter second past the end; and where each
 * track's new edit list starts presenting. Pure, on the `Movie`'s arrays.
 *
 * @internal
 */
import { type Movie, Mp4Unsupported, ptsOf, type Track } from "./mp4Tracks.js"

/** What to cut: times in seconds relative to the source's start time, as the export plan gives them. @internal */
export interface Mp4CutPlan {
  /** The keyframe the stored video starts at (`clipStart`, clamped at 0 as the plan does). */
  readonly keyframe: number
  /** The first presented frame (exact) or the keyframe (copy). */
  readonly present: number
  /** Seconds presented from `present`. */
  readonly presented: number
  /** The source's start time (ffprobe's format start_time, or what `mp4Probe` computed). */
  readonly startTime: number
}

const unsupported = (reason: string): never => {
  throw new Mp4Unsupported(reason)
}

/** A kept track: its samples (decode order) and its new edit's media time. @internal */
export interface Kept {
  readonly track: Track
  readonly samples: Int32Array
  readonly editMedia: number
  /** Where each kept sample lands in the clip (absolute file offsets), filled by the layout. */
  newOffset: Float64Array
}

const tolerance = 1e-3

/**
 * How ffmpeg's mov demuxer indexes a track (mov_fix_index, one edit): `zero` is the raw decode time its
 * index time 0 stands for, `start` the raw decode time of the first sample the edit presents, and
 * `minCorrected` what its seek subtracts from a target (min_corrected_pts plus the dts shift).
 */
const ffIndex = (t: Track): { zero: number; start: number; minCorrected: number } => {
  const known = ffIndexes.get(t)
  if (known !== undefined) return known
  const index = ffIndexOf(t)
  ffIndexes.set(t, index)
  return index
}
const ffIndexes = new WeakMap<Track, { zero: number; start: number; minCorrected: number }>()
const ffIndexOf = (t: Track): { zero: number; start: number; minCorrected: number } => {
  const shift = t.shift
  if (t.editMedia === 0 && t.editDelay === 0) return { zero: shift, start: 0, minCorrected: shift }
  const cts = (i: number) => t.dts[i]! + (t.ctts?.[i] ?? 0)
  let s = 0
  while (s < t.n && cts(s) < t.editMedia) s++
  if (s === t.n) return { zero: t.editMedia, start: 0, minCorrected: 0 }
  if (t.ctts === undefined) return { zero: t.editMedia, start: t.dts[s]!, minCorrected: t.dts[s]! - t.editMedia }
  let minCts = Infinity
  // No sample decoded later can present earlier than its dts plus the smallest offset: the scan stops there.
  for (let i = s; i < t.n && t.dts[i]! + t.cttsMin < minCts; i++) if (cts(i) >= t.editMedia) minCts = Math.min(minCts, cts(i))
  return { zero: minCts + shift, start: t.dts[s]!, minCorrected: minCts - t.dts[s]! + shift }
}

/** How many of the first samples satisfy `holds`, which holds for a prefix of the samples (binary search). */
const prefix = (n: number, holds: (i: number) => boolean): number => {
  let lo = 0
  for (let hi = n; lo < hi;) {
    const mid = (lo + hi) >>> 1
    if (holds(mid)) lo = mid + 1
    else hi = mid
  }
  return lo
}

const rescale = (a: bigint, b: bigint, c: bigint): bigint => {
  const half = c / 2n
  return a >= 0n ? (a * b + half) / c : -((-a * b + half) / c)
}

/** The samples of each clip track, and the presented ranges of the new edit lists. @internal */
export const keep = (movie: Movie, plan: Mp4CutPlan): Array<Kept> => {
  const video = movie.tracks.find((t) => t.handler === "vide") ?? unsupported("no video track")
  const audios = movie.tracks.filter((t) => t.handler === "soun")
  if (video.n === 0) unsupported("an empty video track")
  for (const t of [video, ...audios]) if (t.editRefusal !== undefined) unsupported(t.editRefusal)
  const presentUs = Math.floor(plan.present * 1e6) + Math.round(plan.startTime * 1e6)
  const presentAbs = presentUs / 1e6
  const keyAbs = plan.keyframe + plan.startTime
  const endAbs = presentAbs + plan.presented

  // The stored video: from the last sync sample presented at or before the planned keyframe.
  // Samples decoded 2 s past it present past it too (composition offsets are a few frames).
  const decodedBy = (t: Track, seconds: number) =>
    prefix(t.n, (i) => t.editDelay + (t.dts[i]! - t.editMedia) / t.timescale <= seconds)
  let k0 = decodedBy(video, keyAbs + tolerance + 2) - 1
  while (k0 >= 0 && !(video.key[k0] === 1 && ptsOf(video, k0) <= keyAbs + tolerance)) k0--
  if (k0 < 0) unsupported("no keyframe before the rally")
  let first = -1
  let last = -1
  for (let i = k0; i < video.n; i++) {
    const pts = ptsOf(video, i)
    if (pts < endAbs - 1e-6) last = i
    if (Math.abs(pts - presentAbs) < tolerance) first = i
    // Reordering moves a frame by a few frames at most: a keyframe a second past the end ends the search.
    if (video.key[i] === 1 && pts > endAbs + 1 && i > last) break
  }
  if (first < 0 || last < first) unsupported("no video frame at the planned start")
  // Open GOP: the pictures after the keyframe that present before it reference pictures cut away; they are
  // dropped (nothing refers to them once the keyframe's GOP starts), as ffmpeg's copy drops them.
  const keyPts = ptsOf(video, k0)
  const videoSamples: Array<number> = []
  for (let i = k0; i <= last; i++) if (i === k0 || ptsOf(video, i) >= keyPts - 1e-9) videoSamples.push(i)
  const kept: Array<Kept> = [{
    track: video,
    samples: Int32Array.from(videoSamples),
    editMedia: video.dts[first]! - video.dts[k0]! + (video.ctts?.[first] ?? 0),
    newOffset: new Float64Array(0)
  }]

  // ffmpeg's seek of the audio input (mov_read_seek): the video lands on the last keyframe whose index
  // time is at or before the present time less the track's min_corrected_pts and dts shift, and every other
  // track on that keyframe's index time less its own min_corrected_pts. Index times count from the first
  // sample the edit presents (mov_fix_index).
  const v = ffIndex(video)
  const presentVideo = Math.round((presentAbs - video.editDelay) * video.timescale)
  let seekKey = prefix(video.n, (i) => video.dts[i]! - v.start <= presentVideo) - 1
  while (seekKey >= 0 && video.key[seekKey] !== 1) seekKey--
  const audioEnd = endAbs + 0.25
  for (const audio of audios) {
    if (audio.ctts !== undefined) unsupported("an audio track with composition offsets")
    if (audio.n === 0) continue
    const a = ffIndex(audio)
    const target = seekKey < 0
      ? -Infinity
      : Number(rescale(BigInt(video.dts[seekKey]! - v.zero), BigInt(audio.timescale), BigInt(video.timescale))) -
        a.minCorrected
    let a0 = Math.max(0, prefix(audio.n, (i) => audio.dts[i]! - a.zero <= target) - 1)
    // At least one packet before the one holding the first presented sample: an AAC frame decodes right
    // only after its predecessor (ffmpeg's own copy lacks it when the keyframe's dts is the present time).
    const holding = Math.max(0, prefix(audio.n, (i) => ptsOf(audio, i) <= presentAbs) - 1)
    a0 = Math.max(0, Math.min(a0, holding - 1))
    let a1 = -1
    for (let i = a0; i < audio.n && ptsOf(audio, i) < audioEnd; i++) a1 = i
    if (a1 < a0 || ptsOf(audio, a1) + (audio.dts[a1 + 1]! - audio.dts[a1]!) / audio.timescale < endAbs - 0.1) {
      unsupported("an audio track that ends before the rally")
    }
    const presentTicks = rescale(BigInt(presentUs), BigInt(audio.timescale), 1_000_000n)
    const delayTicks = Math.round(audio.editDelay * audio.timescale)
    const media = Number(presentTicks) - delayTicks + audio.editMedia - audio.dts[a0]!
    if (media < 0) unsupported("an audio track that starts after the rally")
    const samples = new Int32Array(a1 - a0 + 1)
    for (let i = 0; i < samples.length; i++) samples[i] = a0 + i
    kept.push({ track: audio, samples, editMedia: media, newOffset: new Float64Array(0) })
  }
  return kept
}
