/**
 * Opening a Matroska/WebM source without ffprobe: the EBML header, Segment
 * Info (duration, timestamp scale), Tracks (codec, size, language, colour,
 * stereo mode, rotation, codec configuration, codec delay, seek pre-roll)
 * and the video packet list (pts, keyframe flag) read from the block headers
 * of every Cluster, never their payloads. Matroska stores no decode times:
 * they are rebuilt from the presentation order as ffmpeg's demuxer does for
 * a stream with reordered frames. What it cannot name or model (an unknown
 * codec, compressed tracks, laced video, a file cut short, no duration) is
 * `undefined`: the caller then runs ffprobe, which also gives the typed
 * errors of bad files.
 *
 * @internal
 */
import { Domain } from "@rallycache/core"
import * as NodeFs from "node:fs"
import { keyframeInterval, packetLists, seeksByIndex } from "../export/keyframePlan.js"
import type { SourceEntry } from "./ffprobe.js"
import { EbmlFile, type Element, Id, isTopLevel, MkvUnsupported } from "./mkvEbml.js"

/** ffprobe's format_name for every Matroska/WebM file. */
const formatName = "matroska,webm"

const videoCodecs: Record<string, string> = {
  V_VP8: "vp8",
  V_VP9: "vp9",
  V_AV1: "av1",
  "V_MPEG4/ISO/AVC": "h264",
  "V_MPEGH/ISO/HEVC": "hevc"
}
const audioCodecs: Record<string, string> = {
  A_OPUS: "opus",
  A_VORBIS: "vorbis",
  A_AAC: "aac",
  "A_AAC/MPEG4/LC": "aac",
  "A_AAC/MPEG2/LC": "aac",
  A_AC3: "ac3",
  A_EAC3: "eac3",
  "A_MPEG/L3": "mp3",
  A_FLAC: "flac"
}

/** One track of the file, as its TrackEntry describes it. @internal */
export interface MkvTrack {
  readonly number: number
  /** 1 video, 2 audio, 17 subtitle... */
  readonly type: number
  readonly codecId: string
  /** ffmpeg's codec name, `undefined` when this reader does not name it. */
  readonly codec: string | undefined
  readonly codecPrivate: Buffer | undefined
  /** Nanoseconds of decoder delay (Opus pre-skip). */
  readonly codecDelay: number
  readonly seekPreRoll: number
  /** Nanoseconds per frame, 0 when not given. */
  readonly defaultDuration: number
  /** ISO 639-2 (Matroska's `Language`, default `eng`) or the BCP 47 tag when given. */
  readonly language: string
  readonly width: number
  readonly height: number
  readonly stereoMode: number | undefined
  readonly hasColour: boolean
  /** Degrees clockwise (Projection's pose roll), 0 when not given. */
  readonly rotation: number
  readonly compressed: boolean
}

/** A Matroska/WebM file read in process. @internal */
export interface Matroska {
  readonly docType: string
  /** Nanoseconds per timestamp tick. */
  readonly timestampScale: number
  /** Seconds, from Segment Info. */
  readonly duration: number
  readonly tracks: ReadonlyArray<MkvTrack>
  /** Seconds of the first presented packet of each track, codec delay taken off (as ffmpeg's demuxer does). */
  readonly firstPts: ReadonlyMap<number, number>
  /** The first video track's packets in decode order: pts (seconds), keyframe flag. */
  readonly video: { readonly pts: Float64Array; readonly key: Uint8Array } | undefined
  /** Where the Segment's data starts, and the Tracks element (header included) as it lies in the file. */
  readonly segmentStart: number
  readonly tracksAt: { readonly at: number; readonly end: number }
  /** Every Cluster: where its header starts and its timestamp (ticks), in file order. */
  readonly clusters: { readonly at: Float64Array; readonly time: Float64Array }
}

/** Whether the file at `fd` starts with an EBML header. */
const isEbml = (file: EbmlFile): boolean => file.size >= 4 && file.bytes(0, 4).readUInt32BE(0) === Id.EBML

