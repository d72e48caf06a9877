/**
 * Every track of an mp4/mov file read in process from its `moov`: the boxes
 * a clip copies verbatim (`tkhd`, `mdhd`, `hdlr`, `stsd`...) and each
 * sample's place, size, decode and composition time, sync flag and `sdtp`
 * byte, plus where the track's edit list puts it on the presentation
 * timeline. The in-process cutter (`mp4Cut`) writes clips from it.
 *
 * It is the one reading of a source's sample tables: the probe's keyframe
 * list (`mp4Index`) and the cutter share the `Movie` read when the source
 * is opened (`movieFor`), held in typed arrays.
 *
 * A fragmented file's samples are read from its `moof`s (`mp4Fragments`)
 * into the same arrays. Layouts it does not model (several sample
 * descriptions, samples both in the moov and in fragments...) throw
 * `Mp4Unsupported`: the caller then leaves the file to ffmpeg. Edit lists
 * the cutter does not model (several media edits, edits at another rate)
 * are a track's `editRefusal`.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import { type Box, boxesIn, child, headerAt, Mp4Unsupported, timing } from "./mp4Boxes.js"
import { fragmentedMovie } from "./mp4FragmentedMovie.js"
import type { TopBox } from "./mp4Fragments.js"

export { Mp4Unsupported } from "./mp4Boxes.js"

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
  /** ffmpeg's dts shift (what makes the composition offsets non-negative, from all but the last two ctts entries). */
  readonly shift: number
  /** The smallest composition offset (0 without a ctts box). */
  readonly cttsMin: number
  /** Sync samples (1), all of them without an stss box. */
  readonly key: Uint8Array
  readonly hasStss: boolean
  readonly sdtp: Uint8Array | undefined
  /** Media time (track timescale) the edit list starts presenting at, and the seconds of empty edit before it. */
  readonly editMedia: number
  readonly editDelay: number
  /** An edit list the cutter does not model (several edits, another rate...), set instead of the two above. */
  readonly editRefusal: string | undefined
  /** Why ffmpeg's index of this track may differ from the one `mp4Index` replays from these tables. */
  readonly indexRefusal: string | undefined
  /** Read from the fragments of a fragmented file (`mp4Fragments`): ffmpeg applies no edit list to it. */
  readonly fragmented?: true
}

/** A track's per-sample arrays (see `Track`). */
type Samples = Pick<Track, "offset" | "size" | "dts" | "ctts" | "shift" | "cttsMin" | "key" | "sdtp">

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

/**
 * The `ftyp` and `moov` payloads, reading box headers only; for a fragmented
 * file, where its first `moof` lies and the `sidx` boxes before it (the
 * fragments are walked by `mp4Fragments`).
 */
const readTop = (fd: number, size: number): {
  ftyp: Buffer | undefined
  moov: Buffer
  firstMoof: number | undefined
  sidxs: Array<TopBox>
} => {
  const head = Buffer.alloc(16)
  let ftyp: Buffer | undefined
  let moov: Buffer | undefined
  let firstMoof: number | undefined
  const sidxs: Array<TopBox> = []
  for (let at = 0; at + 8 <= size;) {
    const got = NodeFs.readSync(fd, head, 0, 16, at)
    const { header, size: boxSize, type } = headerAt(head.subarray(0, got), 0, size - at)
    if (!/^[\x20-\x7e]{4}$/.test(type) || boxSize < header) unsupported(`no mp4 box at byte ${at}`)
    if (type === "moof") {
      if (moov === undefined) unsupported("a moof before the moov")
      firstMoof = at
      break
    }
    if (type === "sidx" && at + boxSize <= size) sidxs.push({ at, size: boxSize })
    if (type === "ftyp" || type === "moov") {
      if (at + boxSize > size) unsupported(`the ${type} box is cut short`)
      if (boxSize > maxMoov) unsupported(`a ${boxSize}-byte ${type} box`)
      const whole = Buffer.allocUnsafe(boxSize)
      if (NodeFs.readSync(fd, whole, 0, boxSize, at) < boxSize) unsupported(`the ${type} box is cut short`)
      if (type === "ftyp") ftyp = whole
      else moov = whole.subarray(header)
    }
    at += boxSize
  }
  return { ftyp, moov: moov ?? unsupported("no moov box"), firstMoof, sidxs }
}

