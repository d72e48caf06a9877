/**
 * The packet list of an mp4/mov source's first video stream, read in process
 * from its `moov` sample tables (as `mp4Tracks` reads them, once per source). Listing the packets with ffprobe demuxes the
 * whole file, and that pass was most of the time a match's first copy or
 * exact cut took beyond ffmpeg's own; the tables hold the same facts in a
 * few hundred kilobytes, and no media data is read here.
 *
 * It replays what ffmpeg's mov demuxer does with the tables (the index it
 * builds here, then its rewrite of it for a single edit: `mp4IndexEdit`),
 * so its answer is what ffprobe prints for `-select_streams v:0
 * -show_entries packet=pts_time,dts_time,flags`, to the microsecond. A
 * fragmented file's tables come from its `moof`s (`mp4Fragments`). Whatever
 * it does not model exactly (several or empty edits, several video tracks,
 * partial sync samples, codecs it was not checked on...) is `Unsupported`:
 * the caller then asks ffprobe.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { child, timing } from "./mp4Boxes.js"
import { applyEdit, rescale, type SampleTable } from "./mp4IndexEdit.js"
import { type Movie, movieFor, type Track } from "./mp4Tracks.js"

/** @internal */
export type PacketIndex =
  | {
    readonly _tag: "Index"
    /** Per packet, in decode order: times in seconds as ffprobe prints them (made on first read), and the keyframes. */
    readonly pts: Float64Array
    readonly dts: Float64Array
    readonly key: Uint8Array
    /** The keyframes' times, in decode order: what an open needs, without every packet's. */
    readonly keyPts: Float64Array
    readonly keyDts: Float64Array
    /** Set when the file ends inside the video's data: the list then stops before the first packet cut off. */
    readonly truncated: string | undefined
  }
  | { readonly _tag: "Unsupported"; readonly reason: string }

class Unsupported extends Error {}
const unsupported = (reason: string): never => {
  throw new Unsupported(reason)
}

/** Video sample entries this reader was checked against ffprobe on. */
const videoFormats = new Set(["avc1", "avc3", "hvc1", "hev1"])
/** Sample entries ffmpeg makes neither audio nor video of (timecode, camera metadata, captions). */
const dataFormats = new Set(["tmcd", "gpmd", "fdsc", "mebx", "camm", "rtmd", "text", "tx3g", "c608", "c708", "wvtt"])

/**
 * Whether ffmpeg makes a video stream of this track: a `vide` handler does,
 * and so would another handler's track holding a video sample entry, so
 * only the known audio and data tracks may come before the video.
 */
const isVideo = (track: Track): boolean => {
  if (track.handler === "vide") return videoFormats.has(track.format) || unsupported(`a ${track.format} video track`)
  return track.handler === "soun" || dataFormats.has(track.format)
    ? false
    : unsupported(`a ${track.handler} track of ${track.format}`)
}

/** The index ffmpeg builds from the track's tables before any edit: decode times less its dts shift. */
const sampleTable = (track: Track): SampleTable => {
  if (track.indexRefusal !== undefined) unsupported(track.indexRefusal)
  let dts = track.dts
  if (track.shift !== 0) {
    dts = new Float64Array(track.n + 1)
    for (let i = 0; i <= track.n; i++) dts[i] = track.dts[i]! - track.shift
  }
  return { n: track.n, dts, offset: track.ctts, shift: track.shift, key: track.key }
}

