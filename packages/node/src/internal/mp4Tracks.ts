/**
 * Every track of an mp4/mov file read in process from its `moov`: the boxes
 * a clip copies verbatim (`tkhd`, `mdhd`, `hdlr`, `stsd`...) and each
 * sample's place, size, decode and composition time, sync flag and `sdtp`
 * byte, plus where the track's edit list puts it on the presentation
 * timeline. The in-process cutter (`mp4Cut`) writes clips from it.
 *
 * Layouts it does not model (fragments, several sample descriptions,
 * several media edits, edits at another rate) throw `Mp4Unsupported`: the
 * caller then leaves the file to ffmpeg.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { type Box, boxesIn, child, headerAt, timing } from "./mp4Boxes.js"

/** A layout this reader does not model; the message says which. @internal */
export class Mp4Unsupported extends Error {}

const unsupported = (reason: string): never => {
  throw new Mp4Unsupported(reason)
}

/** One track's samples, in decode order. @internal */
export interface Track {
  readonly trak: Box
  readonly id: number
  readonly handler: string
  /** The first sample entry's four-character code (`avc1`, `mp4a`...). */
  readonly format: string
  readonly timescale: number
  readonly n: number
  readonly offset: Float64Array
  readonly size: Uint32Array
  /** Decode times in the track's timescale, from the tables (no shift). */
  readonly dts: Float64Array
  /** Composition offsets, `undefined` without a ctts box. */
  readonly ctts: Int32Array | undefined
  /** Sync samples (1), all of them without an stss box. */
  readonly key: Uint8Array
  readonly hasStss: boolean
  readonly sdtp: Uint8Array | undefined
  /** Media time (track timescale) the edit list starts presenting at, and the seconds of empty edit before it. */
  readonly editMedia: number
  readonly editDelay: number
}

/** The parsed file: its `ftyp` and `moov` bytes and the tracks. @internal */
export interface Movie {
  readonly ftyp: Buffer | undefined
  readonly moov: Buffer
  /** The moov's children (offsets in `moov`). */
  readonly top: ReadonlyArray<Box>
  readonly movieTimescale: number
  readonly movieDuration: number
  readonly tracks: ReadonlyArray<Track>
  readonly fileSize: number
}

const maxMoov = 128 * 1024 * 1024
const maxSamples = 1 << 23

/** The `ftyp` and `moov` payloads, reading box headers only; fragments are refused. */
const readTop = (fd: number, size: number): { ftyp: Buffer | undefined; moov: Buffer } => {
  const head = Buffer.alloc(16)
  let ftyp: Buffer | undefined
  let moov: Buffer | undefined
  for (let at = 0; at + 8 <= size;) {
    const got = NodeFs.readSync(fd, head, 0, 16, at)
    const { header, size: boxSize, type } = headerAt(head.subarray(0, got), 0, size - at)
    if (!/^[\x20-\x7e]{4}$/.test(type) || boxSize < header) unsupported(`no mp4 box at byte ${at}`)
    if (type === "moof") unsupported("a fragmented mp4")
    if (type === "ftyp" || type === "moov") {
      if (at + boxSize > size) unsupported(`the ${type} box is cut short`)
      if (boxSize > maxMoov) unsupported(`a ${boxSize}-byte ${type} box`)
      const whole = Buffer.allocUnsafe(boxSize)
      NodeFs.readSync(fd, whole, 0, boxSize, at)
      if (type === "ftyp") ftyp = whole
      else moov = whole.subarray(header)
    }
    at += boxSize
  }
  return { ftyp, moov: moov ?? unsupported("no moov box") }
}

const need = (moov: Buffer, parent: Box, type: string): Box => child(moov, parent, type) ?? unsupported(`no ${type} box`)

