/**
 * The packet list of an mp4/mov source's first video stream, read in process
 * from its `moov` sample tables. Listing the packets with ffprobe demuxes the
 * whole file, and that pass was most of the time a match's first copy or
 * exact cut took beyond ffmpeg's own; the tables hold the same facts in a
 * few hundred kilobytes, and no media data is read here.
 *
 * It replays what ffmpeg's mov demuxer does with the tables (the index it
 * builds here, then its rewrite of it for a single edit: `mp4IndexEdit`),
 * so its answer is what ffprobe prints for `-select_streams v:0
 * -show_entries packet=pts_time,dts_time,flags`, to the microsecond. Whatever it does not model exactly (fragments,
 * several or empty edits, several video tracks, partial sync samples, codecs
 * it was not checked on...) is `Unsupported`: the caller then asks ffprobe.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { type Box, boxesIn, child, headerAt, timing } from "./mp4Boxes.js"
import { applyEdit, rescale } from "./mp4IndexEdit.js"

/** @internal */
export type PacketIndex =
  | {
    readonly _tag: "Index"
    /** Per packet, in decode order: times in seconds as ffprobe prints them, and whether it is a keyframe. */
    readonly pts: Float64Array
    readonly dts: Float64Array
    readonly key: Uint8Array
    /** Set when the file ends inside the video's data: the list then stops before the first packet cut off. */
    readonly truncated: string | undefined
  }
  | { readonly _tag: "Unsupported"; readonly reason: string }

class Unsupported extends Error {}
const unsupported = (reason: string): never => {
  throw new Unsupported(reason)
}

/** Bounds on what a corrupt size may make us allocate: 19 hours of 60 fps video, a moov of 128 MB. */
const maxMoov = 128 * 1024 * 1024
const maxSamples = 1 << 22
/** Video sample entries this reader was checked against ffprobe on. */
const videoFormats = new Set(["avc1", "avc3", "hvc1", "hev1"])
/** Sample entries ffmpeg makes neither audio nor video of (timecode, camera metadata, captions). */
const dataFormats = new Set(["tmcd", "gpmd", "fdsc", "mebx", "camm", "rtmd", "text", "tx3g", "c608", "c708", "wvtt"])

const need = (moov: Buffer, parent: Box, type: string): Box => child(moov, parent, type) ?? unsupported(`no ${type} box`)

/** The first top-level moov box's payload; fragments and a moov cut short are left to ffprobe. */
const readMoov = (fd: number, size: number): Buffer => {
  const head = Buffer.alloc(16)
  for (let at = 0; at + 8 <= size;) {
    const got = NodeFs.readSync(fd, head, 0, 16, at)
    const { header, size: boxSize, type } = headerAt(head.subarray(0, got), 0, size - at)
    if (!/^[\x20-\x7e]{4}$/.test(type) || boxSize < header) unsupported(`no mp4 box at byte ${at}`)
    if (type === "moof") unsupported("a fragmented mp4")
    if (type === "moov") {
      if (at + boxSize > size) unsupported("the moov box is cut short")
      if (boxSize > maxMoov) unsupported(`a ${boxSize}-byte moov box`)
      const moov = Buffer.allocUnsafe(boxSize - header)
      if (NodeFs.readSync(fd, moov, 0, moov.length, at + header) < moov.length) unsupported("the moov box is cut short")
      return moov
    }
    at += boxSize
  }
  return unsupported("no moov box")
}

/**
 * Whether ffmpeg makes a video stream of this track: a `vide` handler does,
 * and so would another handler's track holding a video sample entry, so
 * only the known audio and data tracks may come before the video.
 */
const isVideo = (moov: Buffer, trak: Box): boolean => {
  const mdia = need(moov, trak, "mdia")
  const hdlr = need(moov, mdia, "hdlr")
  const handler = moov.toString("latin1", hdlr.start + 8, hdlr.start + 12)
  const stsd = need(moov, need(moov, need(moov, mdia, "minf"), "stbl"), "stsd")
  const format = moov.toString("latin1", stsd.start + 12, stsd.start + 16)
  if (handler === "vide") return videoFormats.has(format) || unsupported(`a ${format} video track`)
  return handler === "soun" || dataFormats.has(format) ? false : unsupported(`a ${handler} track of ${format}`)
}

