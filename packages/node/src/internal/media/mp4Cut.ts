/**
 * Copy and exact cuts of an mp4/mov source without a child process: the
 * kept samples of every clip track (the first video track and every audio
 * track, as ffmpeg's `-map 0:v:0 -map 1:a`) are copied as byte ranges as
 * they lie in the source, in pieces of a few megabytes, and new sample
 * tables, durations and edit lists are written around them (moov first).
 *
 * The samples kept, and where each track's edit list starts, are what
 * ffmpeg's stream copy of the same plan keeps (`streamCopyArgs`): the video
 * from the planned keyframe to the last frame presented before the end, the
 * audio from where ffmpeg's seek of the audio input lands (the decode
 * time of the video keyframe at or before the present time) to
 * a quarter second past the end; both presented from `present` for
 * `presented` seconds. The media corpus test compares decoded frames and
 * audio samples of both.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { type Box, boxesIn, child } from "./mp4Boxes.js"
import { type Movie, movieFor, Mp4Unsupported, ptsOf, type Track } from "./mp4Tracks.js"

/** What to cut: times in seconds relative to the source's start time, as the export plan gives them. @internal */
export interface Mp4CutPlan {
  /** The keyframe the stored video starts at (`clipStart`, clamped at 0 as the plan does). */
  readonly keyframe: number
  /** The first presented frame (exact) or the keyframe (copy). */
  readonly present: number
  /** Seconds presented from `present`. */
  readonly presented: number
  /** The source's start time (ffprobe's format start_time, or what `mp4Probe` computed). */
  readonly startTime: number
}

/** What the cut wrote. @internal */
export interface Mp4CutResult {
  readonly bytes: number
  readonly videoFrames: number
  readonly tracks: number
}

const unsupported = (reason: string): never => {
  throw new Mp4Unsupported(reason)
}

/** A kept track: its samples (decode order) and its new edit's media time. */
interface Kept {
  readonly track: Track
  readonly samples: Int32Array
  readonly editMedia: number
  /** Where each kept sample lands in the clip (absolute file offsets), filled by the layout. */
  newOffset: Float64Array
}

const tolerance = 1e-3

/**
 * How ffmpeg's mov demuxer indexes a track (mov_fix_index, one edit): `zero` is the raw decode time its
 * index time 0 stands for, `start` the raw decode time of the first sample the edit presents, and
 * `minCorrected` what its seek subtracts from a target (min_corrected_pts plus the dts shift).
 */
const ffIndex = (t: Track): { zero: number; start: number; minCorrected: number } => {
  const known = ffIndexes.get(t)
  if (known !== undefined) return known
  const index = ffIndexOf(t)
  ffIndexes.set(t, index)
  return index
}
const ffIndexes = new WeakMap<Track, { zero: number; start: number; minCorrected: number }>()
const ffIndexOf = (t: Track): { zero: number; start: number; minCorrected: number } => {
  const shift = t.shift
  if (t.editMedia === 0 && t.editDelay === 0) return { zero: shift, start: 0, minCorrected: shift }
  const cts = (i: number) => t.dts[i]! + (t.ctts?.[i] ?? 0)
  let s = 0
  while (s < t.n && cts(s) < t.editMedia) s++
  if (s === t.n) return { zero: t.editMedia, start: 0, minCorrected: 0 }
  if (t.ctts === undefined) return { zero: t.editMedia, start: t.dts[s]!, minCorrected: t.dts[s]! - t.editMedia }
  let minCts = Infinity
  // No sample decoded later can present earlier than its dts plus the smallest offset: the scan stops there.
  for (let i = s; i < t.n && t.dts[i]! + t.cttsMin < minCts; i++) if (cts(i) >= t.editMedia) minCts = Math.min(minCts, cts(i))
  return { zero: minCts + shift, start: t.dts[s]!, minCorrected: minCts - t.dts[s]! + shift }
}

/** How many of the first samples satisfy `holds`, which holds for a prefix of the samples (binary search). */
const prefix = (n: number, holds: (i: number) => boolean): number => {
  let lo = 0
  for (let hi = n; lo < hi;) {
    const mid = (lo + hi) >>> 1
    if (holds(mid)) lo = mid + 1
    else hi = mid
  }
  return lo
}

const rescale = (a: bigint, b: bigint, c: bigint): bigint => {
  const half = c / 2n
  return a >= 0n ? (a * b + half) / c : -((-a * b + half) / c)
}