const trackOf = (moov: Buffer, trak: Box, movieTimescale: number): Track => {
  const tkhd = need(moov, trak, "tkhd")
  const id = moov.readUInt32BE(tkhd.start + (moov.readUInt8(tkhd.start) === 1 ? 20 : 12))
  const mdia = need(moov, trak, "mdia")
  const { timescale } = timing(moov, need(moov, mdia, "mdhd"))
  if (timescale === 0) unsupported("a zero timescale")
  const hdlr = need(moov, mdia, "hdlr")
  const handler = moov.toString("latin1", hdlr.start + 8, hdlr.start + 12)
  const stbl = need(moov, need(moov, mdia, "minf"), "stbl")
  const tables = new Map<string, Box>()
  for (const box of boxesIn(moov, stbl.start, stbl.end)) {
    if (tables.has(box.type)) unsupported(`two ${box.type} boxes`)
    tables.set(box.type, box)
  }
  const u32 = (at: number) => moov.readUInt32BE(at)
  const entries = (box: Box, header: number, width: number): number => {
    const count = u32(box.start + header - 4)
    return box.start + header + count * width <= box.end ? count : unsupported(`a ${box.type} table cut short`)
  }
  const stsd = tables.get("stsd") ?? unsupported("no stsd box")
  if (u32(stsd.start + 4) !== 1) unsupported("several sample descriptions")
  const format = moov.toString("latin1", stsd.start + 12, stsd.start + 16)

  const stsz = tables.get("stsz") ?? unsupported("no stsz box")
  const n = u32(stsz.start + 8)
  const fixed = u32(stsz.start + 4)
  if (n > maxSamples) unsupported(`${n} samples`)
  if (fixed === 0 && stsz.start + 12 + 4 * n > stsz.end) unsupported("a sample size table cut short")
  const size = new Uint32Array(n)
  for (let i = 0; i < n; i++) size[i] = fixed !== 0 ? fixed : u32(stsz.start + 12 + 4 * i)

  const stts = tables.get("stts") ?? unsupported("no stts box")
  const dts = new Float64Array(n + 1)
  let sample = 0
  let clock = 0
  for (let e = 0, count = entries(stts, 8, 8); e < count; e++) {
    const run = u32(stts.start + 8 + 8 * e)
    const delta = u32(stts.start + 12 + 8 * e)
    if (delta > 0x7fffffff || sample + run > n) unsupported("an stts entry we do not model")
    for (const end = sample + run; sample < end; sample++, clock += delta) dts[sample] = clock
  }
  if (sample !== n) unsupported("an stts table for another number of samples")
  // The decode time after the last sample: its duration is dts[n] - dts[n - 1].
  dts[n] = clock

  const cttsBox = tables.get("ctts")
  let ctts: Int32Array | undefined
  if (cttsBox !== undefined) {
    ctts = new Int32Array(n)
    sample = 0
    for (let e = 0, count = entries(cttsBox, 8, 8); e < count; e++) {
      const run = u32(cttsBox.start + 8 + 8 * e)
      if (sample + run > n) unsupported("a ctts table for more samples")
      ctts.fill(moov.readInt32BE(cttsBox.start + 12 + 8 * e), sample, sample + run)
      sample += run
    }
    if (sample !== n) unsupported("a ctts table for another number of samples")
  }

  const stss = tables.get("stss")
  const key = new Uint8Array(n).fill(stss === undefined ? 1 : 0)
  if (stss !== undefined) {
    for (let e = 0, count = entries(stss, 8, 4); e < count; e++) {
      const number = u32(stss.start + 8 + 4 * e)
      if (number >= 1 && number <= n) key[number - 1] = 1
    }
  }
  const sdtpBox = tables.get("sdtp")
  const sdtp = sdtpBox === undefined || sdtpBox.end - sdtpBox.start - 4 !== n
    ? undefined
    : Uint8Array.from(moov.subarray(sdtpBox.start + 4, sdtpBox.end))

  const chunkBox = tables.get("stco") ?? tables.get("co64") ?? unsupported("no chunk offset table")
  const co64 = chunkBox.type === "co64"
  const chunks = entries(chunkBox, 8, co64 ? 8 : 4)
  const stsc = tables.get("stsc") ?? unsupported("no stsc box")
  const runs = entries(stsc, 8, 12)
  const offset = new Float64Array(n)
  sample = 0
  for (let r = 0; r < runs; r++) {
    const first = u32(stsc.start + 8 + 12 * r)
    const perChunk = u32(stsc.start + 12 + 12 * r)
    const next = r + 1 < runs ? u32(stsc.start + 20 + 12 * r) : chunks + 1
    if (first < 1 || next <= first || next > chunks + 1) unsupported("an stsc table we do not model")
    for (let c = first - 1; c < next - 1; c++) {
      let at = co64 ? Number(moov.readBigUInt64BE(chunkBox.start + 8 + 8 * c)) : u32(chunkBox.start + 8 + 4 * c)
      for (let s = 0; s < perChunk; s++, sample++) {
        if (sample >= n) unsupported("chunks holding more samples than the tables")
        offset[sample] = at
        at += size[sample]!
      }
    }
  }
  if (sample !== n) unsupported("chunks holding fewer samples than the tables")

  // The edit list: at most one empty edit, then one media edit at rate 1.
  let editMedia = 0
  let editDelay = 0
  const edts = child(moov, trak, "edts")
  const elst = edts === undefined ? undefined : child(moov, edts, "elst")
  if (elst !== undefined) {
    const wide = moov.readUInt8(elst.start) === 1
    const width = wide ? 20 : 12
    const count = entries(elst, 8, width)
    let media = 0
    for (let e = 0; e < count; e++) {
      const at = elst.start + 8 + width * e
      const duration = wide ? Number(moov.readBigUInt64BE(at)) : u32(at)
      const time = wide ? Number(moov.readBigInt64BE(at + 8)) : moov.readInt32BE(at + 4)
      if (moov.readInt32BE(at + (wide ? 16 : 8)) !== 0x10000) unsupported("an edit at another rate")
      if (time === -1) {
        if (media > 0 || e > 0) unsupported("an empty edit after another edit")
        editDelay = duration / movieTimescale
      } else {
        if (media++ > 0) unsupported("several edits")
        editMedia = time
      }
    }
  }
  return {
    trak,
    id,
    handler,
    format,
    timescale,
    n,
    offset,
    size,
    dts,
    ctts,
    key,
    hasStss: stss !== undefined,
    sdtp,
    editMedia,
    editDelay
  }
}

