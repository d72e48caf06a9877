/**
 * Reading EBML (the element syntax of Matroska and WebM) from a file by
 * position: element headers and small values through one read window, so a
 * walk over a long file's block headers reads a few kilobytes per block and
 * never holds frame payloads.
 *
 * @internal
 */
import * as NodeFs from "node:fs"

/** A file the in-process reader does not model or that is cut short; the caller leaves it to ffprobe. @internal */
export class MkvUnsupported extends Error {}

/** Matroska element IDs this project reads (marker bits kept, as the specification writes them). @internal */
export const Id = {
  EBML: 0x1a45dfa3,
  DocType: 0x4282,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  Duration: 0x4489,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  FlagEnabled: 0xb9,
  CodecId: 0x86,
  CodecPrivate: 0x63a2,
  CodecDelay: 0x56aa,
  SeekPreRoll: 0x56bb,
  DefaultDuration: 0x23e383,
  Language: 0x22b59c,
  LanguageBcp47: 0x22b59d,
  ContentEncodings: 0x6d80,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  StereoMode: 0x53b8,
  Colour: 0x55b0,
  Projection: 0x7670,
  ProjectionPoseRoll: 0x7675,
  Audio: 0xe1,
  SamplingFrequency: 0xb5,
  Channels: 0x9f,
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  ReferenceBlock: 0xfb,
  BlockDuration: 0x9b,
  EbmlVersion: 0x4286,
  EbmlReadVersion: 0x42f7,
  EbmlMaxIdLength: 0x42f2,
  EbmlMaxSizeLength: 0x42f3,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Seek: 0x4dbb,
  SeekId: 0x53ab,
  SeekPosition: 0x53ac,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  CuePoint: 0xbb,
  CueTime: 0xb3,
  CueTrackPositions: 0xb7,
  CueTrack: 0xf7,
  CueClusterPosition: 0xf1,
  Cues: 0x1c53bb6b,
  Tags: 0x1254c367,
  Chapters: 0x1043a770,
  Attachments: 0x1941a469,
  SeekHead: 0x114d9b74
} as const

/** IDs that end a Cluster of unknown size (the next top-level element). */
const topLevel: ReadonlySet<number> = new Set([
  Id.Cluster,
  Id.Cues,
  Id.Tags,
  Id.Chapters,
  Id.Attachments,
  Id.SeekHead,
  Id.Info,
  Id.Tracks
])

/** Whether `id` is a Segment child, which ends an unknown-sized Cluster. @internal */
export const isTopLevel = (id: number): boolean => topLevel.has(id)

/** An element: its ID, where its header starts, where its data starts and ends (`end` is the parent's end for an unknown size). @internal */
export interface Element {
  readonly id: number
  readonly at: number
  readonly start: number
  readonly end: number
  readonly unknownSize: boolean
}

/** The largest value (string, binary) read whole: codec configurations are a few hundred bytes. */
const maxValue = 1 << 20
const windowSize = 16 * 1024

/**
 * One file read by position through a window of 16 KB (grown for a larger
 * value), with a position-independent element reader on top.
 *
 * @internal
 */
export class EbmlFile {
  readonly size: number
  private window = Buffer.alloc(windowSize)
  private windowAt = 0
  private windowLength = 0

  constructor(private readonly fd: number) {
    this.size = NodeFs.fstatSync(fd).size
  }

  /** `length` bytes from `at` (a view valid until the next read); throws when the file ends first. */
  bytes(at: number, length: number): Buffer {
    const offset = this.ensure(at, length)
    return this.window.subarray(offset, offset + length)
  }

  /** Where `length` bytes from `at` start in the window, read first when it does not hold them. */
  private ensure(at: number, length: number): number {
    if (at < 0 || at + length > this.size) throw new MkvUnsupported(`the file ends at byte ${this.size}, inside an element at byte ${at}`)
    if (at < this.windowAt || at + length > this.windowAt + this.windowLength) {
      if (length > this.window.length) this.window = Buffer.alloc(length)
      this.windowLength = NodeFs.readSync(this.fd, this.window, 0, Math.min(this.window.length, this.size - at), at)
      this.windowAt = at
      if (this.windowLength < length) throw new MkvUnsupported(`cannot read ${length} bytes at byte ${at}`)
    }
    return at - this.windowAt
  }

