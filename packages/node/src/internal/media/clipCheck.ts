/**
 * Checking a new clip in process, instead of starting ffprobe: read its
 * container (mp4/mov boxes, or Matroska/WebM elements), list its streams
 * and their durations, and check that every sample the index points to lies
 * inside the file. A clip cut short, padded, emptied or not media fails.
 * What it cannot see is a damaged payload: the periodic deep check (a real
 * decode) is for that.
 *
 * @internal
 */
import { Data, Effect } from "effect"
import * as NodeFs from "node:fs"
import { type Box, BoxError, boxesIn, child, headerAt, timing } from "./mp4Boxes.js"
import { Id, MkvUnsupported, vint as readVint } from "./mkvEbml.js"

/** @internal */
export type StreamKind = "video" | "audio" | "other"

/** @internal */
export interface ClipStream {
  readonly kind: StreamKind
  /** Seconds covered by its samples. */
  readonly duration: number
  readonly samples: number
}

/** @internal */
export interface ClipInfo {
  readonly container: "mp4" | "matroska"
  /** The container's own duration (mvhd, or Matroska's Info), else the longest stream's. */
  readonly duration: number
  readonly streams: ReadonlyArray<ClipStream>
  readonly size: number
}

/** @internal */
export class ClipInvalid extends Data.TaggedError("ClipInvalid")<{ readonly detail: string }> {}

const fail = (detail: string): never => {
  throw new ClipInvalid({ detail })
}

/** Reads of one open file, by position; bounded so a corrupt size cannot make us allocate gigabytes. */
class Reader {
  constructor(readonly fd: number, readonly size: number) {}
  read(position: number, length: number): Buffer {
    if (length > 64 * 1024 * 1024) fail(`a ${length}-byte header is larger than any clip index`)
    const buffer = Buffer.allocUnsafe(length)
    const got = NodeFs.readSync(this.fd, buffer, 0, length, position)
    if (got < length) fail(`the file ends at byte ${this.size}, inside an element that starts at ${position}`)
    return buffer
  }
}

// ---- mp4 / mov ---------------------------------------------------------------

const topLevelBoxes = (reader: Reader): Array<Box> => {
  const boxes: Array<Box> = []
  let at = 0
  while (at < reader.size) {
    if (reader.size - at < 8) fail(`${reader.size - at} stray bytes at the end of the file`)
    const head = reader.read(at, Math.min(16, reader.size - at))
    if (!/^[\x20-\x7e]{4}$/.test(head.toString("latin1", 4, 8))) fail(`no mp4 box at byte ${at}`)
    const { header, size, type } = headerAt(head, 0, reader.size - at)
    if (size < header) fail(`the ${type} box at byte ${at} has an impossible size ${size}`)
    if (at + size > reader.size) {
      fail(`the ${type} box at byte ${at} needs ${size} bytes but the file ends after ${reader.size - at}`)
    }
    boxes.push({ type, start: at + header, end: at + size })
    at += size
  }
  return boxes
}

