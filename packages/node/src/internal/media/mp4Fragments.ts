/**
 * The samples of a fragmented mp4 (an empty `moov` with `mvex`/`trex`, then
 * `moof` + `mdat` pairs, as recorders and `-movflags frag_keyframe+empty_moov`
 * write) read in process: every `moof` (found by walking top-level box
 * headers, never reading an `mdat`) is read whole and its `traf`s parsed
 * (`tfhd`, `tfdt`, `trun` with the `trex` defaults) into the per-track
 * arrays the progressive reader gives (`mp4Tracks`), so the keyframe list,
 * the cut planning and the clip writer treat both layouts alike.
 *
 * Decode times come from `tfdt` (else they continue from the previous
 * fragment), as ffmpeg's demuxer times a seekable file without a complete
 * fragment index. What would make ffmpeg's index differ from these arrays
 * (fragments overlapping in time, negative composition offsets, a `sidx`
 * whose times are not the fragments' `tfdt`, another sample description,
 * a run without a data offset after the first, samples both in the moov and
 * in fragments) throws `Mp4Unsupported`, and an edit list on a fragmented
 * track is its `editRefusal`: ffmpeg then opens and cuts the file. A
 * fragment cut short by the end of the file ends the walk.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { type Box, boxesIn, child, headerAt, Mp4Unsupported } from "./mp4Boxes.js"
import type { Track } from "./mp4Tracks.js"

/** A top-level box of the file, by offset and total size. @internal */
export interface TopBox {
  readonly at: number
  readonly size: number
}

/** One track's samples read from the fragments, in decode order (see `Track`). @internal */
export type FragmentSamples = Pick<Track, "n" | "offset" | "size" | "dts" | "ctts" | "cttsMin" | "key">

const unsupported = (reason: string): never => {
  throw new Mp4Unsupported(reason)
}

/** A track's `trex` defaults. */
interface Defaults {
  readonly description: number
  readonly duration: number
  readonly size: number
  readonly flags: number
}

/** A track's samples as they are read, fragment by fragment, in typed arrays grown by doubling. */
class Growing {
  n = 0
  offset = new Float64Array(1024)
  size = new Uint32Array(1024)
  dts = new Float64Array(1024)
  ctts = new Int32Array(1024)
  key = new Uint8Array(1024)
  hasCtts = false
  /** The decode time after the last sample read. */
  end = 0
  constructor(readonly audio: boolean, readonly defaults: Defaults) {}

  /** Room for `more` samples. */
  reserve(more: number): void {
    const need = this.n + more
    if (need <= this.offset.length) return
    let room = this.offset.length
    while (room < need) room *= 2
    const grow = <A extends Float64Array | Uint32Array | Int32Array | Uint8Array>(old: A, make: (n: number) => A): A => {
      const next = make(room)
      next.set(old.subarray(0, this.n) as never)
      return next
    }
    this.offset = grow(this.offset, (n) => new Float64Array(n))
    this.size = grow(this.size, (n) => new Uint32Array(n))
    this.dts = grow(this.dts, (n) => new Float64Array(n))
    this.ctts = grow(this.ctts, (n) => new Int32Array(n))
    this.key = grow(this.key, (n) => new Uint8Array(n))
  }
}

// tfhd flags
const baseDataOffset = 0x1
const descriptionIndex = 0x2
const defaultDuration = 0x8
const defaultSize = 0x10
const defaultFlags = 0x20
const durationIsEmpty = 0x10000
const baseIsMoof = 0x20000
// trun flags
const dataOffset = 0x1
const firstFlags = 0x4
const sampleDuration = 0x100
const sampleSize = 0x200
const sampleFlags = 0x400
const sampleCts = 0x800
/** sample_is_non_sync_sample and sample_depends_on = 1: ffmpeg's test for a non-keyframe. */
const notKey = 0x10000 | 0x1000000

const maxMoof = 16 * 1024 * 1024
const maxSamples = 1 << 23

