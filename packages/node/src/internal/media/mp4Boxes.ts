/**
 * Walking mp4/mov (ISO BMFF) boxes held in a buffer: one reading of a box
 * header (32-bit size, 64-bit `largesize`, size 0 for "to the end"), shared
 * by the clip check, the edit-list patch and the sample-table reader so the
 * three agree on what a well-formed box is.
 *
 * @internal
 */

/** A box: its type, where its payload starts and where it ends (offsets in the buffer it was read from). @internal */
export interface Box {
  readonly type: string
  readonly start: number
  readonly end: number
}

/** A box whose size does not fit where it lies; the message says which and where. @internal */
export class BoxError extends Error {}

/** A layout the in-process reader does not model; the message says which. @internal */
export class Mp4Unsupported extends Error {}

/**
 * The header at `at` in `buffer`: type, total size and header length. A
 * size of 0 means "to the end of the parent", `room` bytes from `at`. Throws
 * a `BoxError` when a 64-bit size does not fit in the bytes given.
 *
 * @internal
 */
export const headerAt = (buffer: Buffer, at: number, room: number): { type: string; size: number; header: number } => {
  const type = buffer.toString("latin1", at + 4, at + 8)
  const size = buffer.readUInt32BE(at)
  if (size === 1) {
    if (at + 16 > buffer.length || room < 16) throw new BoxError(`the ${type} box is cut short`)
    return { type, size: Number(buffer.readBigUInt64BE(at + 8)), header: 16 }
  }
  return { type, size: size === 0 ? room : size, header: 8 }
}

/**
 * The boxes between `from` and `to` in `buffer`, in order. `base` is the
 * buffer's offset in the file, for the error's byte position.
 *
 * @internal
 */
export const boxesIn = (buffer: Buffer, from: number, to: number, base = 0): Array<Box> => {
  const boxes: Array<Box> = []
  let at = from
  while (at + 8 <= to) {
    const { header, size, type } = headerAt(buffer, at, to - at)
    if (size < header || at + size > to) throw new BoxError(`the ${type} box at byte ${base + at} overruns its parent`)
    boxes.push({ type, start: at + header, end: at + size })
    at += size
  }
  return boxes
}

/** The first child of `parent` of this type. @internal */
export const child = (buffer: Buffer, parent: Box, type: string): Box | undefined =>
  boxesIn(buffer, parent.start, parent.end).find((b) => b.type === type)

/** Version-dependent (timescale, duration) of an mvhd or mdhd box. @internal */
export const timing = (buffer: Buffer, box: Box): { timescale: number; duration: number } => {
  const version = buffer.readUInt8(box.start)
  return version === 1
    ? { timescale: buffer.readUInt32BE(box.start + 20), duration: Number(buffer.readBigUInt64BE(box.start + 24)) }
    : { timescale: buffer.readUInt32BE(box.start + 12), duration: buffer.readUInt32BE(box.start + 16) }
}