const trackOf = (moov: Buffer, trak: Box, inData: (start: number, end: number) => boolean): ClipStream => {
  const need = (parent: Box, type: string): Box => child(moov, parent, type) ?? fail(`a track has no ${type} box`)
  const mdia = need(trak, "mdia")
  const { timescale } = timing(moov, need(mdia, "mdhd"))
  if (timescale === 0) fail("a track has a zero timescale")
  const handler = moov.toString("latin1", need(mdia, "hdlr").start + 8, need(mdia, "hdlr").start + 12)
  const kind: StreamKind = handler === "vide" ? "video" : handler === "soun" ? "audio" : "other"
  const stbl = need(need(mdia, "minf"), "stbl")

  const stsz = need(stbl, "stsz")
  const fixedSize = moov.readUInt32BE(stsz.start + 4)
  const samples = moov.readUInt32BE(stsz.start + 8)
  if (fixedSize === 0 && stsz.start + 12 + 4 * samples > stsz.end) fail("the sample size table is cut short")
  const sizeOf = (i: number) => fixedSize !== 0 ? fixedSize : moov.readUInt32BE(stsz.start + 12 + 4 * i)

  const stts = need(stbl, "stts")
  const sttsCount = moov.readUInt32BE(stts.start + 4)
  if (stts.start + 8 + 8 * sttsCount > stts.end) fail("the sample time table is cut short")
  let timed = 0
  let ticks = 0
  for (let i = 0; i < sttsCount; i++) {
    const count = moov.readUInt32BE(stts.start + 8 + 8 * i)
    timed += count
    ticks += count * moov.readUInt32BE(stts.start + 12 + 8 * i)
  }
  if (timed !== samples) fail(`a ${kind} track times ${timed} samples but sizes ${samples}`)

  const stco = child(moov, stbl, "stco")
  const co64 = stco === undefined ? need(stbl, "co64") : undefined
  const offsets = (stco ?? co64)!
  const chunks = moov.readUInt32BE(offsets.start + 4)
  if (offsets.start + 8 + chunks * (co64 ? 8 : 4) > offsets.end) fail("the chunk offset table is cut short")
  const chunkOffset = (i: number) =>
    co64 ? Number(moov.readBigUInt64BE(offsets.start + 8 + 8 * i)) : moov.readUInt32BE(offsets.start + 8 + 4 * i)

  const stsc = need(stbl, "stsc")
  const runs = moov.readUInt32BE(stsc.start + 4)
  if (stsc.start + 8 + 12 * runs > stsc.end) fail("the sample-to-chunk table is cut short")
  let sample = 0
  for (let r = 0; r < runs; r++) {
    const first = moov.readUInt32BE(stsc.start + 8 + 12 * r) - 1
    const perChunk = moov.readUInt32BE(stsc.start + 12 + 12 * r)
    const last = r + 1 < runs ? moov.readUInt32BE(stsc.start + 8 + 12 * (r + 1)) - 1 : chunks
    if (first < 0 || last > chunks || last < first) fail("the sample-to-chunk table points past the chunks")
    for (let c = first; c < last; c++) {
      const start = chunkOffset(c)
      let end = start
      for (let s = 0; s < perChunk && sample < samples; s++) end += sizeOf(sample++)
      if (!inData(start, end)) fail(`a ${kind} chunk at bytes ${start}-${end} lies outside the media data`)
    }
  }
  if (sample !== samples) fail(`a ${kind} track's chunks hold ${sample} of its ${samples} samples`)
  return { kind, duration: ticks / timescale, samples }
}

const inspectMp4 = (reader: Reader): ClipInfo => {
  const top = topLevelBoxes(reader)
  const moovBox = top.find((b) => b.type === "moov") ?? fail("the file has no moov box (not an mp4, or cut short)")
  const mdats = top.filter((b) => b.type === "mdat")
  const moov = reader.read(moovBox.start, moovBox.end - moovBox.start)
  const root: Box = { type: "moov", start: 0, end: moov.length }
  const inData = (start: number, end: number) => mdats.some((m) => start >= m.start && end <= m.end)
  const streams = boxesIn(moov, 0, moov.length, moovBox.start)
    .filter((b) => b.type === "trak")
    .map((trak) => trackOf(moov, trak, inData))
  const mvhd = child(moov, root, "mvhd") ?? fail("the moov box has no mvhd")
  const movie = timing(moov, mvhd)
  const longest = Math.max(0, ...streams.map((s) => s.duration))
  return {
    container: "mp4",
    duration: movie.timescale > 0 && movie.duration > 0 ? movie.duration / movie.timescale : longest,
    streams,
    size: reader.size
  }
}

// ---- Matroska / WebM ---------------------------------------------------------


/** An EBML variable-length integer (`mkvEbml.vint`), its faults as the clip's. */
const vint = (buffer: Buffer, at: number, keepMarker: boolean): { value: number; length: number } => {
  try {
    return readVint(buffer, at, buffer.length, keepMarker)
  } catch (error) {
    if (error instanceof MkvUnsupported) return fail(error.message)
    throw error
  }
}

interface Element {
  readonly id: number
  readonly start: number
  /** -1 when the size is unknown (a live-written segment or cluster). */
  readonly end: number
}