const need = (moov: Buffer, parent: Box, type: string): Box => child(moov, parent, type) ?? unsupported(`no ${type} box`)

const littleEndian = NodeOs.endianness() === "LE"

/** Bounds ffmpeg's index was checked within (mp4Index): past them the keyframe list is left to ffprobe. */
const maxIndexSamples = 1 << 22

const trackOf = (moov: Buffer, trak: Box, movieTimescale: number): Track => {
  const tkhd = need(moov, trak, "tkhd")
  const id = moov.readUInt32BE(tkhd.start + (moov.readUInt8(tkhd.start) === 1 ? 20 : 12))
  const mdia = need(moov, trak, "mdia")
  const { timescale } = timing(moov, need(moov, mdia, "mdhd"))
  if (timescale === 0) unsupported("a zero timescale")
  const hdlr = need(moov, mdia, "hdlr")
  const handler = moov.toString("latin1", hdlr.start + 8, hdlr.start + 12)
  const stbl = need(moov, need(moov, mdia, "minf"), "stbl")
  // What ffmpeg's index of this track may do otherwise than `mp4Index` replays: the first reason, if any.
  let indexRefusal: string | undefined
  const refuseIndex = (reason: string) => {
    indexRefusal ??= reason
  }
  const tables = new Map<string, Box>()
  for (const box of boxesIn(moov, stbl.start, stbl.end)) {
    if (tables.has(box.type)) unsupported(`two ${box.type} boxes`)
    tables.set(box.type, box)
    // Partial sync samples and random-access groups add keyframes the index does not model.
    if (box.type === "stps" || (box.type === "sbgp" && moov.toString("latin1", box.start + 4, box.start + 8) === "rap ")) {
      refuseIndex(`a ${box.type} box`)
    }
  }
  // Typed reads over the moov: the tables of a long source hold millions of entries.
  const view = new DataView(moov.buffer, moov.byteOffset, moov.byteLength)
  const u32 = (at: number) => view.getUint32(at)
  const entries = (box: Box, header: number, width: number): number => {
    const count = u32(box.start + header - 4)
    return box.start + header + count * width <= box.end ? count : unsupported(`a ${box.type} table cut short`)
  }
  const stsd = tables.get("stsd") ?? unsupported("no stsd box")
  if (u32(stsd.start + 4) !== 1) unsupported("several sample descriptions")
  const format = moov.toString("latin1", stsd.start + 12, stsd.start + 16)

  // Sizes: stsz (32-bit or one fixed size) or the compact stz2.
  const stsz = tables.get("stsz")
  const stz2 = tables.get("stz2")
  if (stsz !== undefined && stz2 !== undefined) refuseIndex("both stsz and stz2 tables")
  const sizeBox = stsz ?? stz2 ?? unsupported("no sample size table")
  const n = u32(sizeBox.start + 8)
  const fixed = sizeBox === stsz ? u32(sizeBox.start + 4) : 0
  const bits = sizeBox === stsz ? 32 : moov.readUInt8(sizeBox.start + 7)
  if (n > maxSamples || ![4, 8, 16, 32].includes(bits)) unsupported(`${n} samples of ${bits}-bit sizes`)
  if (n === 0 || n > maxIndexSamples) refuseIndex(`${n} samples`)
  if (fixed === 0 && sizeBox.start + 12 + Math.ceil((n * bits) / 8) > sizeBox.end) unsupported("a sample size table cut short")
  const stts = tables.get("stts") ?? unsupported("no stts box")
  const cttsBox = tables.get("ctts")
  const stss = tables.get("stss")
  const stco = tables.get("stco")
  const co64Box = tables.get("co64")
  if (stco !== undefined && co64Box !== undefined) refuseIndex("both stco and co64 tables")
  const chunkBox = stco ?? co64Box ?? unsupported("no chunk offset table")
  const co64 = chunkBox === co64Box
  const chunks = entries(chunkBox, 8, co64 ? 8 : 4)
  const stsc = tables.get("stsc") ?? unsupported("no stsc box")
  const runs = entries(stsc, 8, 12)

  // Every sample's arrays, expanded on first use: opening a source needs those of its video track only.
  const expand = (): Samples => {
    const size = new Uint32Array(n)
    const sizes = sizeBox.start + 12
    if (fixed !== 0) size.fill(fixed)
    else if (bits === 32) {
      // Copied whole and byte-swapped natively: the loop would run in the interpreter on a cold start.
      const bytes = Buffer.from(size.buffer, size.byteOffset, 4 * n)
      moov.copy(bytes, 0, sizes, sizes + 4 * n)
      if (littleEndian) bytes.swap32()
    }
    else if (bits === 16) for (let i = 0; i < n; i++) size[i] = view.getUint16(sizes + 2 * i)
    else if (bits === 8) for (let i = 0; i < n; i++) size[i] = moov[sizes + i]!
    else for (let i = 0; i < n; i++) size[i] = (moov[sizes + (i >> 1)]! >> (i % 2 === 0 ? 4 : 0)) & 15
    if (fixed > 0x3fffffff) refuseIndex("a sample larger than ffmpeg reads")
    else if (fixed === 0) {
      for (let i = 0; i < n; i++) {
        if (size[i]! > 0x3fffffff) {
          refuseIndex("a sample larger than ffmpeg reads")
          break
        }
      }
    }

    const dts = new Float64Array(n + 1)
    let sample = 0
    let clock = 0
    for (let e = 0, count = entries(stts, 8, 8); e < count; e++) {
      const run = u32(stts.start + 8 + 8 * e)
      const delta = u32(stts.start + 12 + 8 * e)
      if (delta > 0x7fffffff || sample + run > n) unsupported("an stts entry we do not model")
      // A zero delta makes ffmpeg's searches ambiguous.
      if (delta === 0 && run > 0) refuseIndex("an stts entry of zero duration")
      for (const end = sample + run; sample < end; sample++, clock += delta) dts[sample] = clock
    }
    if (sample !== n) unsupported("an stts table for another number of samples")
    // The decode time after the last sample: its duration is dts[n] - dts[n - 1].
    dts[n] = clock

    // Composition offsets, signed whatever the version; ffmpeg's dts shift makes those of all but the last two >= 0.
    let ctts: Int32Array | undefined
    let shift = 0
    let cttsMin = 0
    if (cttsBox !== undefined) {
      ctts = new Int32Array(n)
      sample = 0
      cttsMin = Infinity
      for (let e = 0, count = entries(cttsBox, 8, 8); e < count; e++) {
        const run = u32(cttsBox.start + 8 + 8 * e)
        const value = view.getInt32(cttsBox.start + 12 + 8 * e)
        if (sample + run > n) unsupported("a ctts table for more samples")
        if (run === 0 || Math.abs(value) > 1 << 28) refuseIndex("a ctts entry ffmpeg ignores or refuses")
        if (run === 1) ctts[sample] = value // B-frames make an entry per sample: a call to fill costs more.
        else ctts.fill(value, sample, sample + run)
        if (run > 0) cttsMin = Math.min(cttsMin, value)
        sample += run
        if (e + 2 < count && value < 0) shift = Math.max(shift, -value)
      }
      if (sample !== n) unsupported("a ctts table for another number of samples")
      if (cttsMin === Infinity) cttsMin = 0
    }

    // No stss: every sample is a keyframe. An empty one makes ffmpeg parse the stream.
    const key = new Uint8Array(n).fill(stss === undefined ? 1 : 0)
    if (stss !== undefined) {
      const count = entries(stss, 8, 4)
      if (count === 0) refuseIndex("an empty stss table")
      for (let e = 0, last = 0; e < count; e++) {
        const number = u32(stss.start + 8 + 4 * e)
        if (number <= last) refuseIndex("an stss table out of order")
        if (number >= 1 && number <= n) key[number - 1] = 1
        last = number
      }
    }
    const sdtpBox = tables.get("sdtp")
    const sdtp = sdtpBox === undefined || sdtpBox.end - sdtpBox.start - 4 !== n
      ? undefined
      : Uint8Array.from(moov.subarray(sdtpBox.start + 4, sdtpBox.end))

    const offset = new Float64Array(n)
    sample = 0
    for (let r = 0; r < runs; r++) {
      const first = u32(stsc.start + 8 + 12 * r)
      const perChunk = u32(stsc.start + 12 + 12 * r)
      const next = r + 1 < runs ? u32(stsc.start + 20 + 12 * r) : chunks + 1
      if (first < 1 || next <= first || next > chunks + 1) unsupported("an stsc table we do not model")
      // ffmpeg repairs these entries; the index leaves such files to it.
      if ((r === 0 && first !== 1) || perChunk === 0) refuseIndex("an stsc table we do not model")
      if (u32(stsc.start + 16 + 12 * r) !== 1) refuseIndex("an stsc entry for another sample description")
      for (let c = first - 1; c < next - 1; c++) {
        let at = co64
          ? u32(chunkBox.start + 8 + 8 * c) * 0x100000000 + u32(chunkBox.start + 12 + 8 * c)
          : u32(chunkBox.start + 8 + 4 * c)
        if (sample + perChunk > n) unsupported("chunks holding more samples than the tables")
        for (let s = 0; s < perChunk; s++, sample++) {
          offset[sample] = at
          at += size[sample]!
        }
      }
    }
    if (sample !== n) unsupported("chunks holding fewer samples than the tables")

    return { offset, size, dts, ctts, shift, cttsMin, key, sdtp }
  }
  let samples: Samples | undefined
  const arrays = (): Samples => (samples ??= expand())

  // The edit list: at most one empty edit, then one media edit at rate 1; others are refused by the cutter.
  let editMedia = 0
  let editDelay = 0
  let editRefusal: string | undefined
  const edts = child(moov, trak, "edts")
  const elst = edts === undefined ? undefined : child(moov, edts, "elst")
  if (elst !== undefined) {
    const wide = moov.readUInt8(elst.start) === 1
    const width = wide ? 20 : 12
    const count = entries(elst, 8, width)
    let media = 0
    for (let e = 0; e < count && editRefusal === undefined; e++) {
      const at = elst.start + 8 + width * e
      const duration = wide ? Number(moov.readBigUInt64BE(at)) : u32(at)
      const time = wide ? Number(moov.readBigInt64BE(at + 8)) : moov.readInt32BE(at + 4)
      if (moov.readInt32BE(at + (wide ? 16 : 8)) !== 0x10000) editRefusal = "an edit at another rate"
      else if (time === -1) {
        if (media > 0 || e > 0) editRefusal = "an empty edit after another edit"
        else editDelay = duration / movieTimescale
      } else if (media++ > 0) editRefusal = "several edits"
      else editMedia = time
    }
  }
  return {
    trak,
    id,
    handler,
    format,
    timescale,
    n,
    get offset() {
      return arrays().offset
    },
    get size() {
      return arrays().size
    },
    get dts() {
      return arrays().dts
    },
    get ctts() {
      return arrays().ctts
    },
    get shift() {
      return arrays().shift
    },
    get cttsMin() {
      return arrays().cttsMin
    },
    get key() {
      return arrays().key
    },
    hasStss: stss !== undefined,
    get sdtp() {
      return arrays().sdtp
    },
    editMedia,
    editDelay,
    editRefusal,
    get indexRefusal() {
      arrays()
      return indexRefusal
    }
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
  const { firstMoof, ftyp, moov, sidxs } = readTop(fd, fileSize)
  const top = boxesIn(moov, 0, moov.length)
  const mvhd = top.find((b) => b.type === "mvhd") ?? unsupported("no mvhd box")
  const { duration: movieDuration, timescale: movieTimescale } = timing(moov, mvhd)
  if (movieTimescale === 0) unsupported("a zero movie timescale")
  const tracks = top.filter((b) => b.type === "trak").map((trak) => trackOf(moov, trak, movieTimescale))
  const movie = { ftyp, moov, top, movieTimescale, movieDuration, tracks, fileSize }
  const mvex = top.some((b) => b.type === "mvex")
  if (firstMoof !== undefined && !mvex) unsupported("fragments without an mvex box")
  // Declared fragmented but every sample in the moov: read as progressive, as ffmpeg does.
  return firstMoof === undefined ? movie : fragmentedMovie(fd, movie, firstMoof, sidxs)
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
