/**
 * The `moov` of an in-process clip (`mp4Cut`): new sample tables (`stts`,
 * `ctts`, `stss`, `sdtp`, `stsz`, `stsc`, `stco`/`co64`, a one-entry
 * `sbgp`) for the kept samples at their offsets in the clip, one edit per
 * track presenting the rally, new durations; every other box (`stsd` with
 * the codec configuration and colour, `tkhd` with the rotation, `mdhd` with
 * the language, `hdlr`, the movie's `udta`) copied verbatim. A fragmented
 * source's `mvex` is left out: the clip is progressive.
 *
 * @internal
 */
import { type Box, boxesIn, child, Mp4Unsupported } from "./mp4Boxes.js"
import type { Kept } from "./mp4CutPlan.js"
import type { Movie } from "./mp4Tracks.js"

const unsupported = (reason: string): never => {
  throw new Mp4Unsupported(reason)
}

/** A 32-bit big-endian field. @internal */
export const u32 = (value: number): Buffer => {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(value)
  return b
}
/** A 64-bit big-endian field. @internal */
export const u64 = (value: number): Buffer => {
  const b = Buffer.allocUnsafe(8)
  b.writeBigUInt64BE(BigInt(value))
  return b
}
const box = (type: string, ...parts: ReadonlyArray<Buffer>): Buffer => {
  const size = 8 + parts.reduce((sum, part) => sum + part.length, 0)
  const head = Buffer.allocUnsafe(8)
  head.writeUInt32BE(size)
  head.write(type, 4, "latin1")
  return Buffer.concat([head, ...parts], size)
}
const fullBox = (type: string, version: number, ...parts: ReadonlyArray<Buffer>): Buffer =>
  box(type, u32(version << 24), ...parts)
/** A source box copied whole, header included (8 bytes, or 16 with a 64-bit size). */
const copyBox = (moov: Buffer, b: Box): Buffer =>
  moov.subarray(moov.toString("latin1", b.start - 4, b.start) === b.type ? b.start - 8 : b.start - 16, b.end)

/** Run-length table of `count` values: entries of (run, value). */
const runs = (count: number, value: (i: number) => number): Array<[number, number]> => {
  const out: Array<[number, number]> = []
  for (let i = 0; i < count; i++) {
    const v = value(i)
    const lastRun = out[out.length - 1]
    if (lastRun !== undefined && lastRun[1] === v) lastRun[0]++
    else out.push([1, v])
  }
  return out
}
const table = (entries: ReadonlyArray<ReadonlyArray<number>>, signed = false): Buffer => {
  const width = entries[0]?.length ?? 0
  const b = Buffer.allocUnsafe(4 + 4 * width * entries.length)
  b.writeUInt32BE(entries.length)
  let at = 4
  for (const entry of entries) {
    for (const v of entry) {
      if (signed && v < 0) b.writeInt32BE(v, at)
      else b.writeUInt32BE(v, at)
      at += 4
    }
  }
  return b
}

/** The new sample tables of a kept track. */
const stblOf = (moov: Buffer, k: Kept, stbl: Box, co64: boolean): Buffer => {
  const t = k.track
  const count = k.samples.length
  const at = (i: number) => k.samples[i]!
  const parts: Array<Buffer> = [copyBox(moov, child(moov, stbl, "stsd")!)]
  const next = (i: number) => i + 1 < count ? at(i + 1) : at(i) + 1
  parts.push(fullBox("stts", 0, table(runs(count, (i) => t.dts[next(i)]! - t.dts[at(i)]!))))
  if (t.ctts !== undefined) {
    const ctts = t.ctts
    const entries = runs(count, (i) => ctts[at(i)]!)
    parts.push(fullBox("ctts", entries.some(([, v]) => v < 0) ? 1 : 0, table(entries, true)))
  }
  if (t.hasStss) {
    const keys: Array<Array<number>> = []
    for (let i = 0; i < count; i++) if (t.key[at(i)] === 1) keys.push([i + 1])
    parts.push(fullBox("stss", 0, table(keys)))
  }
  const sdtp = t.sdtp
  if (sdtp !== undefined) parts.push(fullBox("sdtp", 0, Buffer.from(Array.from(k.samples, (i) => sdtp[i]!))))
  const sizes = Uint32Array.from(k.samples, (i) => t.size[i]!)
  const fixed = sizes.every((s) => s === sizes[0]) ? sizes[0]! : 0
  const sizeTable = Buffer.allocUnsafe(8 + (fixed === 0 ? 4 * count : 0))
  sizeTable.writeUInt32BE(fixed, 0)
  sizeTable.writeUInt32BE(count, 4)
  if (fixed === 0) for (let i = 0; i < count; i++) sizeTable.writeUInt32BE(sizes[i]!, 8 + 4 * i)
  parts.push(fullBox("stsz", 0, sizeTable))
  // Chunks: runs of samples that lie one after another in the clip.
  const chunkStarts: Array<number> = []
  const perChunk: Array<number> = []
  for (let i = 0; i < count; i++) {
    const offset = k.newOffset[i]!
    if (i > 0 && offset === k.newOffset[i - 1]! + sizes[i - 1]!) perChunk[perChunk.length - 1]!++
    else {
      chunkStarts.push(offset)
      perChunk.push(1)
    }
  }
  const stsc = runs(perChunk.length, (c) => perChunk[c]!)
  const stscEntries: Array<Array<number>> = []
  let chunk = 1
  for (const [run, samples] of stsc) {
    stscEntries.push([chunk, samples, 1])
    chunk += run
  }
  parts.push(fullBox("stsc", 0, table(stscEntries)))
  const offsets = Buffer.allocUnsafe(4 + chunkStarts.length * (co64 ? 8 : 4))
  offsets.writeUInt32BE(chunkStarts.length)
  chunkStarts.forEach((o, c) => co64 ? offsets.writeBigUInt64BE(BigInt(o), 4 + 8 * c) : offsets.writeUInt32BE(o, 4 + 4 * c))
  parts.push(fullBox(co64 ? "co64" : "stco", 0, offsets))
  // A sample group of one entry (AAC's roll distance) covers every sample; other groups are dropped.
  const sgpd = child(moov, stbl, "sgpd")
  const sbgp = child(moov, stbl, "sbgp")
  if (sgpd !== undefined && sbgp !== undefined && moov.readUInt8(sbgp.start) === 0 && moov.readUInt32BE(sbgp.start + 8) === 1) {
    parts.push(copyBox(moov, sgpd))
    const group = Buffer.from(copyBox(moov, sbgp))
    group.writeUInt32BE(count, group.length - 8)
    parts.push(group)
  }
  return box("stbl", ...parts)
}