const elementsIn = (buffer: Buffer, from: number, to: number): Array<Element> => {
  const out: Array<Element> = []
  let at = from
  while (at < to) {
    const id = vint(buffer, at, true)
    const size = vint(buffer, at + id.length, false)
    const start = at + id.length + size.length
    const end = size.value < 0 ? to : start + size.value
    if (end > to) fail(`an element at byte ${at} overruns its parent`)
    out.push({ id: id.value, start, end })
    at = end
  }
  return out
}

const uintOf = (buffer: Buffer, e: Element): number => {
  let value = 0
  for (let i = e.start; i < e.end; i++) value = value * 256 + buffer[i]!
  return value
}

const inspectMatroska = (reader: Reader): ClipInfo => {
  const headBuffer = reader.read(0, Math.min(reader.size, 12))
  const ebmlSize = vint(headBuffer, 4, false)
  let at = 4 + ebmlSize.length + ebmlSize.value
  if (ebmlSize.value < 0 || at + 12 > reader.size) fail("the file holds no more than an EBML header")
  const segmentHead = reader.read(at, Math.min(12, reader.size - at))
  const segmentId = vint(segmentHead, 0, true)
  if (segmentId.value !== Id.Segment) fail("no Matroska segment after the EBML header")
  const segmentSize = vint(segmentHead, segmentId.length, false)
  at += segmentId.length + segmentSize.length
  const segmentEnd = segmentSize.value < 0 ? reader.size : at + segmentSize.value
  if (segmentEnd > reader.size) {
    fail(`the segment needs ${segmentEnd} bytes but the file ends after ${reader.size}`)
  }

  let timecodeScale = 1_000_000
  let declared = 0
  const types = new Map<number, StreamKind>()
  const spans = new Map<number, { first: number; last: number; samples: number }>()
  const sawBlock = (track: number, time: number) => {
    const span = spans.get(track)
    if (span === undefined) spans.set(track, { first: time, last: time, samples: 1 })
    else {
      span.first = Math.min(span.first, time)
      span.last = Math.max(span.last, time)
      span.samples++
    }
  }
  const blockAt = (buffer: Buffer, e: Element, clusterTime: number) => {
    const track = vint(buffer, e.start, false)
    if (e.start + track.length + 2 > e.end) fail("a block is cut short")
    sawBlock(track.value, clusterTime + buffer.readInt16BE(e.start + track.length))
  }

  while (at < segmentEnd) {
    const head = reader.read(at, Math.min(16, segmentEnd - at))
    const id = vint(head, 0, true)
    const size = vint(head, id.length, false)
    const start = at + id.length + size.length
    // Only a cluster may have an unknown size here; it then runs to the next top-level element or the end.
    const end = size.value < 0 ? segmentEnd : start + size.value
    if (end > segmentEnd) {
      fail(`an element at byte ${at} needs ${end - at} bytes but the ${segmentEnd === reader.size ? "file" : "segment"} ends after ${segmentEnd - at}`)
    }
    if (id.value === Id.Info || id.value === Id.Tracks || id.value === Id.Cluster) {
      const body = reader.read(start, end - start)
      const children = elementsIn(body, 0, body.length)
      if (id.value === Id.Info) {
        for (const e of children) {
          if (e.id === Id.TimestampScale) timecodeScale = uintOf(body, e)
          if (e.id === Id.Duration) declared = e.end - e.start === 4 ? body.readFloatBE(e.start) : body.readDoubleBE(e.start)
        }
      } else if (id.value === Id.Tracks) {
        for (const entry of children.filter((e) => e.id === Id.TrackEntry)) {
          const fields = elementsIn(body, entry.start, entry.end)
          const number = fields.find((f) => f.id === Id.TrackNumber)
          const type = fields.find((f) => f.id === Id.TrackType)
          if (number === undefined) fail("a track has no number")
          const t = type === undefined ? 0 : uintOf(body, type)
          types.set(uintOf(body, number!), t === 1 ? "video" : t === 2 ? "audio" : "other")
        }
      } else {
        const timecode = children.find((e) => e.id === Id.Timestamp)
        const clusterTime = timecode === undefined ? 0 : uintOf(body, timecode)
        for (const e of children) {
          if (e.id === Id.SimpleBlock) blockAt(body, e, clusterTime)
          else if (e.id === Id.BlockGroup) {
            const block = elementsIn(body, e.start, e.end).find((b) => b.id === Id.Block)
            if (block !== undefined) blockAt(body, block, clusterTime)
          }
        }
      }
    }
    at = end
  }
  if (types.size === 0) fail("the file has no Tracks element")
  const tick = timecodeScale / 1e9
  const streams: Array<ClipStream> = [...types].map(([number, kind]) => {
    const span = spans.get(number)
    if (span === undefined) return { kind, duration: 0, samples: 0 }
    // The last block lasts about one frame: estimate it from the mean spacing.
    const step = span.samples > 1 ? (span.last - span.first) / (span.samples - 1) : 0
    return { kind, duration: (span.last - span.first + step) * tick, samples: span.samples }
  })
  const longest = Math.max(0, ...streams.map((s) => s.duration))
  return { container: "matroska", duration: declared > 0 ? declared * tick : longest, streams, size: reader.size }
}