/** Each track's `trex` defaults, by track id, from the moov's `mvex`. */
const defaultsOf = (moov: Buffer, top: ReadonlyArray<Box>): Map<number, Defaults> => {
  const mvex = top.find((b) => b.type === "mvex") ?? unsupported("no mvex box")
  const out = new Map<number, Defaults>()
  for (const trex of boxesIn(moov, mvex.start, mvex.end)) {
    if (trex.type !== "trex") continue
    if (trex.end - trex.start < 24) unsupported("a trex box cut short")
    out.set(moov.readUInt32BE(trex.start + 4), {
      description: moov.readUInt32BE(trex.start + 8),
      duration: moov.readUInt32BE(trex.start + 12),
      size: moov.readUInt32BE(trex.start + 16),
      flags: moov.readUInt32BE(trex.start + 20)
    })
  }
  return out
}

/**
 * Parse one track fragment of the `moof` at file offset `moofAt` (held in
 * `buf`), whose data starts at `implicit` unless its header says otherwise;
 * returns where its data ends (the next fragment's implicit base).
 */
const readTraf = (
  buf: Buffer,
  view: DataView,
  traf: Box,
  moofAt: number,
  implicit: number,
  tracks: Map<number, Growing>,
  total: { samples: number }
): number => {
  const tfhd = child(buf, traf, "tfhd") ?? unsupported("a traf without tfhd")
  if (tfhd.end - tfhd.start < 8) unsupported("a tfhd box cut short")
  const flags = view.getUint32(tfhd.start) & 0xffffff
  const t = tracks.get(view.getUint32(tfhd.start + 4)) ?? unsupported("a fragment of a track the moov does not declare")
  let at = tfhd.start + 8
  const field = (present: boolean, width: 4 | 8): number | undefined => {
    if (!present) return undefined
    if (at + width > tfhd.end) unsupported("a tfhd box cut short")
    const value = width === 8 ? Number(view.getBigUint64(at)) : view.getUint32(at)
    at += width
    return value
  }
  const base = field((flags & baseDataOffset) !== 0, 8) ?? ((flags & baseIsMoof) !== 0 ? moofAt : implicit)
  const description = field((flags & descriptionIndex) !== 0, 4) ?? t.defaults.description
  const duration = field((flags & defaultDuration) !== 0, 4) ?? t.defaults.duration
  const size = field((flags & defaultSize) !== 0, 4) ?? t.defaults.size
  const sampleDefaultFlags = field((flags & defaultFlags) !== 0, 4) ?? t.defaults.flags
  if ((flags & durationIsEmpty) !== 0) return implicit

  const tfdt = child(buf, traf, "tfdt")
  if (tfdt !== undefined) {
    const decodeTime = view.getUint8(tfdt.start) === 1 ? Number(view.getBigUint64(tfdt.start + 4)) : view.getUint32(tfdt.start + 4)
    // ffmpeg marks samples decoded before the previous fragment's end to be discarded after decoding.
    if (decodeTime < t.end) unsupported("fragments that overlap in time")
    // The gap becomes the previous sample's duration, a 32-bit field of the clip's tables.
    if (t.n > 0 && decodeTime - t.end > 0x7fffffff) unsupported("a gap of more than 2^31 ticks between fragments")
    t.end = decodeTime
  }
  let next = base
  let first = true
  for (const trun of boxesIn(buf, traf.start, traf.end)) {
    if (trun.type !== "trun") continue
    if (description !== 1) unsupported("a fragment of another sample description")
    if (trun.end - trun.start < 8) unsupported("a trun box cut short")
    const runFlags = view.getUint32(trun.start) & 0xffffff
    const count = view.getUint32(trun.start + 4)
    let p = trun.start + 8
    if ((runFlags & dataOffset) !== 0) {
      next = base + view.getInt32(p)
      p += 4
    } else if (!first) {
      // ffmpeg reads such a run from the fragment's base, the format from the previous run's end.
      unsupported("a track run without a data offset")
    }
    first = false
    let flagsOfFirst = sampleDefaultFlags
    if ((runFlags & firstFlags) !== 0) {
      flagsOfFirst = view.getUint32(p)
      p += 4
    }
    const hasDuration = (runFlags & sampleDuration) !== 0
    const hasSize = (runFlags & sampleSize) !== 0
    const hasFlags = (runFlags & sampleFlags) !== 0
    const hasCts = (runFlags & sampleCts) !== 0
    const width = 4 * (Number(hasDuration) + Number(hasSize) + Number(hasFlags) + Number(hasCts))
    if (p + count * width > trun.end) unsupported("a trun box cut short")
    total.samples += count
    if (total.samples > maxSamples) unsupported(`more than ${maxSamples} samples`)
    if (hasCts) t.hasCtts = true
    t.reserve(count)
    const { ctts, dts, key, offset, size: sizes } = t
    let n = t.n
    let clock = t.end
    let bad = false
    for (let i = 0; i < count; i++, n++) {
      let d = duration
      let s = size
      let f = i === 0 ? flagsOfFirst : sampleDefaultFlags
      let cts = 0
      if (hasDuration) {
        d = view.getUint32(p)
        p += 4
      }
      if (hasSize) {
        s = view.getUint32(p)
        p += 4
      }
      if (hasFlags) {
        f = view.getUint32(p)
        p += 4
      }
      if (hasCts) {
        // ffmpeg reads the offset signed whatever the trun's version.
        cts = view.getInt32(p)
        p += 4
      }
      bad ||= cts < 0 || s === 0
      offset[n] = next
      sizes[n] = s
      dts[n] = clock
      ctts[n] = cts
      key[n] = t.audio || (f & notKey) === 0 ? 1 : 0
      next += s
      clock += d
    }
    if (bad) unsupported("negative composition offsets or empty samples in a fragmented mp4")
    t.n = n
    t.end = clock
  }
  return next
}

