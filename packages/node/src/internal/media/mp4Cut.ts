/**
 * Copy and exact cuts of an mp4/mov source without a child process: the
 * kept samples of every clip track (the first video track and every audio
 * track, as ffmpeg's `-map 0:v:0 -map 1:a`) are copied as byte ranges as
 * they lie in the source, in pieces of a few megabytes, and new sample
 * tables, durations and edit lists are written around them (moov first).
 *
 * The samples kept, and where each track's edit list starts, are what
 * ffmpeg's stream copy of the same plan keeps (`mp4CutPlan`); the `moov` is
 * written by `mp4Moov`; this module lays out and copies the byte ranges.
 * The media corpus test compares decoded frames and audio samples of both.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { keep, type Kept, type Mp4CutPlan } from "./mp4CutPlan.js"
import { moovOf, u32, u64 } from "./mp4Moov.js"
import { movieFor, Mp4Unsupported } from "./mp4Tracks.js"

export type { Mp4CutPlan } from "./mp4CutPlan.js"

/** What the cut wrote. @internal */
export interface Mp4CutResult {
  readonly bytes: number
  readonly videoFrames: number
  readonly tracks: number
}

const unsupported = (reason: string): never => {
  throw new Mp4Unsupported(reason)
}

/** A run of source bytes copied whole: where it lies and where it goes. */
interface Run {
  readonly from: number
  end: number
  to: number
}

/** The byte runs to copy, and each kept sample's offset in the clip relative to the mdat payload. */
const layout = (kept: ReadonlyArray<Kept>): { runs: Array<Run>; bytes: number } => {
  const samples: Array<{ offset: number; size: number; k: Kept; i: number }> = []
  for (const k of kept) {
    k.newOffset = new Float64Array(k.samples.length)
    k.samples.forEach((sample, i) => samples.push({ offset: k.track.offset[sample]!, size: k.track.size[sample]!, k, i }))
  }
  samples.sort((a, b) => a.offset - b.offset)
  const out: Array<Run> = []
  let bytes = 0
  for (const s of samples) {
    let run = out[out.length - 1]
    if (run !== undefined && s.offset < run.end) unsupported("samples that share bytes")
    if (run === undefined || s.offset !== run.end) {
      run = { from: s.offset, end: s.offset, to: bytes }
      out.push(run)
    }
    s.k.newOffset[s.i] = run.to + (s.offset - run.from)
    run.end += s.size
    bytes += s.size
  }
  return { runs: out, bytes }
}

/**
 * Everything written before the media data (ftyp, moov, mdat header), the
 * byte runs to copy after it, and where they start. Synchronous; any error
 * here (a table that reads or writes out of range) is a source the cutter
 * does not model, so it rejects with `Mp4Unsupported` before a byte is
 * written.
 */
const prepare = (
  owner: object | undefined,
  fd: number,
  plan: Mp4CutPlan
): { base: number; bytes: number; copies: Array<Run>; head: Buffer; kept: Array<Kept> } => {
  try {
    const movie = movieFor(owner, fd)
    const kept = keep(movie, plan)
    const { bytes, runs: copies } = layout(kept)
    // A sample past the end of the file (a file cut short, a broken table): nothing is written.
    const last = copies[copies.length - 1]
    if (last !== undefined && last.end > movie.fileSize) unsupported(`samples past the end of the file (byte ${movie.fileSize})`)
    const ftyp = movie.ftyp ?? unsupported("no ftyp box")
    const presentedUnits = Math.max(1, Math.round(plan.presented * movie.movieTimescale))
    const wideData = bytes + 16 > 0xffffffff
    const mdatHeader = wideData ? 16 : 8
    // Sizes first (they do not depend on the offsets), then the offsets.
    let co64 = false
    let moov = moovOf(movie, kept, presentedUnits, co64)
    if (ftyp.length + moov.length + mdatHeader + bytes > 0xffffffff) {
      co64 = true
      moov = moovOf(movie, kept, presentedUnits, co64)
    }
    const base = ftyp.length + moov.length + mdatHeader
    for (const k of kept) for (let i = 0; i < k.newOffset.length; i++) k.newOffset[i]! += base
    moov = moovOf(movie, kept, presentedUnits, co64)
    const header = wideData
      ? Buffer.concat([u32(1), Buffer.from("mdat", "latin1"), u64(bytes + 16)])
      : Buffer.concat([u32(bytes + 8), Buffer.from("mdat", "latin1")])
    return { base, bytes, copies, head: Buffer.concat([ftyp, moov, header]), kept }
  } catch (error) {
    if (error instanceof Mp4Unsupported) throw error
    throw new Mp4Unsupported(`a layout the cutter cannot read or write (${error instanceof Error ? error.message : String(error)})`)
  }
}

const piece = 4 * 1024 * 1024

/**
 * Cut `plan` out of the mp4/mov at `source` into a new file at `output`
 * (see the module's description). Rejects with `Mp4Unsupported` for a
 * source it does not model (malformed tables included), before writing
 * anything; `signal` stops the copy between pieces.
 *
 * @internal
 */
export const cutMp4 = async (
  source: string,
  output: string,
  plan: Mp4CutPlan,
  signal?: AbortSignal,
  /** The source's probe entry: its tables are read once per entry (see `movieFor`). */
  owner?: object
): Promise<Mp4CutResult> => {
  const input = await NodeFs.promises.open(source, "r")
  try {
    const { base, bytes, copies, head, kept } = prepare(owner, input.fd, plan)
    const out = await NodeFs.promises.open(output, "w")
    try {
      await out.write(head)
      const buffer = Buffer.allocUnsafe(Math.min(piece, Math.max(bytes, 1)))
      for (const run of copies) {
        for (let at = run.from; at < run.end;) {
          if (signal?.aborted === true) throw new Error("the cut was interrupted")
          const length = Math.min(buffer.length, run.end - at)
          const { bytesRead } = await input.read(buffer, 0, length, at)
          if (bytesRead < length) throw new Mp4Unsupported(`the file ends inside its media data, at byte ${at + bytesRead}`)
          await out.write(buffer, 0, length)
          at += length
        }
      }
    } finally {
      await out.close()
    }
    const video = kept[0]!
    return { bytes: base + bytes, videoFrames: video.samples.length, tracks: kept.length }
  } finally {
    await input.close()
  }
}