// ---- entry points ------------------------------------------------------------

const inspectSync = (path: string): ClipInfo => {
  const fd = NodeFs.openSync(path, "r")
  try {
    const size = NodeFs.fstatSync(fd).size
    if (size === 0) fail("the file is empty")
    const reader = new Reader(fd, size)
    const magic = reader.read(0, Math.min(size, 12))
    if (magic.length >= 4 && magic.readUInt32BE(0) === 0x1a45dfa3) return inspectMatroska(reader)
    if (magic.length >= 8 && /^(ftyp|moov|mdat|free|skip|wide)$/.test(magic.toString("latin1", 4, 8))) {
      return inspectMp4(reader)
    }
    return fail("not an mp4 or Matroska/WebM file")
  } finally {
    NodeFs.closeSync(fd)
  }
}

/**
 * Read a clip's container and index: its streams, their durations, and
 * whether every sample lies inside the file.
 *
 * @internal
 */
export const inspect = (path: string): Effect.Effect<ClipInfo, ClipInvalid> =>
  Effect.try({
    try: () => inspectSync(path),
    catch: (error) =>
      error instanceof ClipInvalid
        ? error
        : error instanceof BoxError
        ? new ClipInvalid({ detail: error.message })
        : error instanceof RangeError
        ? new ClipInvalid({ detail: `the container's index is malformed (${error.message})` })
        : new ClipInvalid({ detail: `cannot read the clip: ${error instanceof Error ? error.message : String(error)}` })
  })

/** @internal */
export interface Expectation {
  readonly duration: number
  readonly video: boolean
  readonly audio: boolean
}

/**
 * Check a new clip against what the export should have written: the
 * streams, each with samples, the video's duration and the container's
 * within tolerance of the expected one. The audio's own duration is not
 * held to it: a source's audio may end before its picture.
 *
 * @internal
 */
export const check = (path: string, expected: Expectation): Effect.Effect<ClipInfo, ClipInvalid> =>
  Effect.flatMap(inspect(path), (info) => {
    const tolerance = 0.5 + 0.02 * expected.duration
    const off = (seconds: number) => !Number.isFinite(seconds) || Math.abs(seconds - expected.duration) > tolerance
    for (const kind of ["video", "audio"] as const) {
      if (!expected[kind]) continue
      const stream = info.streams.find((s) => s.kind === kind)
      if (stream === undefined) return Effect.fail(new ClipInvalid({ detail: `the clip has no ${kind} stream` }))
      if (stream.samples === 0) return Effect.fail(new ClipInvalid({ detail: `the clip's ${kind} stream is empty` }))
      if (kind === "video" && off(stream.duration)) {
        return Effect.fail(
          new ClipInvalid({
            detail: `the clip's ${kind} lasts ${stream.duration.toFixed(3)} s instead of ${expected.duration.toFixed(3)} s`
          })
        )
      }
    }
    if (off(info.duration)) {
      return Effect.fail(
        new ClipInvalid({
          detail: `the clip lasts ${info.duration.toFixed(3)} s instead of ${expected.duration.toFixed(3)} s`
        })
      )
    }
    return Effect.succeed(info)
  })
