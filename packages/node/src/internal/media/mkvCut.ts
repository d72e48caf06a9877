/**
 * The in-process copy cut of a Matroska/WebM source into a Matroska/WebM
 * clip: the blocks ffmpeg's stream copy keeps (video from the planned
 * keyframe for the presented length, every audio track from the keyframe for
 * the audio length the plan gives ffmpeg), timestamps rebased on the
 * keyframe, copied as they lie in the source in pieces of 4 MB behind a new
 * header (SeekHead, Info, the source's Tracks verbatim, Cues: one point per
 * video keyframe) whose size is computed before the clusters are written.
 * Only the clusters around the rally are read. What it does not model
 * (frames reordered, other track kinds, laced or compressed blocks, block
 * additions, a codec delay outside Opus) throws `MkvUnsupported` before
 * anything is written: the caller leaves the cut to ffmpeg.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import type { SourceEntry } from "./ffprobe.js"
import { EbmlFile, Id, MkvUnsupported } from "./mkvEbml.js"
import { type Matroska, matroskaOf } from "./mkvProbe.js"

/** What the cut keeps, in source seconds relative to the file's start (as the plan's times). @internal */
export interface MkvCutPlan {
  /** The keyframe the clip starts at (its pts). */
  readonly keyframe: number
  /** Seconds of video from the keyframe (ffmpeg's `-t` of the video input). */
  readonly presented: number
  /** Seconds of audio from the keyframe (ffmpeg's `-t` of the audio input). */
  readonly audioDuration: number
  readonly docType: "webm" | "matroska"
}

/** @internal */
export interface MkvCutResult {
  readonly bytes: number
  readonly videoFrames: number
  readonly tracks: number
}

interface Block {
  readonly track: number
  /** Timestamp in the clip (ticks). */
  readonly time: number
  readonly flags: number
  readonly key: boolean
  /** The frame's bytes in the source. */
  readonly dataAt: number
  readonly size: number
}

const unsupported = (reason: string): never => {
  throw new MkvUnsupported(reason)
}

// ---- EBML writing ----------------------------------------------------------

const idBytes = (id: number): Buffer => {
  const length = id > 0xffffff ? 4 : id > 0xffff ? 3 : id > 0xff ? 2 : 1
  const out = Buffer.alloc(length)
  out.writeUIntBE(id, 0, length)
  return out
}

/** `value` as `bytes` big-endian bytes. */
const bigEndian = (value: number, bytes: number): Buffer => {
  const out = Buffer.alloc(bytes)
  for (let i = bytes - 1, v = value; i >= 0; i--, v = Math.floor(v / 256)) out[i] = v % 256
  return out
}

/** A size as an 8-byte vint (so a size is known before the data it measures). */
const size8 = (n: number): Buffer => {
  const out = bigEndian(n, 8)
  out[0] = 1
  return out
}

const element = (id: number, data: Buffer): Buffer => Buffer.concat([idBytes(id), size8(data.length), data])

const uint = (id: number, value: number, bytes = 8): Buffer => element(id, bigEndian(value, bytes))

const text = (id: number, value: string): Buffer => element(id, Buffer.from(value, "utf8"))

const float = (id: number, value: number): Buffer => {
  const data = Buffer.alloc(8)
  data.writeDoubleBE(value, 0)
  return element(id, data)
}

/** The header every block gets: SimpleBlock ID, 8-byte size, track (one byte), timestamp, flags. */
const blockHeaderBytes = 1 + 8 + 1 + 2 + 1
const clusterHeaderBytes = 4 + 8 + (1 + 8 + 8)
const cuePointBytes = 1 + 8 + (1 + 8 + 8) + (1 + 8 + (1 + 8 + 1) + (1 + 8 + 8))
const seekBytes = 2 + 8 + (2 + 8 + 4) + (2 + 8 + 8)

// ---- reading the rally's blocks ----------------------------------------------