  /** The element whose header starts at `at`, inside a parent ending at `parentEnd`. */
  element(at: number, parentEnd: number): Element {
    const available = Math.min(12, this.size - at)
    const offset = this.ensure(at, available)
    const limit = offset + available
    const id = vint(this.window, offset, limit, true)
    if (id.length > 4) throw new MkvUnsupported(`a malformed element ID at byte ${at}`)
    const size = vint(this.window, offset + id.length, limit, false)
    const start = at + id.length + size.length
    const unknownSize = size.value < 0
    const end = unknownSize ? parentEnd : start + size.value
    if (end > parentEnd) throw new MkvUnsupported(`an element at byte ${at} overruns its parent (the file is cut short or malformed)`)
    return { id: id.value, at, start, end, unknownSize }
  }

  /**
   * The header of the (Simple)Block whose data is `[start, end)`: its track
   * number, its timestamp relative to the cluster's, and its flags.
   */
  blockHeader(start: number, end: number): { readonly track: number; readonly time: number; readonly flags: number } {
    const available = Math.min(end - start, 12)
    const offset = this.ensure(start, available)
    const track = vint(this.window, offset, offset + available, false)
    if (track.length + 3 > available) throw new MkvUnsupported(`a block at byte ${start} is cut short`)
    const at = offset + track.length
    return { track: track.value, time: this.window.readInt16BE(at), flags: this.window[at + 2]! }
  }

  /** The children of `[from, to)`, in order. */
  children(from: number, to: number): Array<Element> {
    const out: Array<Element> = []
    for (let at = from; at < to;) {
      const e = this.element(at, to)
      out.push(e)
      if (e.unknownSize) break
      at = e.end
    }
    return out
  }

  uint(e: Element): number {
    if (e.end - e.start > 8) throw new MkvUnsupported(`an integer of ${e.end - e.start} bytes at byte ${e.at}`)
    const b = this.bytes(e.start, e.end - e.start)
    let value = 0
    for (const byte of b) value = value * 256 + byte
    return value
  }

  float(e: Element): number {
    const length = e.end - e.start
    if (length === 0) return 0
    if (length === 4) return this.bytes(e.start, 4).readFloatBE(0)
    if (length === 8) return this.bytes(e.start, 8).readDoubleBE(0)
    throw new MkvUnsupported(`a float of ${length} bytes at byte ${e.at}`)
  }

  string(e: Element): string {
    return this.binary(e).toString("utf8").replace(/\0+$/, "")
  }

  /** A copy of the element's data (at most 1 MB). */
  binary(e: Element): Buffer {
    if (e.end - e.start > maxValue) throw new MkvUnsupported(`a value of ${e.end - e.start} bytes at byte ${e.at}`)
    return Buffer.from(this.bytes(e.start, e.end - e.start))
  }
}

/**
 * An EBML variable-length integer at `at` (bytes up to `limit`): with its
 * marker (IDs) or without (sizes; -1 for "unknown").
 *
 * @internal
 */
export const vint = (buffer: Buffer, at: number, limit: number, keepMarker: boolean): { value: number; length: number } => {
  const first = at < limit ? buffer[at]! : 0
  if (first === 0) throw new MkvUnsupported("a malformed or cut short element header")
  const length = Math.clz32(first) - 23
  if (at + length > limit) throw new MkvUnsupported("an element header is cut short")
  let value = keepMarker ? first : first & (0xff >> length)
  let allOnes = value === 0xff >> length
  for (let i = 1; i < length; i++) {
    const byte = buffer[at + i]!
    value = value * 256 + byte
    if (byte !== 0xff) allOnes = false
  }
  return { value: !keepMarker && allOnes ? -1 : value, length }
}