/**
 * Every track of the mp4/mov file open at `fd` (see the module's
 * description). Throws `Mp4Unsupported` for what it does not model.
 *
 * @internal
 */
export const readMovie = (fd: number): Movie => {
  const fileSize = NodeFs.fstatSync(fd).size
  const { ftyp, moov } = readTop(fd, fileSize)
  const top = boxesIn(moov, 0, moov.length)
  if (top.some((b) => b.type === "mvex")) unsupported("a fragmented mp4 (mvex)")
  const mvhd = top.find((b) => b.type === "mvhd") ?? unsupported("no mvhd box")
  const { duration: movieDuration, timescale: movieTimescale } = timing(moov, mvhd)
  if (movieTimescale === 0) unsupported("a zero movie timescale")
  const tracks = top.filter((b) => b.type === "trak").map((trak) => trackOf(moov, trak, movieTimescale))
  return { ftyp, moov, top, movieTimescale, movieDuration, tracks, fileSize }
}

const movies = new WeakMap<object, Movie>()

/**
 * The movie of the file open at `fd`, read once per `owner` (the source's
 * probe entry, which is per path and fingerprint): a long source's tables
 * are read and parsed when it is opened, not again for every cut.
 *
 * @internal
 */
export const movieFor = (owner: object | undefined, fd: number): Movie => {
  const known = owner === undefined ? undefined : movies.get(owner)
  if (known !== undefined) return known
  const movie = readMovie(fd)
  if (owner !== undefined) movies.set(owner, movie)
  return movie
}

/** Remember `movie` as the one of `owner` (see `movieFor`). @internal */
export const rememberMovie = (owner: object, movie: Movie): void => {
  movies.set(owner, movie)
}

/** Presentation time (seconds, on the movie's timeline) of sample `i` of `track`. @internal */
export const ptsOf = (track: Track, i: number): number =>
  track.editDelay + (track.dts[i]! + (track.ctts?.[i] ?? 0) - track.editMedia) / track.timescale