/** The index ffmpeg builds from the sample tables, before any edit: per sample, dts (less the shift), ctts, key flag, bytes. */
const sampleTable = (moov: Buffer, stbl: Box) => {
  const tables = new Map<string, Box>()
  for (const box of boxesIn(moov, stbl.start, stbl.end)) {
    if (tables.has(box.type)) unsupported(`two ${box.type} boxes`)
    tables.set(box.type, box)
    // Partial sync samples and random-access groups add keyframes we do not model.
    if (box.type === "stps" || (box.type === "sbgp" && moov.toString("latin1", box.start + 4, box.start + 8) === "rap ")) {
      unsupported(`a ${box.type} box`)
    }
  }
  const table = (type: string): Box | undefined => tables.get(type)
  const oneOf = (a: string, b: string): Box => {
    const found = [table(a), table(b)].filter((box) => box !== undefined)
    return found.length === 1 ? found[0]! : unsupported(`not one ${a} or ${b} table`)
  }
  const u32 = (at: number) => moov.readUInt32BE(at)
  // Table entries are read from the moov buffer: a count its box cannot hold would read its neighbours.
  const entries = (box: Box, header: number, width: number): number => {
    const count = u32(box.start + header - 4)
    return box.start + header + count * width <= box.end ? count : unsupported(`a ${box.type} table cut short`)
  }
  if (u32(need(moov, stbl, "stsd").start + 4) !== 1) unsupported("several sample descriptions")

  // Sizes: stsz (32-bit or one fixed size) or the compact stz2.
  const sizeBox = oneOf("stsz", "stz2")
  const n = u32(sizeBox.start + 8)
  const fixed = sizeBox.type === "stsz" ? u32(sizeBox.start + 4) : 0
  const bits = sizeBox.type === "stsz" ? 32 : moov.readUInt8(sizeBox.start + 7)
  if (n === 0 || n > maxSamples || ![4, 8, 16, 32].includes(bits)) unsupported(`${n} samples of ${bits}-bit sizes`)
  if (fixed === 0 && sizeBox.start + 12 + Math.ceil((n * bits) / 8) > sizeBox.end) unsupported("a sample size table cut short")
  const size = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const at = sizeBox.start + 12 + Math.floor((i * bits) / 8)
    size[i] = fixed !== 0 ? fixed : bits === 4 ? (moov[at]! >> (i % 2 === 0 ? 4 : 0)) & 15 : moov.readUIntBE(at, bits / 8)
    if (size[i]! > 0x3fffffff) unsupported("a sample larger than ffmpeg reads")
  }

  // Composition offsets: ffmpeg reads them signed whatever the version, and takes the dts shift that
  // makes them non-negative from every entry but the last two.
  const ctts = table("ctts")
  const offset = ctts === undefined ? undefined : new Int32Array(n)
  let shift = 0
  if (ctts !== undefined && offset !== undefined) {
    let sample = 0
    for (let e = 0, count = entries(ctts, 8, 8); e < count; e++) {
      const run = u32(ctts.start + 8 + 8 * e)
      const value = moov.readInt32BE(ctts.start + 12 + 8 * e)
      if (run === 0 || sample + run > n || Math.abs(value) > 1 << 28) unsupported("a ctts entry ffmpeg ignores or refuses")
      offset.fill(value, sample, sample + run)
      sample += run
      if (e + 2 < count && value < 0) shift = Math.max(shift, -value)
    }
    if (sample !== n) unsupported("a ctts table for another number of samples")
  }

  const stts = table("stts") ?? unsupported("no stts box")
  const dts = new Float64Array(n)
  let sample = 0
  let clock = -shift
  for (let e = 0, count = entries(stts, 8, 8); e < count; e++) {
    const run = u32(stts.start + 8 + 8 * e)
    const delta = u32(stts.start + 12 + 8 * e)
    // ffmpeg rewrites huge deltas (negative ones written unsigned); a zero one makes its searches ambiguous.
    if (delta === 0 || delta > 0x7fffffff || sample + run > n) unsupported("an stts entry we do not model")
    for (const end = sample + run; sample < end; sample++, clock += delta) dts[sample] = clock
  }
  if (sample !== n) unsupported("an stts table for another number of samples")

  // No stss: every sample is a keyframe. An empty one makes ffmpeg parse the stream; it matches entries in order.
  const stss = table("stss")
  const key = new Uint8Array(n).fill(stss === undefined ? 1 : 0)
  if (stss !== undefined) {
    const count = entries(stss, 8, 4)
    if (count === 0) unsupported("an empty stss table")
    for (let e = 0, last = 0; e < count; e++) {
      const number = u32(stss.start + 8 + 4 * e)
      if (number <= last) unsupported("an stss table out of order")
      if (number <= n) key[number - 1] = 1
      last = number
    }
  }

  // Where each sample lies: chunk offsets, and how many samples each run of chunks holds.
  const chunkBox = oneOf("stco", "co64")
  const co64 = chunkBox.type === "co64"
  const chunks = entries(chunkBox, 8, co64 ? 8 : 4)
  const stsc = table("stsc") ?? unsupported("no stsc box")
  const runs = entries(stsc, 8, 12)
  const pos = new Float64Array(n)
  sample = 0
  for (let r = 0; r < runs; r++) {
    const first = u32(stsc.start + 8 + 12 * r)
    const perChunk = u32(stsc.start + 12 + 12 * r)
    const next = r + 1 < runs ? u32(stsc.start + 20 + 12 * r) : chunks + 1
    // ffmpeg repairs entries that break these rules; we leave such files to it.
    if ((r === 0 && first !== 1) || next <= first || next > chunks + 1 || perChunk === 0) unsupported("an stsc table we do not model")
    if (u32(stsc.start + 16 + 12 * r) !== 1) unsupported("an stsc entry for another sample description")
    for (let c = first - 1; c < next - 1; c++) {
      let at = co64 ? Number(moov.readBigUInt64BE(chunkBox.start + 8 + 8 * c)) : u32(chunkBox.start + 8 + 4 * c)
      for (let s = 0; s < perChunk; s++, sample++) {
        if (sample >= n) unsupported("chunks holding more samples than the tables")
        pos[sample] = at
        at += size[sample]!
      }
    }
  }
  if (sample !== n) unsupported("chunks holding fewer samples than the tables")
  return { n, dts, offset, shift, key, pos, size }
}