/**
 * A `sidx` gives ffmpeg the decode time of each fragment it references (its
 * earliest presentation time, read as a decode time): refused unless that
 * is the fragment's own `tfdt` for every reference, so ffmpeg's index and
 * these arrays agree.
 */
const checkSidx = (buf: Buffer, sidxAt: number, trackOfMoof: Map<number, Map<number, number>>) => {
  const version = buf.readUInt8(8)
  const referenceId = buf.readUInt32BE(12)
  let p = 20
  const earliest = version === 0 ? buf.readUInt32BE(p) : Number(buf.readBigUInt64BE(p))
  const firstOffset = version === 0 ? buf.readUInt32BE(p + 4) : Number(buf.readBigUInt64BE(p + 8))
  p += version === 0 ? 8 : 16
  const count = buf.readUInt16BE(p + 2)
  p += 4
  let offset = sidxAt + buf.readUInt32BE(0) + firstOffset
  let time = earliest
  for (let r = 0; r < count; r++, p += 12) {
    if (p + 12 > buf.length) unsupported("a sidx box cut short")
    const word = buf.readUInt32BE(p)
    const size = word & 0x7fffffff
    const moofTimes = trackOfMoof.get(offset)
    // A reference to a sidx (hierarchical index) or to a fragment not read: ffmpeg's index is left to it.
    if ((word & 0x80000000) !== 0 || moofTimes === undefined) return unsupported("a sidx this reader does not model")
    const tfdt = moofTimes.get(referenceId)
    if (tfdt !== undefined && tfdt !== time) unsupported("a sidx whose times are not the fragments' tfdt")
    time += buf.readUInt32BE(p + 4)
    offset += size
  }
}

/** Bytes read at once while walking the fragments: a moof and the header of the mdat after it, most often. */
const chunk = 8 * 1024

/**
 * Every track's samples from the fragments of the file open at `fd`,
 * walking its top-level boxes from the first `moof` (one read per fragment
 * most often: the moof and the next box's header). `sidxs` are the `sidx`
 * boxes found before it; `audioIds` the tracks whose every sample is a
 * keyframe, as ffmpeg takes them.
 *
 * @internal
 */