/** The blocks of the clusters that may hold `[fromTicks, toTicks]`, in file order. */
const blocksAround = (file: EbmlFile, mkv: Matroska, fromTicks: number, toTicks: number, keep: ReadonlySet<number>) => {
  const { at, time } = mkv.clusters
  // The cluster before the last one starting at or before `fromTicks`: block timestamps may sit a little before
  // their cluster's.
  let first = 0
  for (let lo = 0, hi = time.length - 1; lo <= hi;) {
    const mid = (lo + hi) >> 1
    if (time[mid]! <= fromTicks) (first = mid), (lo = mid + 1)
    else hi = mid - 1
  }
  first = Math.max(0, first - 1)
  const blocks: Array<{
    track: number
    ticks: number
    flags: number
    key: boolean
    dataAt: number
    size: number
    extra: number | undefined
  }> = []
  for (let c = first; c < at.length && (c === first || time[c - 1]! <= toTicks); c++) {
    const cluster = file.element(at[c]!, file.size)
    for (let pos = cluster.start; pos < cluster.end;) {
      const e = file.element(pos, cluster.end)
      if (cluster.unknownSize && e.id === Id.Cluster) break
      pos = e.end
      let body = e
      let key: boolean | undefined
      let extra: number | undefined
      if (e.id === Id.BlockGroup) {
        const parts = file.children(e.start, e.end)
        body = parts.find((p) => p.id === Id.Block) ?? unsupported(`a block group at byte ${e.at} has no block`)
        key = !parts.some((p) => p.id === Id.ReferenceBlock)
        // Discard padding, block additions: side data a SimpleBlock cannot carry.
        extra = parts.find((p) => p.id !== Id.Block && p.id !== Id.ReferenceBlock && p.id !== Id.BlockDuration)?.id
      } else if (e.id !== Id.SimpleBlock) continue
      const head = file.blockHeader(body.start, body.end)
      if (!keep.has(head.track)) continue
      if ((head.flags & 0x06) !== 0) unsupported("laced blocks")
      const headerLength = head.track < 0x7f ? 4 : unsupported(`track number ${head.track}`)
      blocks.push({
        track: head.track,
        ticks: time[c]! + head.time,
        flags: head.flags & 0x09,
        key: key ?? (head.flags & 0x80) !== 0,
        dataAt: body.start + headerLength,
        size: body.end - body.start - headerLength,
        extra
      })
    }
  }
  return blocks
}

/**
 * Cut `plan` of the Matroska/WebM source at `source` (opened by `mkvProbe`
 * as `entry`) into `target`.
 *
 * @internal
 */
