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
 * a run without a data offset after the first) throws `Mp4Unsupported`:
 * ffmpeg then cuts the file.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { type Box, boxesIn, child, Mp4Unsupported } from "./mp4Boxes.js"
import type { Movie, Track } from "./mp4Tracks.js"

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

/** A track's samples as they are read, fragment by fragment. */
interface Growing {
  readonly audio: boolean
  readonly defaults: Defaults
  readonly offset: Array<number>
  readonly size: Array<number>
  readonly dts: Array<number>
  readonly ctts: Array<number>
  readonly key: Array<number>
  hasCtts: boolean
  /** The decode time after the last sample read. */
  end: number
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

/** Parse one track fragment of the `moof` at file offset `moofAt` (held in `buf`). */
const readTraf = (
  buf: Buffer,
  traf: Box,
  moofAt: number,
  implicit: number,
  tracks: Map<number, Growing>,
  total: { samples: number }
): number => {
  const tfhd = child(buf, traf, "tfhd") ?? unsupported("a traf without tfhd")
  const flags = buf.readUInt32BE(tfhd.start) & 0xffffff
  const t = tracks.get(buf.readUInt32BE(tfhd.start + 4)) ?? unsupported("a fragment of a track the moov does not declare")
  let at = tfhd.start + 8
  const field = (present: boolean, width: 4 | 8): number | undefined => {
    if (!present) return undefined
    if (at + width > tfhd.end) unsupported("a tfhd box cut short")
    const value = width === 8 ? Number(buf.readBigUInt64BE(at)) : buf.readUInt32BE(at)
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
    const decodeTime = buf.readUInt8(tfdt.start) === 1 ? Number(buf.readBigUInt64BE(tfdt.start + 4)) : buf.readUInt32BE(tfdt.start + 4)
    // ffmpeg marks samples decoded before the previous fragment's end to be discarded after decoding.
    if (decodeTime < t.end) unsupported("fragments that overlap in time")
    t.end = decodeTime
  }
  let next = base
  let first = true
  for (const trun of boxesIn(buf, traf.start, traf.end)) {
    if (trun.type !== "trun") continue
    if (description !== 1) unsupported("a fragment of another sample description")
    const runFlags = buf.readUInt32BE(trun.start) & 0xffffff
    const count = buf.readUInt32BE(trun.start + 4)
    let p = trun.start + 8
    if ((runFlags & dataOffset) !== 0) {
      next = base + buf.readInt32BE(p)
      p += 4
    } else if (!first) {
      // ffmpeg reads such a run from the fragment's base, the format from the previous run's end.
      unsupported("a track run without a data offset")
    }
    first = false
    let flagsOfFirst = sampleDefaultFlags
    if ((runFlags & firstFlags) !== 0) {
      flagsOfFirst = buf.readUInt32BE(p)
      p += 4
    }
    const width = 4 * [sampleDuration, sampleSize, sampleFlags, sampleCts].filter((f) => (runFlags & f) !== 0).length
    if (p + count * width > trun.end) unsupported("a trun box cut short")
    total.samples += count
    if (total.samples > maxSamples) unsupported(`more than ${maxSamples} samples`)
    if ((runFlags & sampleCts) !== 0) t.hasCtts = true
    for (let i = 0; i < count; i++) {
      let d = duration
      let s = size
      let f = i === 0 ? flagsOfFirst : sampleDefaultFlags
      let cts = 0
      if ((runFlags & sampleDuration) !== 0) d = buf.readUInt32BE((p += 4) - 4)
      if ((runFlags & sampleSize) !== 0) s = buf.readUInt32BE((p += 4) - 4)
      if ((runFlags & sampleFlags) !== 0) f = buf.readUInt32BE((p += 4) - 4)
      // ffmpeg reads the offset signed whatever the trun's version.
      if ((runFlags & sampleCts) !== 0) cts = buf.readInt32BE((p += 4) - 4)
      if (cts < 0) unsupported("negative composition offsets in a fragmented mp4")
      if (s === 0) unsupported("a sample of zero bytes")
      t.offset.push(next)
      t.size.push(s)
      t.dts.push(t.end)
      t.ctts.push(cts)
      t.key.push(t.audio || (f & notKey) === 0 ? 1 : 0)
      next += s
      t.end += d
    }
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

/**
 * Every track's samples from the fragments of the file open at `fd`: `moofs`
 * and `sidxs` are the top-level boxes found by the header walk. `audioIds`
 * are the tracks whose every sample is a keyframe, as ffmpeg takes them.
 *
 * @internal
 */
export const readFragments = (
  fd: number,
  moov: Buffer,
  top: ReadonlyArray<Box>,
  moofs: ReadonlyArray<TopBox>,
  sidxs: ReadonlyArray<TopBox>,
  audioIds: ReadonlySet<number>
): Map<number, FragmentSamples> => {
  const tracks = new Map<number, Growing>()
  for (const [id, defaults] of defaultsOf(moov, top)) {
    tracks.set(id, { audio: audioIds.has(id), defaults, offset: [], size: [], dts: [], ctts: [], key: [], hasCtts: false, end: 0 })
  }
  const total = { samples: 0 }
  // Per moof offset, the decode time each track's fragment starts at (for the sidx check).
  const times = new Map<number, Map<number, number>>()
  for (const moof of moofs) {
    if (moof.size > maxMoof) unsupported(`a ${moof.size}-byte moof box`)
    const buf = Buffer.allocUnsafe(moof.size)
    if (NodeFs.readSync(fd, buf, 0, moof.size, moof.at) < moof.size) unsupported("a moof box cut short")
    const [box] = boxesIn(buf, 0, buf.length, moof.at)
    const starts = new Map<number, number>()
    let implicit = moof.at
    for (const traf of boxesIn(buf, box!.start, box!.end, moof.at)) {
      if (traf.type !== "traf") continue
      const tfhd = child(buf, traf, "tfhd")
      const t = tfhd === undefined ? undefined : tracks.get(buf.readUInt32BE(tfhd.start + 4))
      const before = t?.dts.length ?? 0
      implicit = readTraf(buf, traf, moof.at, implicit, tracks, total)
      if (t !== undefined && t.dts.length > before) starts.set(buf.readUInt32BE(tfhd!.start + 4), t.dts[before]!)
    }
    times.set(moof.at, starts)
  }
  for (const sidx of sidxs) {
    if (sidx.size > maxMoof) unsupported(`a ${sidx.size}-byte sidx box`)
    const buf = Buffer.allocUnsafe(sidx.size)
    if (NodeFs.readSync(fd, buf, 0, sidx.size, sidx.at) < sidx.size) unsupported("a sidx box cut short")
    checkSidx(buf, sidx.at, times)
  }

  const out = new Map<number, FragmentSamples>()
  for (const [id, t] of tracks) {
    const n = t.dts.length
    const dts = new Float64Array(n + 1)
    dts.set(t.dts)
    dts[n] = t.end
    let cttsMin = 0
    let ctts: Int32Array | undefined
    if (t.hasCtts) {
      ctts = Int32Array.from(t.ctts)
      cttsMin = n === 0 ? 0 : Math.min(...ctts.subarray(0, Math.min(n, 1 << 16)))
      for (let i = 1 << 16; i < n; i++) cttsMin = Math.min(cttsMin, ctts[i]!)
    }
    out.set(id, {
      n,
      offset: Float64Array.from(t.offset),
      size: Uint32Array.from(t.size),
      dts,
      ctts,
      cttsMin,
      key: Uint8Array.from(t.key)
    })
  }
  return out
}

/** `track` (read from the moov, without samples) with the samples of its fragments. */
const fragmentedTrack = (track: Track, samples: FragmentSamples): Track => {
  if (track.n > 0) unsupported("samples both in the moov and in fragments")
  // ffmpeg times a fragmented track's edit list otherwise than a progressive one's (no mov_fix_index).
  const edited = track.editRefusal !== undefined || track.editMedia !== 0 || track.editDelay !== 0
  const refusal = edited ? "an edit list in a fragmented mp4" : undefined
  let hasStss = false
  for (let i = 0; i < samples.n && !hasStss; i++) hasStss = samples.key[i] === 0
  return {
    trak: track.trak,
    id: track.id,
    handler: track.handler,
    format: track.format,
    timescale: track.timescale,
    ...samples,
    shift: 0,
    hasStss,
    sdtp: undefined,
    editMedia: 0,
    editDelay: 0,
    editRefusal: refusal,
    indexRefusal: refusal ?? (samples.n === 0 ? "no samples" : undefined),
    fragmented: true
  }
}

/**
 * `movie` (its moov read, its tracks without samples) with the samples of
 * the fragments found by the header walk, and, when the movie header gives
 * none, the duration the fragments present (as ffprobe gives it: from the
 * earliest start of any track to the latest end).
 *
 * @internal
 */
export const fragmentedMovie = (
  fd: number,
  movie: Movie,
  moofs: ReadonlyArray<TopBox>,
  sidxs: ReadonlyArray<TopBox>
): Movie => {
  const audioIds = new Set(movie.tracks.filter((t) => t.handler === "soun").map((t) => t.id))
  let samples: Map<number, FragmentSamples>
  try {
    samples = readFragments(fd, movie.moov, movie.top, moofs, sidxs, audioIds)
  } catch (error) {
    if (error instanceof Mp4Unsupported) throw error
    // A box or table that reads out of range: a malformed file, left to ffmpeg (which gives its typed errors).
    throw new Mp4Unsupported(`a malformed fragment (${error instanceof Error ? error.message : String(error)})`)
  }
  const empty: FragmentSamples = {
    n: 0,
    offset: new Float64Array(0),
    size: new Uint32Array(0),
    dts: new Float64Array(1),
    ctts: undefined,
    cttsMin: 0,
    key: new Uint8Array(0)
  }
  const tracks = movie.tracks.map((t) => fragmentedTrack(t, samples.get(t.id) ?? empty))
  let movieDuration = movie.movieDuration
  if (movieDuration === 0) {
    let start = Infinity
    let end = -Infinity
    for (const t of tracks) {
      if (t.n === 0) continue
      let first = Infinity
      // Composition offsets reorder a few frames: the earliest of the first ones is the track's start.
      for (let i = 0; i < Math.min(t.n, 64); i++) first = Math.min(first, t.dts[i]! + (t.ctts?.[i] ?? 0))
      start = Math.min(start, first / t.timescale)
      end = Math.max(end, (first + t.dts[t.n]! - t.dts[0]!) / t.timescale)
    }
    if (end > start) movieDuration = Math.round((end - start) * movie.movieTimescale)
  }
  return { ...movie, tracks, movieDuration }
}