const readTrack = (file: EbmlFile, entry: Element): MkvTrack => {
  let number = 0, type = 0, codecId = "", codecDelay = 0, seekPreRoll = 0, defaultDuration = 0
  let language = "eng", bcp47: string | undefined, codecPrivate: Buffer | undefined, compressed = false
  let width = 0, height = 0, stereoMode: number | undefined, hasColour = false, rotation = 0
  for (const e of file.children(entry.start, entry.end)) {
    switch (e.id) {
      case Id.TrackNumber: number = file.uint(e); break
      case Id.TrackType: type = file.uint(e); break
      case Id.CodecId: codecId = file.string(e); break
      case Id.CodecPrivate: codecPrivate = file.binary(e); break
      case Id.CodecDelay: codecDelay = file.uint(e); break
      case Id.SeekPreRoll: seekPreRoll = file.uint(e); break
      case Id.DefaultDuration: defaultDuration = file.uint(e); break
      case Id.Language: language = file.string(e); break
      case Id.LanguageBcp47: bcp47 = file.string(e); break
      case Id.ContentEncodings: compressed = true; break
      case Id.Video:
        for (const v of file.children(e.start, e.end)) {
          if (v.id === Id.PixelWidth) width = file.uint(v)
          else if (v.id === Id.PixelHeight) height = file.uint(v)
          else if (v.id === Id.StereoMode) stereoMode = file.uint(v)
          else if (v.id === Id.Colour) hasColour = true
          else if (v.id === Id.Projection) {
            for (const p of file.children(v.start, v.end)) if (p.id === Id.ProjectionPoseRoll) rotation = -file.float(p)
          }
        }
        break
    }
  }
  const codec = type === 1 ? videoCodecs[codecId] : type === 2 ? audioCodecs[codecId] : undefined
  return {
    number,
    type,
    codecId,
    codec,
    codecPrivate,
    codecDelay,
    seekPreRoll,
    defaultDuration,
    language: bcp47 ?? language,
    width,
    height,
    stereoMode,
    hasColour,
    rotation,
    compressed
  }
}

/**
 * The file at `path` read as Matroska/WebM, or `undefined` when it does not
 * start with an EBML header. Throws `MkvUnsupported` for what it does not model.
 *
 * @internal
 */