/** The samples of each clip track, and the presented ranges of the new edit lists. */
const keep = (movie: Movie, plan: Mp4CutPlan): Array<Kept> => {
  const video = movie.tracks.find((t) => t.handler === "vide") ?? unsupported("no video track")
  const audios = movie.tracks.filter((t) => t.handler === "soun")
  if (video.n === 0) unsupported("an empty video track")
  for (const t of [video, ...audios]) if (t.editRefusal !== undefined) unsupported(t.editRefusal)
  const presentUs = Math.floor(plan.present * 1e6) + Math.round(plan.startTime * 1e6)
  const presentAbs = presentUs / 1e6
  const keyAbs = plan.keyframe + plan.startTime
  const endAbs = presentAbs + plan.presented

  // The stored video: from the last sync sample presented at or before the planned keyframe.
  // Samples decoded 2 s past it present past it too (composition offsets are a few frames).
  const decodedBy = (t: Track, seconds: number) =>
    prefix(t.n, (i) => t.editDelay + (t.dts[i]! - t.editMedia) / t.timescale <= seconds)
  let k0 = decodedBy(video, keyAbs + tolerance + 2) - 1
  while (k0 >= 0 && !(video.key[k0] === 1 && ptsOf(video, k0) <= keyAbs + tolerance)) k0--
  if (k0 < 0) unsupported("no keyframe before the rally")
  let first = -1
  let last = -1
  for (let i = k0; i < video.n; i++) {
    const pts = ptsOf(video, i)
    if (pts < endAbs - 1e-6) last = i
    if (Math.abs(pts - presentAbs) < tolerance) first = i
    // Reordering moves a frame by a few frames at most: a keyframe a second past the end ends the search.
    if (video.key[i] === 1 && pts > endAbs + 1 && i > last) break
  }
  if (first < 0 || last < first) unsupported("no video frame at the planned start")
  // Open GOP: the pictures after the keyframe that present before it reference pictures cut away; they are
  // dropped (nothing refers to them once the keyframe's GOP starts), as ffmpeg's copy drops them.
  const keyPts = ptsOf(video, k0)
  const videoSamples: Array<number> = []
  for (let i = k0; i <= last; i++) if (i === k0 || ptsOf(video, i) >= keyPts - 1e-9) videoSamples.push(i)
  const kept: Array<Kept> = [{
    track: video,
    samples: Int32Array.from(videoSamples),
    editMedia: video.dts[first]! - video.dts[k0]! + (video.ctts?.[first] ?? 0),
    newOffset: new Float64Array(0)
  }]

  // ffmpeg's seek of the audio input (mov_read_seek): the video lands on the last keyframe whose index
  // time is at or before the present time less the track's min_corrected_pts and dts shift, and every other
  // track on that keyframe's index time less its own min_corrected_pts. Index times count from the first
  // sample the edit presents (mov_fix_index).
  const v = ffIndex(video)
  const presentVideo = Math.round((presentAbs - video.editDelay) * video.timescale)
  let seekKey = prefix(video.n, (i) => video.dts[i]! - v.start <= presentVideo) - 1
  while (seekKey >= 0 && video.key[seekKey] !== 1) seekKey--
  const audioEnd = endAbs + 0.25
  for (const audio of audios) {
    if (audio.ctts !== undefined) unsupported("an audio track with composition offsets")
    if (audio.n === 0) continue
    const a = ffIndex(audio)
    const target = seekKey < 0
      ? -Infinity
      : Number(rescale(BigInt(video.dts[seekKey]! - v.zero), BigInt(audio.timescale), BigInt(video.timescale))) -
        a.minCorrected
    let a0 = Math.max(0, prefix(audio.n, (i) => audio.dts[i]! - a.zero <= target) - 1)
    // At least one packet before the one holding the first presented sample: an AAC frame decodes right
    // only after its predecessor (ffmpeg's own copy lacks it when the keyframe's dts is the present time).
    const holding = Math.max(0, prefix(audio.n, (i) => ptsOf(audio, i) <= presentAbs) - 1)
    a0 = Math.max(0, Math.min(a0, holding - 1))
    let a1 = -1
    for (let i = a0; i < audio.n && ptsOf(audio, i) < audioEnd; i++) a1 = i
    if (a1 < a0 || ptsOf(audio, a1) + (audio.dts[a1 + 1]! - audio.dts[a1]!) / audio.timescale < endAbs - 0.1) {
      unsupported("an audio track that ends before the rally")
    }
    const presentTicks = rescale(BigInt(presentUs), BigInt(audio.timescale), 1_000_000n)
    const delayTicks = Math.round(audio.editDelay * audio.timescale)
    const media = Number(presentTicks) - delayTicks + audio.editMedia - audio.dts[a0]!
    if (media < 0) unsupported("an audio track that starts after the rally")
    const samples = new Int32Array(a1 - a0 + 1)
    for (let i = 0; i < samples.length; i++) samples[i] = a0 + i
    kept.push({ track: audio, samples, editMedia: media, newOffset: new Float64Array(0) })
  }
  return kept
}

// ---- writing boxes -----------------------------------------------------------------

const u32 = (value: number): Buffer => {
  const b = Buffer.allocUnsafe(4)
  b.writeUInt32BE(value)
  return b
}
const u64 = (value: number): Buffer => {
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

const moovOf = (movie: Movie, kept: ReadonlyArray<Kept>, presentedUnits: number, co64: boolean): Buffer => {
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

const piece = 4 * 1024 * 1024

/**
 * Cut `plan` out of the mp4/mov at `source` into a new file at `output`
 * (see the module's description). Rejects with `Mp4Unsupported` for a
 * source it does not model, before writing anything; `signal` stops the
 * copy between pieces.
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
    const movie = movieFor(owner, input.fd)
    const kept = keep(movie, plan)
    const { bytes, runs: copies } = layout(kept)
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

    const out = await NodeFs.promises.open(output, "w")
    try {
      await out.write(Buffer.concat([ftyp, moov, header]))
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