const indexOf = (moov: Buffer, fileSize: number): PacketIndex => {
  const top = boxesIn(moov, 0, moov.length)
  if (top.some((b) => b.type === "mvex")) unsupported("a fragmented mp4 (mvex)")
  let video: Box | undefined
  let metadataFirst = false
  for (const box of top) {
    // Cover art in udta/meta becomes a video stream where it is read: before the track, it would be v:0.
    if (box.type === "udta" || box.type === "meta") metadataFirst ||= video === undefined
    if (box.type !== "trak" || !isVideo(moov, box)) continue
    if (video !== undefined) unsupported("several video tracks")
    if (metadataFirst) unsupported("metadata before the video track")
    video = box
  }
  if (video === undefined) return unsupported("no video track")
  const mdia = need(moov, video, "mdia")
  const timescale = timing(moov, need(moov, mdia, "mdhd")).timescale
  if (timescale === 0 || timescale > 0x7fffffff) unsupported(`a timescale of ${timescale}`)
  const table = sampleTable(moov, need(moov, need(moov, mdia, "minf"), "stbl"))

  // Without an edit ffmpeg keeps every sample with its own times.
  let kept: Int32Array | undefined
  let dts: ArrayLike<number> = table.dts
  const edts = child(moov, video, "edts")
  const elst = edts === undefined ? undefined : child(moov, edts, "elst")
  const edits = elst === undefined ? 0 : moov.readUInt32BE(elst.start + 4)
  if (elst !== undefined && edits > 0) {
    const wide = moov.readUInt8(elst.start) === 1
    const entry = elst.start + 8
    if (edits > 1 || entry + (wide ? 20 : 12) > elst.end) unsupported(edits > 1 ? "several edits" : "an elst cut short")
    const duration = wide ? Number(moov.readBigUInt64BE(entry)) : moov.readUInt32BE(entry)
    const media = wide ? Number(moov.readBigInt64BE(entry + 8)) : moov.readInt32BE(entry + 4)
    const movieScale = timing(moov, top.find((b) => b.type === "mvhd") ?? unsupported("no mvhd box")).timescale
    if (media < 0) unsupported("an empty edit")
    if (duration === 0 || movieScale === 0) unsupported("an edit of no duration")
    if (moov.readInt32BE(entry + (wide ? 16 : 8)) !== 0x10000) unsupported("an edit at another rate")
    const edited = applyEdit(table, media, rescale(duration, timescale, movieScale)) ??
      unsupported("an edit that presents no sample")
    dts = edited.dts
    kept = edited.kept
  }

  const count = kept?.length ?? table.n
  const out = { pts: new Float64Array(count), dts: new Float64Array(count), key: new Uint8Array(count) }
  // ffprobe prints ts * (1 / timescale) with %f, rounded to the microsecond. Math.round gives the same digits
  // away from a half microsecond; near one, toFixed rounds the double's exact expansion as printf does.
  const seconds = (ts: number) => {
    const time = ts * (1 / timescale)
    const micro = time * 1e6
    return Math.abs((Math.abs(micro) % 1) - 0.5) > 1e-3 ? Math.round(micro) / 1e6 : Number(time.toFixed(6))
  }
  // A file cut short: the list stops before the first packet whose bytes are not all there.
  let truncated: string | undefined
  let i = 0
  for (; i < count; i++) {
    const sample = kept === undefined ? i : kept[i]!
    if (table.pos[sample]! + table.size[sample]! > fileSize) {
      truncated = `the file ends at byte ${fileSize}, inside video packet ${i + 1} of ${count}`
      break
    }
    out.dts[i] = seconds(dts[i]!)
    out.pts[i] = seconds(dts[i]! + (table.offset === undefined ? 0 : table.shift + table.offset[sample]!))
    out.key[i] = table.key[sample]!
  }
  return { _tag: "Index", pts: out.pts.subarray(0, i), dts: out.dts.subarray(0, i), key: out.key.subarray(0, i), truncated }
}

/**
 * The packet list of the first video stream of the mp4/mov file at `path`
 * (see the module's description), or why it is left to ffprobe.
 *
 * @internal
 */
export const readPacketIndex = (path: string): PacketIndex => {
  let fd: number | undefined
  try {
    fd = NodeFs.openSync(path, "r")
    const size = NodeFs.fstatSync(fd).size
    return indexOf(readMoov(fd, size), size)
  } catch (error) {
    // Any surprise (a malformed table reads out of range...) leaves the file to ffprobe.
    return { _tag: "Unsupported", reason: error instanceof Error ? error.message : String(error) }
  } finally {
    if (fd !== undefined) NodeFs.closeSync(fd)
  }
}