export const readMatroska = (fd: number): Matroska | undefined => {
  const file = new EbmlFile(fd)
  if (!isEbml(file)) return undefined
  const header = file.element(0, file.size)
  const docType = file.children(header.start, header.end).find((e) => e.id === Id.DocType)
  const docTypeName = docType === undefined ? "matroska" : file.string(docType)
  if (docTypeName !== "matroska" && docTypeName !== "webm") throw new MkvUnsupported(`EBML document type ${docTypeName}`)
  const segment = file.element(header.end, file.size)
  if (segment.id !== Id.Segment) throw new MkvUnsupported("no Segment after the EBML header")

  let timestampScale = 1_000_000
  let durationTicks: number | undefined
  let tracks: Array<MkvTrack> | undefined
  let videoTrack: MkvTrack | undefined
  let tracksAt: { at: number; end: number } | undefined
  const clusterAt: Array<number> = []
  const clusterTime: Array<number> = []
  const firstTicks = new Map<number, number>()
  const seen = new Map<number, number>()
  const pts: Array<number> = []
  const key: Array<number> = []

  const block = (at: number, end: number, clusterTime: number, keyframe: boolean | undefined) => {
    const head = file.blockHeader(at, end)
    const ticks = clusterTime + head.time
    const flags = head.flags
    const track = head.track
    // Decode order: a track's first presented packet is among its first few (reordering is bounded).
    const count = seen.get(track) ?? 0
    seen.set(track, count + 1)
    if (count < 64 && ticks < (firstTicks.get(track) ?? Infinity)) firstTicks.set(track, ticks)
    if (track !== videoTrack?.number) return
    if ((flags & 0x06) !== 0) throw new MkvUnsupported("laced video blocks")
    pts.push(ticks)
    key.push((keyframe ?? (flags & 0x80) !== 0) ? 1 : 0)
  }

  const cluster = (e: Element) => {
    let time: number | undefined
    for (let at = e.start; at < e.end;) {
      const c = file.element(at, e.end)
      if (e.unknownSize && isTopLevel(c.id)) return c.at
      if (c.unknownSize) throw new MkvUnsupported(`an element of unknown size inside a cluster at byte ${c.at}`)
      if (c.id === Id.Timestamp) {
        time = file.uint(c)
        clusterAt.push(e.at)
        clusterTime.push(time)
      } else if (c.id === Id.SimpleBlock || c.id === Id.BlockGroup) {
        if (time === undefined) throw new MkvUnsupported(`a cluster at byte ${e.at} has no timestamp before its blocks`)
        if (c.id === Id.SimpleBlock) block(c.start, c.end, time, undefined)
        else {
          const parts = file.children(c.start, c.end)
          const inner = parts.find((p) => p.id === Id.Block)
          if (inner !== undefined) block(inner.start, inner.end, time, !parts.some((p) => p.id === Id.ReferenceBlock))
        }
      }
      at = c.end
    }
    return e.end
  }

  for (let at = segment.start; at < segment.end;) {
    const e = file.element(at, segment.end)
    if (e.id === Id.Cluster) {
      if (tracks === undefined) throw new MkvUnsupported("a cluster comes before the track list")
      at = cluster(e)
      continue
    }
    if (e.unknownSize) throw new MkvUnsupported(`a top-level element of unknown size at byte ${e.at}`)
    if (e.id === Id.Info) {
      for (const i of file.children(e.start, e.end)) {
        if (i.id === Id.TimestampScale) timestampScale = file.uint(i)
        else if (i.id === Id.Duration) durationTicks = file.float(i)
      }
    } else if (e.id === Id.Tracks) {
      tracks = file.children(e.start, e.end).filter((t) => t.id === Id.TrackEntry).map((t) => readTrack(file, t))
      tracksAt = { at: e.at, end: e.end }
      videoTrack = tracks.find((t) => t.type === 1)
    }
    at = e.end
  }
  if (tracks === undefined || tracksAt === undefined) throw new MkvUnsupported("no track list")
  if (durationTicks === undefined) throw new MkvUnsupported("Segment Info gives no duration")
  // Seconds as ffprobe prints them (to the microsecond), so both give the same times to the last bit.
  const seconds = (ticks: number) => Math.round((ticks * timestampScale) / 1000) / 1e6
  const firstPts = new Map<number, number>()
  for (const t of tracks) {
    const first = firstTicks.get(t.number)
    // ffmpeg's demuxer presents every block `CodecDelay` earlier, rounded to the track's ticks.
    if (first !== undefined) firstPts.set(t.number, seconds(first - Math.round(t.codecDelay / timestampScale)))
  }
  return {
    docType: docTypeName,
    timestampScale,
    duration: seconds(durationTicks),
    tracks,
    firstPts,
    video: videoTrack === undefined
      ? undefined
      : { pts: Float64Array.from(pts, seconds), key: Uint8Array.from(key) },
    segmentStart: segment.start,
    tracksAt,
    clusters: { at: Float64Array.from(clusterAt), time: Float64Array.from(clusterTime) }
  }
}

/** The file read when each entry was opened: a cut reads only the clusters of its rally. */
const opened = new WeakMap<SourceEntry, Matroska>()

/** The Matroska structure `entry` was opened from, or `undefined` when `mkvProbe` did not open it. @internal */
export const matroskaOf = (entry: SourceEntry): Matroska | undefined => opened.get(entry)

