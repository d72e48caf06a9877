/**
 * Opening an mp4/mov source without ffprobe: its streams, duration, start
 * time, frame rate and keyframe list read in process from the `moov` (the
 * sample entries name the codecs; `mp4Index` lists the video packets as
 * ffprobe would). What it cannot name or model (an unknown codec, no video
 * track, fragments, layouts `mp4Index` leaves to ffprobe) is `undefined`:
 * the caller then runs ffprobe, which also gives the typed errors of bad
 * files.
 *
 * @internal
 */
import { Domain } from "@rallycache/core"
import * as NodeFs from "node:fs"
import type { SourceEntry } from "./ffprobe.js"
import { keyframeInterval, keyframeList, packetArrays, seeksByIndex } from "../export/keyframePlan.js"
import { child } from "./mp4Boxes.js"
import { packetIndexOf } from "./mp4Index.js"
import { type Movie, ptsOf, readMovie, rememberMovie, type Track } from "./mp4Tracks.js"

/** ffprobe's format_name for every mp4/mov file. */
const formatName = "mov,mp4,m4a,3gp,3g2,mj2"

const videoCodecs: Record<string, string> = {
  avc1: "h264",
  avc3: "h264",
  hvc1: "hevc",
  hev1: "hevc",
  av01: "av1",
  vp09: "vp9",
  apch: "prores",
  apcn: "prores",
  apcs: "prores",
  apco: "prores",
  ap4h: "prores",
  ap4x: "prores"
}
const audioCodecs: Record<string, string> = {
  "ac-3": "ac3",
  "ec-3": "eac3",
  Opus: "opus",
  fLaC: "flac",
  alac: "alac",
  sowt: "pcm_s16le",
  twos: "pcm_s16be",
  ".mp3": "mp3"
}
/** MPEG-4 audio object types (esds) ffmpeg names aac or mp3. */
const mp4aObjects: Record<number, string> = { 0x40: "aac", 0x66: "aac", 0x67: "aac", 0x68: "aac", 0x69: "mp3", 0x6b: "mp3" }

/** The object type of the `esds` inside an `mp4a` sample entry (the first byte of its decoder config). */
const esdsObjectType = (movie: Movie, track: Track): number | undefined => {
  const moov = movie.moov
  const stsd = child(moov, child(moov, child(moov, child(moov, track.trak, "mdia")!, "minf")!, "stbl")!, "stsd")!
  const entry = stsd.start + 8
  const at = moov.indexOf("esds", entry, "latin1")
  if (at < 0 || at > stsd.end) return undefined
  // ES_Descriptor (tag 3), then DecoderConfigDescriptor (tag 4) whose first byte is the object type.
  const tag4 = moov.indexOf(4, at + 8)
  return tag4 < 0 || tag4 > stsd.end ? undefined : moov.readUInt8(tag4 + (moov[tag4 + 1]! & 0x80 ? 4 : 1) + 1)
}

const codecOf = (movie: Movie, track: Track): string | undefined => {
  if (track.handler === "vide") return videoCodecs[track.format]
  if (track.format === "mp4a") {
    const object = esdsObjectType(movie, track)
    return object === undefined ? undefined : mp4aObjects[object]
  }
  return audioCodecs[track.format]
}

/**
 * The probe of the mp4/mov file at `path` read in process, with its
 * keyframe list, or `undefined` to leave it to ffprobe.
 *
 * @internal
 */
export const mp4Probe = (path: string, fingerprint: string): SourceEntry | undefined => {
  let fd: number | undefined
  try {
    fd = NodeFs.openSync(path, "r")
    const movie = readMovie(fd)
    const video = movie.tracks.find((t) => t.handler === "vide" && t.n > 0)
    if (video === undefined) return undefined
    const videoCodec = codecOf(movie, video)
    const audios = movie.tracks.filter((t) => t.handler === "soun" && t.n > 0)
    const audioCodecNames = audios.map((t) => codecOf(movie, t))
    if (videoCodec === undefined || audioCodecNames.some((c) => c === undefined)) return undefined
    if (movie.tracks.some((t) => t.handler === "vide" && t !== video && videoCodecs[t.format] !== undefined)) {
      return undefined
    }
    if ([video, ...audios].some((t) => t.editRefusal !== undefined)) return undefined
    // The same tables give the keyframe list: they are read once per source.
    const index = packetIndexOf(movie)
    if (index._tag !== "Index") return undefined

    // ffprobe's start_time: the earliest presented time of any stream; its duration: the movie header's.
    const firstPts = (t: Track) => {
      if (t.editMedia !== 0 || t.editDelay !== 0) return t.editDelay
      let min = Infinity
      for (let i = 0; i < Math.min(t.n, 64); i++) min = Math.min(min, ptsOf(t, i))
      return min
    }
    const startTime = Math.min(...[video, ...audios].map(firstPts))
    const duration = movie.movieDuration / movie.movieTimescale
    if (!(duration > 0)) return undefined
    const mediaTicks = video.dts[video.n]! - video.dts[0]!
    const frameRate = mediaTicks > 0 ? (video.n * video.timescale) / mediaTicks : null
    const keyframes = keyframeList({ pts: index.keyPts, dts: index.keyDts }, startTime)
    const count = index.key.length
    // The per-packet arrays are made when a cut first plans with them: an open needs the keyframes only.
    let arrays: { framePts: Float64Array | undefined; packets: Float64Array | undefined } | undefined
    const lists = () => (arrays ??= packetArrays(index, startTime))
    const ctts = video.ctts
    const entry: SourceEntry = {
      path,
      info: new Domain.SourceInfo({
        fingerprint,
        duration,
        keyframeInterval: keyframeInterval(keyframes),
        hasVideo: true,
        hasAudio: audios.length > 0,
        frameRate
      }),
      format: formatName,
      startTime,
      layout: {
        video: videoCodec,
        videoTag: video.format,
        audio: audioCodecNames as Array<string>,
        seekByIndex: seeksByIndex(formatName),
        videoDelay: ctts !== undefined && ctts.some((v) => v !== ctts[0]),
        mov: true
      },
      keyframes,
      get framePts() {
        return lists().framePts
      },
      set framePts(framePts) {
        lists().framePts = framePts
      },
      get packets() {
        return lists().packets
      },
      set packets(packets) {
        lists().packets = packets
      },
      truncated: index.truncated === undefined
        ? undefined
        : { dataEnd: count >= 1 ? index.dts[count - 1]! - startTime : 0, detail: index.truncated }
    }
    rememberMovie(entry, movie)
    return entry
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) NodeFs.closeSync(fd)
  }
}