export const cutMkv = async (
  source: string,
  target: string,
  plan: MkvCutPlan,
  entry: SourceEntry,
  signal?: AbortSignal
): Promise<MkvCutResult> => {
  const mkv = matroskaOf(entry) ?? unsupported("the source was not opened in process")
  if (entry.layout.videoDelay) unsupported("its video frames are reordered (decode times are guessed)")
  const video = mkv.tracks.find((t) => t.type === 1)!
  const audios = mkv.tracks.filter((t) => t.type === 2)
  if (mkv.tracks.length !== audios.length + 1) unsupported("it has tracks other than one video and audio")
  for (const t of mkv.tracks) {
    if (t.compressed) unsupported(`track ${t.number} is compressed`)
    if (t.codecDelay !== 0 && t.codec !== "opus") unsupported(`track ${t.number} has a codec delay outside Opus`)
  }
  const scale = mkv.timestampScale
  // Microseconds, as ffmpeg compares them: `-ss`/`-t` are parsed to microseconds, timestamps rescaled to them.
  const us = (ticks: number) => Math.round((ticks * scale) / 1000)
  const zeroUs = Math.round((plan.keyframe + entry.startTime) * 1e6)
  const keyTicks = Math.round((zeroUs * 1000) / scale)
  const videoUs = Math.round(plan.presented * 1e6)
  const audioUs = Math.round(plan.audioDuration * 1e6)
  const delay = new Map(mkv.tracks.map((t) => [t.number, Math.round(t.codecDelay / scale)]))
  const endTicks = keyTicks + Math.ceil((Math.max(videoUs, audioUs) * 1000) / scale)

  const fd = NodeFs.openSync(source, "r")
  let out: number | undefined
  try {
    const file = new EbmlFile(fd)
    const around = blocksAround(file, mkv, keyTicks, endTicks, new Set(mkv.tracks.map((t) => t.number)))
    // Video: from the keyframe, in decode order, while a frame starts within the presented length.
    const start = around.findIndex((b) => b.track === video.number && b.key && b.ticks === keyTicks)
    if (start < 0) unsupported("the planned keyframe is not among the blocks read")
    const kept: Array<Block> = []
    let videoFrames = 0
    let videoOpen = true
    for (let i = start; i < around.length; i++) {
      const b = around[i]!
      if (b.track !== video.number || !videoOpen) continue
      if (us(b.ticks) - zeroUs >= videoUs) {
        videoOpen = false
        continue
      }
      kept.push({ track: b.track, time: b.ticks - keyTicks, flags: b.flags, key: b.key, dataAt: b.dataAt, size: b.size })
      videoFrames++
    }
    // Audio: every packet presented from the keyframe (after its codec delay) for the audio length.
    for (const b of around) {
      if (b.track === video.number) continue
      const rel = us(b.ticks - delay.get(b.track)!) - zeroUs
      if (rel < 0 || rel >= audioUs) continue
      kept.push({ track: b.track, time: b.ticks - keyTicks, flags: b.flags, key: b.key, dataAt: b.dataAt, size: b.size })
    }
    const keptAt = new Set(kept.map((b) => b.dataAt))
    const extra = around.find((b) => b.extra !== undefined && keptAt.has(b.dataAt))
    if (extra !== undefined) unsupported(`a kept block carries element 0x${extra.extra!.toString(16)} (side data)`)
    // Interleaved by time, video first at a tie (as ffmpeg's muxer interleaves by timestamp).
    kept.sort((a, b) => a.time - b.time || Number(b.track === video.number) - Number(a.track === video.number))
    if (kept.some((b) => b.time < 0 || b.time > 2 ** 31)) unsupported("a kept block's timestamp does not fit the clip")

    // Clusters: one per video keyframe, or every 30 s (a block's timestamp is 16 bits from its cluster's).
    const clusters: Array<{ time: number; from: number; to: number; bytes: number }> = []
    for (let i = 0; i < kept.length; i++) {
      const b = kept[i]!
      const last = clusters.at(-1)
      if (last === undefined || (b.track === video.number && b.key) || b.time - last.time > 30_000) {
        clusters.push({ time: b.time, from: i, to: i + 1, bytes: clusterHeaderBytes + blockHeaderBytes + b.size })
      } else {
        last.to = i + 1
        last.bytes += blockHeaderBytes + b.size
      }
    }
    const cued = clusters.filter((c) => kept[c.from]!.track === video.number && kept[c.from]!.key)

    // The header, its size known before any position in it.
    const tracks = Buffer.from(file.bytes(mkv.tracksAt.at, mkv.tracksAt.end - mkv.tracksAt.at))
    const lastVideo = kept.filter((b) => b.track === video.number).at(-1)
    const frameTicks = video.defaultDuration / scale
    let durationTicks = lastVideo === undefined ? 0 : lastVideo.time + frameTicks
    for (const b of kept) durationTicks = Math.max(durationTicks, b.time)
    const info = element(
      Id.Info,
      Buffer.concat([
        uint(Id.TimestampScale, scale, 4),
        text(Id.MuxingApp, "rallycache"),
        text(Id.WritingApp, "rallycache"),
        float(Id.Duration, durationTicks)
      ])
    )
    const seekHeadBytes = 4 + 8 + 3 * seekBytes
    const infoAt = seekHeadBytes
    const tracksAtOut = infoAt + info.length
    const cuesAt = tracksAtOut + tracks.length
    const cuesBytes = 4 + 8 + cued.length * cuePointBytes
    let clusterAt = cuesAt + cuesBytes
    const positions = new Map<number, number>()
    for (const c of clusters) {
      positions.set(c.from, clusterAt)
      clusterAt += c.bytes
    }
    const seek = (id: number, position: number) =>
      element(Id.Seek, Buffer.concat([element(Id.SeekId, idBytes(id)), uint(Id.SeekPosition, position)]))
    const seekHead = element(
      Id.SeekHead,
      Buffer.concat([seek(Id.Info, infoAt), seek(Id.Tracks, tracksAtOut), seek(Id.Cues, cuesAt)])
    )
    const cues = element(
      Id.Cues,
      Buffer.concat(cued.map((c) =>
        element(
          Id.CuePoint,
          Buffer.concat([
            uint(Id.CueTime, c.time),
            element(
              Id.CueTrackPositions,
              Buffer.concat([uint(Id.CueTrack, video.number, 1), uint(Id.CueClusterPosition, positions.get(c.from)!)])
            )
          ])
        )
      ))
    )
    const ebml = element(
      Id.EBML,
      Buffer.concat([
        uint(Id.EbmlVersion, 1, 1),
        uint(Id.EbmlReadVersion, 1, 1),
        uint(Id.EbmlMaxIdLength, 4, 1),
        uint(Id.EbmlMaxSizeLength, 8, 1),
        text(Id.DocType, plan.docType),
        uint(Id.DocTypeVersion, 4, 1),
        uint(Id.DocTypeReadVersion, 2, 1)
      ])
    )
    const segmentBytes = clusterAt
    const head = Buffer.concat([ebml, idBytes(Id.Segment), size8(segmentBytes), seekHead, info, tracks, cues])
    if (head.length - ebml.length - 12 !== cuesAt + cuesBytes) unsupported("the header's layout does not add up")

    out = NodeFs.openSync(target, "w")
    let written = 0
    const write = (bytes: Buffer) => {
      for (let done = 0; done < bytes.length;) done += NodeFs.writeSync(out!, bytes, done, bytes.length - done)
      written += bytes.length
    }
    write(head)
    // The blocks' bytes, read in runs of up to 4 MB that lie together in the source.
    const piece = Buffer.allocUnsafe(4 << 20)
    for (const c of clusters) {
      if (signal?.aborted === true) throw new Error("the cut was interrupted")
      const blocks = kept.slice(c.from, c.to)
      write(Buffer.concat([idBytes(Id.Cluster), size8(c.bytes - 12), uint(Id.Timestamp, c.time)]))
      for (const b of blocks) {
        const header = Buffer.alloc(blockHeaderBytes)
        header.writeUInt8(Id.SimpleBlock, 0)
        size8(4 + b.size).copy(header, 1)
        header.writeUInt8(0x80 | b.track, 9)
        header.writeInt16BE(b.time - c.time, 10)
        header.writeUInt8(b.flags | (b.key ? 0x80 : 0), 12)
        write(header)
        for (let done = 0; done < b.size;) {
          const length = Math.min(piece.length, b.size - done)
          const got = NodeFs.readSync(fd, piece, 0, length, b.dataAt + done)
          if (got <= 0) unsupported(`the source ends inside a block at byte ${b.dataAt}`)
          write(piece.subarray(0, got))
          done += got
        }
      }
    }
    if (written !== ebml.length + 12 + segmentBytes) throw new Error("the clip's size differs from its layout")
    return { bytes: written, videoFrames, tracks: mkv.tracks.length }
  } finally {
    if (out !== undefined) NodeFs.closeSync(out)
    NodeFs.closeSync(fd)
  }
}