/**
 * Decode times of packets that carry only presentation times: with frames
 * reordered `delay` deep, the i-th packet decodes at the (i - delay)-th
 * smallest presentation time; the first `delay` have none, and ffprobe's
 * lists then show their presentation time (as `parsePackets` reads them).
 */
const decodeTimes = (pts: Float64Array): Float64Array => {
  let delay = 0
  for (let i = 0; i < pts.length; i++) {
    let later = 0
    for (let j = Math.max(0, i - 16); j < i; j++) if (pts[j]! > pts[i]!) later++
    delay = Math.max(delay, later)
  }
  if (delay === 0) return pts
  const sorted = Float64Array.from(pts).sort()
  return pts.map((p, i) => i < delay ? p : sorted[i - delay]!)
}

/**
 * The probe of the Matroska/WebM file at `path` read in process, with its
 * keyframe list, or `undefined` to leave it to ffprobe.
 *
 * @internal
 */
export const mkvProbe = (path: string, fingerprint: string): SourceEntry | undefined => {
  let fd: number | undefined
  try {
    fd = NodeFs.openSync(path, "r")
    const mkv = readMatroska(fd)
    if (mkv === undefined) return undefined
    const entry = entryOf(path, fingerprint, mkv)
    if (entry !== undefined) opened.set(entry, mkv)
    return entry
  } catch {
    // MkvUnsupported, a read past a malformed header's bounds, an I/O error: ffprobe opens it, or says what is wrong.
    return undefined
  } finally {
    if (fd !== undefined) NodeFs.closeSync(fd)
  }
}

/** `num / den` as the nearest fraction whose terms are at most `max` (ffmpeg's `av_reduce` of a frame duration). */
const reduced = (num: number, den: number, max: number): number => {
  let [pn, pd, qn, qd] = [0, 1, 1, 0]
  for (let n = num, d = den; d !== 0;) {
    const x = Math.floor(n / d)
    const [rn, rd] = [x * qn + pn, x * qd + pd]
    if (rn > max || rd > max) break
    ;[pn, pd, qn, qd] = [qn, qd, rn, rd]
    ;[n, d] = [d, n - x * d]
  }
  return qn / qd
}

const entryOf = (path: string, fingerprint: string, mkv: Matroska): SourceEntry | undefined => {
  const videos = mkv.tracks.filter((t) => t.type === 1)
  const audios = mkv.tracks.filter((t) => t.type === 2)
  const video = videos[0]
  if (video === undefined || mkv.video === undefined || mkv.video.pts.length === 0) return undefined
  if (videos.length > 1 || [video, ...audios].some((t) => t.codec === undefined || t.compressed)) return undefined
  if (!(mkv.duration > 0)) return undefined
  const starts = [video, ...audios].map((t) => mkv.firstPts.get(t.number)).filter((t) => t !== undefined)
  const startTime = Math.min(...starts)
  const list = mkv.video
  const dts = decodeTimes(list.pts)
  const lists = packetLists({ pts: list.pts, dts, key: list.key }, startTime)
  const span = lists.framePts.length > 1 ? lists.framePts[lists.framePts.length - 1]! - lists.framePts[0]! : 0
  const frameRate = video.defaultDuration > 0
    ? reduced(1e9, video.defaultDuration, 30000)
    : span > 0
    ? (lists.framePts.length - 1) / span
    : null
  return {
    path,
    info: new Domain.SourceInfo({
      fingerprint,
      duration: mkv.duration,
      keyframeInterval: keyframeInterval(lists.keyframes),
      hasVideo: true,
      hasAudio: audios.length > 0,
      frameRate
    }),
    format: formatName,
    startTime,
    layout: {
      video: video.codec!,
      videoTag: "[0][0][0][0]",
      audio: audios.map((t) => t.codec!),
      seekByIndex: seeksByIndex(formatName),
      videoDelay: dts !== list.pts,
      mov: false
    },
    keyframes: lists.keyframes,
    framePts: lists.framePts,
    packets: lists.packets,
    truncated: undefined
  }
}