export const readFragments = (
  fd: number,
  moov: Buffer,
  top: ReadonlyArray<Box>,
  firstMoof: number,
  sidxs: ReadonlyArray<TopBox>,
  audioIds: ReadonlySet<number>
): Map<number, FragmentSamples> => {
  const fileSize = NodeFs.fstatSync(fd).size
  const tracks = new Map<number, Growing>()
  for (const [id, defaults] of defaultsOf(moov, top)) tracks.set(id, new Growing(audioIds.has(id), defaults))
  const total = { samples: 0 }
  // Per moof offset, the decode time each track's fragment starts at (for the sidx check).
  const times = new Map<number, Map<number, number>>()
  let buf = Buffer.allocUnsafe(chunk)
  let bufAt = 0
  let bufLength = 0
  /** The bytes [at, at + length) of the file, in `buf` (read when not there yet); false past the end. */
  const hold = (at: number, length: number): boolean => {
    if (at + length > fileSize) return false
    if (at >= bufAt && at + length <= bufAt + bufLength) return true
    // The box and the next one's header, and no more than a chunk otherwise: an mdat's payload is never read.
    if (length + 16 > buf.length) buf = Buffer.allocUnsafe(length + 16)
    bufAt = at
    bufLength = NodeFs.readSync(fd, buf, 0, Math.min(Math.max(chunk, length + 16), fileSize - at), at)
    return bufLength >= length
  }
  for (let at = firstMoof; at + 8 <= fileSize;) {
    if (!hold(at, Math.min(16, fileSize - at))) break
    const { header, size, type } = headerAt(buf.subarray(at - bufAt, at - bufAt + 16), 0, fileSize - at)
    if (!/^[\x20-\x7e]{4}$/.test(type) || size < header) unsupported(`no mp4 box at byte ${at}`)
    if (type === "moov") unsupported("a moov after the fragments")
    if (type === "moof") {
      if (size > maxMoof) unsupported(`a ${size}-byte moof box`)
      // A fragment cut short holds no sample that is all there: the file ends before it.
      if (!hold(at, size)) break
      const moof = buf.subarray(at - bufAt, at - bufAt + size)
      const view = new DataView(moof.buffer, moof.byteOffset, moof.byteLength)
      const starts = sidxs.length === 0 ? undefined : new Map<number, number>()
      let implicit = at
      for (const traf of boxesIn(moof, header, size, at)) {
        if (traf.type !== "traf") continue
        const tfhd = child(moof, traf, "tfhd")
        const id = tfhd === undefined ? -1 : view.getUint32(tfhd.start + 4)
        const before = tracks.get(id)?.n ?? 0
        implicit = readTraf(moof, view, traf, at, implicit, tracks, total)
        const t = tracks.get(id)
        if (starts !== undefined && t !== undefined && t.n > before) starts.set(id, t.dts[before]!)
      }
      if (starts !== undefined) times.set(at, starts)
    }
    at += size
  }
  for (const sidx of sidxs) {
    if (sidx.size > maxMoof) unsupported(`a ${sidx.size}-byte sidx box`)
    const bytes = Buffer.allocUnsafe(sidx.size)
    if (NodeFs.readSync(fd, bytes, 0, sidx.size, sidx.at) < sidx.size) unsupported("a sidx box cut short")
    checkSidx(bytes, sidx.at, times)
  }

  const out = new Map<number, FragmentSamples>()
  for (const [id, t] of tracks) {
    const n = t.n
    const dts = new Float64Array(n + 1)
    dts.set(t.dts.subarray(0, n))
    dts[n] = t.end
    let cttsMin = t.hasCtts && n > 0 ? Infinity : 0
    for (let i = 0; i < n && t.hasCtts; i++) cttsMin = Math.min(cttsMin, t.ctts[i]!)
    out.set(id, {
      n,
      offset: t.offset.slice(0, n),
      size: t.size.slice(0, n),
      dts,
      ctts: t.hasCtts ? t.ctts.slice(0, n) : undefined,
      cttsMin,
      key: t.key.slice(0, n)
    })
  }
  return out
}
