/**
 * Trimming the presented end of an mp4 clip in place: ffmpeg writes each
 * track's edit list from its first to its last presented sample, so a
 * stream-copied clip shows the frames past the cut that B-frame reordering
 * pulled in (and its audio and video end apart). Setting every edit's
 * duration, and the track and movie durations, to the rally's length makes
 * players that honour edit lists end both streams at the rally's last frame.
 *
 * Only the `moov` box is read and rewritten (same size, same offset).
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { type Box, boxesIn, child, headerAt } from "./mp4Boxes.js"

/** What the patch found and did. @internal */
export interface EditListPatch {
  /** Movie timescale (units per second of the edit and movie durations). */
  readonly movieTimescale: number
  /** Per track, in file order. */
  readonly tracks: ReadonlyArray<{
    readonly handler: string
    /** Media time where the track's single edit starts, in seconds (the hidden lead-in plus any reorder delay). */
    readonly mediaStart: number
    readonly edits: number
  }>
}

/** Offset of a full box's duration field and whether it is 64-bit (mvhd, tkhd, mdhd share the layout up to it). */
const durationField = (buf: Buffer, box: Box, kind: "mvhd" | "tkhd"): { offset: number; wide: boolean } => {
  const body = box.start
  const wide = buf.readUInt8(body) === 1
  if (kind === "mvhd") return { offset: body + (wide ? 4 + 8 + 8 + 4 : 4 + 4 + 4 + 4), wide }
  return { offset: body + (wide ? 4 + 8 + 8 + 4 + 4 : 4 + 4 + 4 + 4 + 4), wide }
}

const writeDuration = (buf: Buffer, field: { offset: number; wide: boolean }, value: number) => {
  if (field.wide) buf.writeBigUInt64BE(BigInt(value), field.offset)
  else buf.writeUInt32BE(Math.min(value, 0xffffffff), field.offset)
}

/**
 * Patch the `moov` held in `buf`: every track's single edit, every tkhd and
 * the mvhd get `seconds` as duration. Throws when the layout is not the
 * one ffmpeg writes (one `elst` entry per track).
 *
 * @internal
 */
export const patchMoov = (buf: Buffer, moov: Box, seconds: number): EditListPatch => {
  const mvhd = child(buf, moov, "mvhd")
  if (mvhd === undefined) throw new Error("no mvhd box")
  const mvhdBody = mvhd.start
  const wideMovie = buf.readUInt8(mvhdBody) === 1
  const movieTimescale = buf.readUInt32BE(mvhdBody + (wideMovie ? 4 + 16 : 4 + 8))
  const duration = Math.max(1, Math.round(seconds * movieTimescale))
  writeDuration(buf, durationField(buf, mvhd, "mvhd"), duration)
  const tracks: Array<EditListPatch["tracks"][number]> = []
  for (const trak of boxesIn(buf, moov.start, moov.end).filter((box) => box.type === "trak")) {
    const tkhd = child(buf, trak, "tkhd")
    const mdia = child(buf, trak, "mdia")
    const mdhd = mdia === undefined ? undefined : child(buf, mdia, "mdhd")
    const hdlr = mdia === undefined ? undefined : child(buf, mdia, "hdlr")
    if (tkhd === undefined || mdhd === undefined || hdlr === undefined) throw new Error("incomplete trak box")
    const handler = buf.toString("latin1", hdlr.start + 8, hdlr.start + 12)
    const mdhdBody = mdhd.start
    const mediaTimescale = buf.readUInt32BE(mdhdBody + (buf.readUInt8(mdhdBody) === 1 ? 4 + 16 : 4 + 8))
    writeDuration(buf, durationField(buf, tkhd, "tkhd"), duration)
    const edts = child(buf, trak, "edts")
    const elst = edts === undefined ? undefined : child(buf, edts, "elst")
    if (elst === undefined) {
      tracks.push({ handler, mediaStart: 0, edits: 0 })
      continue
    }
    const body = elst.start
    const wide = buf.readUInt8(body) === 1
    const count = buf.readUInt32BE(body + 4)
    // ffmpeg writes an empty edit first when a track starts late; only the
    // last (media) edit is the one that ends the track.
    const entrySize = wide ? 20 : 12
    const last = body + 8 + (count - 1) * entrySize
    if (count < 1 || last + entrySize > elst.end) throw new Error("unexpected elst layout")
    const mediaTime = wide ? Number(buf.readBigInt64BE(last + 8)) : buf.readInt32BE(last + 4)
    let before = 0
    for (let i = 0; i < count - 1; i++) {
      const entry = body + 8 + i * entrySize
      before += wide ? Number(buf.readBigUInt64BE(entry)) : buf.readUInt32BE(entry)
    }
    const remaining = Math.max(1, duration - before)
    if (wide) buf.writeBigUInt64BE(BigInt(remaining), last)
    else buf.writeUInt32BE(remaining, last)
    tracks.push({ handler, mediaStart: mediaTime / mediaTimescale, edits: count })
  }
  return { movieTimescale, tracks }
}

/**
 * Set the presented length of the mp4 at `path` to `seconds` (see the
 * module's description). Synchronous: it reads and writes one box.
 *
 * @internal
 */
export const trimPresentedEnd = (path: string, seconds: number): EditListPatch => {
  const fd = NodeFs.openSync(path, "r+")
  try {
    const size = NodeFs.fstatSync(fd).size
    const header = Buffer.alloc(16)
    let offset = 0
    while (offset + 8 <= size) {
      NodeFs.readSync(fd, header, 0, 16, offset)
      const { size: boxSize, type } = headerAt(header, 0, size - offset)
      if (boxSize < 8) throw new Error(`malformed ${type} box`)
      if (type === "moov") {
        const buf = Buffer.alloc(boxSize)
        NodeFs.readSync(fd, buf, 0, boxSize, offset)
        const patch = patchMoov(buf, boxesIn(buf, 0, boxSize)[0]!, seconds)
        NodeFs.writeSync(fd, buf, 0, boxSize, offset)
        return patch
      }
      offset += boxSize
    }
    throw new Error("no moov box")
  } finally {
    NodeFs.closeSync(fd)
  }
}
