/**
 * Reads the hidden lead-in of an mp4 clip from the head of its bytes: the
 * start of the video track's edit list (`moov/trak/edts/elst`), in seconds
 * of the track's own timescale (`mdia/mdhd`). An exact clip stores the
 * frames from the keyframe before the rally and hides them with this edit.
 */

interface Box {
  readonly type: string
  /** Offset of the box's payload. */
  readonly start: number
  readonly end: number
}

const boxes = (view: DataView, from: number, to: number): Array<Box> => {
  const found: Array<Box> = []
  let at = from
  while (at + 8 <= to) {
    let size = view.getUint32(at)
    const type = String.fromCharCode(view.getUint8(at + 4), view.getUint8(at + 5), view.getUint8(at + 6), view.getUint8(at + 7))
    let header = 8
    if (size === 1) {
      if (at + 16 > to) break
      size = Number(view.getBigUint64(at + 8))
      header = 16
    } else if (size === 0) size = to - at
    if (size < header) break
    found.push({ type, start: at + header, end: Math.min(at + size, to) })
    at += size
  }
  return found
}

const child = (view: DataView, box: Box | undefined, type: string): Box | undefined =>
  box === undefined ? undefined : boxes(view, box.start, box.end).find((b) => b.type === type)

const fourCC = (view: DataView, at: number): string =>
  String.fromCharCode(view.getUint8(at), view.getUint8(at + 1), view.getUint8(at + 2), view.getUint8(at + 3))

/** `media_time` of the first non-empty edit, or undefined. */
const editStart = (view: DataView, elst: Box): number | undefined => {
  const version = view.getUint8(elst.start)
  const count = view.getUint32(elst.start + 4)
  let at = elst.start + 8
  for (let i = 0; i < count && at < elst.end; i++) {
    const mediaTime = version === 1 ? Number(view.getBigInt64(at + 8)) : view.getInt32(at + 4)
    // -1 is an empty edit (a delay before the media starts), not a start.
    if (mediaTime >= 0) return mediaTime
    at += version === 1 ? 20 : 12
  }
  return undefined
}

/** The first sample's composition offset (`ctts`): how late its picture is presented after it is decoded. */
const firstOffset = (view: DataView, stbl: Box | undefined): number => {
  const ctts = child(view, stbl, "ctts")
  if (ctts === undefined || view.getUint32(ctts.start + 4) === 0) return 0
  return view.getUint8(ctts.start) === 1 ? view.getInt32(ctts.start + 12) : view.getUint32(ctts.start + 12)
}

/**
 * The seconds of pictures the video track's edit list hides before its
 * first presented frame, or 0 when there is none or the head holds no
 * complete `moov` (not a faststart file). The edit's start counts from the
 * first decoded sample; the part of it that only skips that sample's
 * composition delay (B-frames) hides no picture.
 */
export const leadIn = (bytes: ArrayBuffer): number => {
  const view = new DataView(bytes)
  const moov = boxes(view, 0, view.byteLength).find((b) => b.type === "moov")
  if (moov === undefined) return 0
  for (const trak of boxes(view, moov.start, moov.end).filter((b) => b.type === "trak")) {
    const mdia = child(view, trak, "mdia")
    const hdlr = child(view, mdia, "hdlr")
    const mdhd = child(view, mdia, "mdhd")
    const elst = child(view, child(view, trak, "edts"), "elst")
    if (hdlr === undefined || mdhd === undefined || fourCC(view, hdlr.start + 8) !== "vide") continue
    if (elst === undefined) return 0
    const timescale = view.getUint32(mdhd.start + (view.getUint8(mdhd.start) === 1 ? 20 : 12))
    const start = editStart(view, elst)
    if (start === undefined || timescale === 0) return 0
    const offset = firstOffset(view, child(view, child(view, mdia, "minf"), "stbl"))
    return Math.max(0, start - offset) / timescale
  }
  return 0
}
