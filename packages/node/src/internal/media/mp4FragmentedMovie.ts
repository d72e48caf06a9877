/**
 * A fragmented mp4's `Movie`: the tracks read from its `moov` (without
 * samples) given the samples of its fragments (`mp4Fragments`), and the
 * duration the fragments present when the movie header gives none. Kept
 * apart from the fragment parsing so each stays small.
 *
 * @internal
 */
import { Mp4Unsupported } from "./mp4Boxes.js"
import { type FragmentSamples, readFragments, type TopBox } from "./mp4Fragments.js"
import type { Movie, Track } from "./mp4Tracks.js"

const unsupported = (reason: string): never => {
  throw new Mp4Unsupported(reason)
}

/** `track` (read from the moov, without samples) with the samples of its fragments. */
const fragmentedTrack = (track: Track, samples: FragmentSamples): Track => {
  if (track.n > 0) unsupported("samples both in the moov and in fragments")
  // ffmpeg times a fragmented track's edit list otherwise than a progressive one's (no mov_fix_index).
  const edited = track.editRefusal !== undefined || track.editMedia !== 0 || track.editDelay !== 0
  const refusal = edited ? "an edit list in a fragmented mp4" : undefined
  let hasStss = false
  for (let i = 0; i < samples.n && !hasStss; i++) hasStss = samples.key[i] === 0
  return {
    trak: track.trak,
    id: track.id,
    handler: track.handler,
    format: track.format,
    timescale: track.timescale,
    ...samples,
    shift: 0,
    hasStss,
    sdtp: undefined,
    editMedia: 0,
    editDelay: 0,
    editRefusal: refusal,
    indexRefusal: refusal ?? (samples.n === 0 ? "no samples" : undefined),
    fragmented: true
  }
}

/**
 * `movie` (its moov read, its tracks without samples) with the samples of
 * the fragments found by the header walk, and, when the movie header gives
 * none, the duration the fragments present (as ffprobe gives it: from the
 * earliest start of any track to the latest end).
 *
 * @internal
 */
export const fragmentedMovie = (
  fd: number,
  movie: Movie,
  firstMoof: number,
  sidxs: ReadonlyArray<TopBox>
): Movie => {
  const audioIds = new Set(movie.tracks.filter((t) => t.handler === "soun").map((t) => t.id))
  let samples: Map<number, FragmentSamples>
  try {
    samples = readFragments(fd, movie.moov, movie.top, firstMoof, sidxs, audioIds)
  } catch (error) {
    if (error instanceof Mp4Unsupported) throw error
    // A box or table that reads out of range: a malformed file, left to ffmpeg (which gives its typed errors).
    throw new Mp4Unsupported(`a malformed fragment (${error instanceof Error ? error.message : String(error)})`)
  }
  const empty: FragmentSamples = {
    n: 0,
    offset: new Float64Array(0),
    size: new Uint32Array(0),
    dts: new Float64Array(1),
    ctts: undefined,
    cttsMin: 0,
    key: new Uint8Array(0)
  }
  const tracks = movie.tracks.map((t) => fragmentedTrack(t, samples.get(t.id) ?? empty))
  let movieDuration = movie.movieDuration
  if (movieDuration === 0) {
    let start = Infinity
    let end = -Infinity
    for (const t of tracks) {
      if (t.n === 0) continue
      let first = Infinity
      // Composition offsets reorder a few frames: the earliest of the first ones is the track's start.
      for (let i = 0; i < Math.min(t.n, 64); i++) first = Math.min(first, t.dts[i]! + (t.ctts?.[i] ?? 0))
      start = Math.min(start, first / t.timescale)
      end = Math.max(end, (first + t.dts[t.n]! - t.dts[0]!) / t.timescale)
    }
    if (end > start) movieDuration = Math.round((end - start) * movie.movieTimescale)
  }
  return { ...movie, tracks, movieDuration }
}