const indexOf = (movie: Movie): PacketIndex => {
  const { moov, top } = movie
  let video: Track | undefined
  let metadataFirst = false
  let t = 0
  for (const box of top) {
    // Cover art in udta/meta becomes a video stream where it is read: before the track, it would be v:0.
    if (box.type === "udta" || box.type === "meta") metadataFirst ||= video === undefined
    if (box.type !== "trak") continue
    const track = movie.tracks[t++]!
    if (!isVideo(track)) continue
    if (video !== undefined) unsupported("several video tracks")
    if (metadataFirst) unsupported("metadata before the video track")
    video = track
  }
  if (video === undefined) return unsupported("no video track")
  const timescale = video.timescale
  if (timescale > 0x7fffffff) unsupported(`a timescale of ${timescale}`)
  const table = sampleTable(video)

  // Without an edit ffmpeg keeps every sample with its own times.
  let kept: Int32Array | undefined
  let dts: ArrayLike<number> = table.dts
  // A fragmented track's edit list (refused unless it changes nothing) is not ffmpeg's mov_fix_index.
  const edts = video.fragmented === true ? undefined : child(moov, video.trak, "edts")
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

  const listed = kept?.length ?? table.n
  // ffprobe prints ts * (1 / timescale) with %f, rounded to the microsecond. Math.round gives the same digits
  // away from a half microsecond; near one, toFixed rounds the double's exact expansion as printf does.
  const seconds = (ts: number) => {
    const time = ts * (1 / timescale)
    const micro = time * 1e6
    const magnitude = Math.abs(micro)
    return Math.abs(magnitude - Math.floor(magnitude) - 0.5) > 1e-3 ? Math.round(micro) / 1e6 : Number(time.toFixed(6))
  }
  const { offset: pos, size } = video
  const { key: keyOf, offset, shift } = table
  const sampleAt = (i: number) => kept === undefined ? i : kept[i]!
  const ptsAt = (i: number) => seconds(dts[i]! + (offset === undefined ? 0 : shift + offset[sampleAt(i)]!))
  // A file cut short: the list stops before the first packet whose bytes are not all there.
  let truncated: string | undefined
  let count = 0
  let keyframes = 0
  for (; count < listed; count++) {
    const sample = sampleAt(count)
    if (pos[sample]! + size[sample]! > movie.fileSize) {
      truncated = `the file ends at byte ${movie.fileSize}, inside video packet ${count + 1} of ${listed}`
      break
    }
    keyframes += keyOf[sample]!
  }
  const key = new Uint8Array(count)
  const keyPts = new Float64Array(keyframes)
  const keyDts = new Float64Array(keyframes)
  for (let i = 0, k = 0; i < count; i++) {
    key[i] = keyOf[sampleAt(i)]!
    if (key[i] === 0) continue
    keyPts[k] = ptsAt(i)
    keyDts[k++] = seconds(dts[i]!)
  }
  // Every packet's times are made when first asked for: an open needs the keyframes' only.
  let times: { pts: Float64Array; dts: Float64Array } | undefined
  const all = () => {
    if (times !== undefined) return times
    times = { pts: new Float64Array(count), dts: new Float64Array(count) }
    for (let i = 0; i < count; i++) {
      times.dts[i] = seconds(dts[i]!)
      times.pts[i] = ptsAt(i)
    }
    return times
  }
  return {
    _tag: "Index",
    get pts() {
      return all().pts
    },
    get dts() {
      return all().dts
    },
    key,
    keyPts,
    keyDts,
    truncated
  }
}

const failed = (error: unknown): PacketIndex => ({
  _tag: "Unsupported",
  reason: error instanceof Error ? error.message : String(error)
})

/**
 * The packet list of the first video stream of `movie` (see the module's
 * description), from the tables read once when the source was opened, or
 * why it is left to ffprobe.
 *
 * @internal
 */
export const packetIndexOf = (movie: Movie): PacketIndex => {
  try {
    return indexOf(movie)
  } catch (error) {
    // Any surprise (a malformed table reads out of range...) leaves the file to ffprobe.
    return failed(error)
  }
}

/**
 * The packet list of the first video stream of the mp4/mov file at `path`,
 * its tables read once for `owner` (the source's probe entry, see
 * `movieFor`), or why it is left to ffprobe.
 *
 * @internal
 */
export const readPacketIndex = (path: string, owner?: object): PacketIndex => {
  let fd: number | undefined
  try {
    fd = NodeFs.openSync(path, "r")
    return indexOf(movieFor(owner, fd))
  } catch (error) {
    return failed(error)
  } finally {
    if (fd !== undefined) NodeFs.closeSync(fd)
  }
}