/** Rewrite a version 0/1 duration field of a full box (mvhd, tkhd, mdhd) copied from the source. */
const withDuration = (source: Buffer, kind: "mvhd" | "tkhd" | "mdhd", value: number): Buffer => {
  const b = Buffer.from(source)
  const header = b.readUInt32BE(0) === 1 ? 16 : 8
  const wide = b.readUInt8(header) === 1
  const offset = header + 4 + (wide ? 16 : 8) + (kind === "tkhd" ? 8 : 4)
  if (wide) b.writeBigUInt64BE(BigInt(value), offset)
  else if (value > 0xffffffff) unsupported(`a ${kind} duration too long for its box`)
  else b.writeUInt32BE(value, offset)
  return b
}

const trakOf = (movie: Movie, k: Kept, presentedUnits: number, co64: boolean): Buffer => {
  const moov = movie.moov
  const trak = k.track.trak
  const mdia = child(moov, trak, "mdia")!
  const minf = child(moov, mdia, "minf")!
  const stbl = child(moov, minf, "stbl")!
  const lastSample = k.samples[k.samples.length - 1]!
  const mediaDuration = k.track.dts[lastSample + 1]! - k.track.dts[k.samples[0]!]!
  const wide = presentedUnits > 0xffffffff || k.editMedia > 0x7fffffff
  const elst = wide
    ? fullBox("elst", 1, u32(1), u64(presentedUnits), u64(k.editMedia), u32(0x10000))
    : fullBox("elst", 0, u32(1), u32(presentedUnits), u32(k.editMedia), u32(0x10000))
  const minfParts = boxesIn(moov, minf.start, minf.end).map((b) =>
    b.type === "stbl" ? stblOf(moov, k, stbl, co64) : copyBox(moov, b)
  )
  const mdiaParts = boxesIn(moov, mdia.start, mdia.end).map((b) =>
    b.type === "mdhd"
      ? withDuration(copyBox(moov, b), "mdhd", mediaDuration)
      : b.type === "minf"
      ? box("minf", ...minfParts)
      : copyBox(moov, b)
  )
  const parts: Array<Buffer> = []
  for (const b of boxesIn(moov, trak.start, trak.end)) {
    if (b.type === "tkhd") parts.push(withDuration(copyBox(moov, b), "tkhd", presentedUnits), box("edts", elst))
    else if (b.type === "mdia") parts.push(box("mdia", ...mdiaParts))
    else if (b.type !== "edts" && b.type !== "tref") parts.push(copyBox(moov, b))
  }
  return box("trak", ...parts)
}

/**
 * The clip's `moov`, each kept sample at `newOffset` (see the module's
 * description); `co64` when an offset passes 4 GB.
 *
 * @internal
 */
export const moovOf = (movie: Movie, kept: ReadonlyArray<Kept>, presentedUnits: number, co64: boolean): Buffer => {
  const parts: Array<Buffer> = []
  for (const b of movie.top) {
    if (b.type === "mvhd") parts.push(withDuration(copyBox(movie.moov, b), "mvhd", presentedUnits))
    else if (b.type === "trak") {
      const k = kept.find((k) => k.track.trak === b)
      if (k !== undefined) parts.push(trakOf(movie, k, presentedUnits, co64))
    } else if (b.type !== "iods" && b.type !== "mvex") parts.push(copyBox(movie.moov, b))
  }
  return box("moov", ...parts)
}
