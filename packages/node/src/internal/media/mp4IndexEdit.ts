/**
 * The rewrite ffmpeg's mov demuxer makes of a track's index for its edit
 * list (mov_fix_index), replayed for a single edit on the sample table
 * `mp4Index` reads: which samples ffprobe lists and with what decode times.
 * Kept apart from the box reading so each stays small; pure, on arrays.
 *
 * @internal
 */

/** A video track's samples before any edit, in decode order, as ffmpeg indexes them. @internal */
export interface SampleTable {
  readonly n: number
  /** Decode times in the track's timescale, less `shift`. */
  readonly dts: Float64Array
  /** Composition offsets (ctts), absent without a ctts box. */
  readonly offset: Int32Array | undefined
  /** ffmpeg's dts shift: what makes the composition offsets non-negative. */
  readonly shift: number
  readonly key: Uint8Array
}

/**
 * What ffmpeg's mov_fix_index makes of one edit (media time and duration in
 * the track's timescale): from the keyframe before the edit's start, every
 * sample up to the second keyframe past its end, with decode times counted
 * from the edit's start (the samples before it, kept for decoding, counted
 * back from there), then moved so that the earliest presented sample has
 * time 0. Returns the samples kept (indices into the table) and their dts,
 * or `undefined` when the edit presents none of them.
 *
 * @internal
 */
export const applyEdit = (
  t: SampleTable,
  media: number,
  duration: number
): { kept: Int32Array; dts: Float64Array } | undefined => {
  const { dts, key, n, offset, shift } = t
  const ctts = (i: number) => offset?.[i] ?? 0
  const target = media - shift
  // The last sample decoded at or before the edit's start (dts strictly increase: no zero stts delta).
  let lo = 0
  for (let hi = n; lo < hi;) {
    const mid = (lo + hi) >>> 1
    if (dts[mid]! <= target) lo = mid + 1
    else hi = mid
  }
  const last = lo - 1
  // Then back to a keyframe, and with reordering to one presented at or before the start.
  const back = (from: number, anyFrame: boolean) => {
    let i = from
    while (!anyFrame && i >= 0 && key[i] === 0) i--
    while (offset !== undefined && i >= 0 && !(key[i] === 1 && dts[i]! + ctts(i) <= target)) i--
    return i
  }
  let start = back(last, false)
  if (start < 0) start = Math.max(0, back(last, true))

  const end = media + duration
  // Typed, sized for every sample from the start: an edit over a whole 2-hour source keeps 200,000.
  const kept = new Int32Array(n - start)
  const times = new Float64Array(n - start)
  let count = 0
  // Frame durations of the samples before the edit's start, counted back once it starts.
  let before = 0
  let counter = -shift
  let started = false
  let minPts = -1
  let keyAfterEnd = false
  for (let i = start; i < n; i++) {
    const frame = i + 1 < n ? dts[i + 1]! - dts[i]! : duration
    const cts = dts[i]! + shift + ctts(i)
    if (cts < media || cts >= end) {
      if (!started) before++
    } else {
      // ffmpeg marks this minimum unset with -1, so a negative one is overwritten by the next sample: so here.
      const corrected = counter + ctts(i) + shift
      minPts = minPts < 0 ? corrected : Math.min(minPts, corrected)
      if (!started) {
        started = true
        let time = counter
        for (let k = 1; k <= before; k++) {
          const j = count - k
          const frameOf = kept[j]! + 1 < n ? dts[kept[j]! + 1]! - dts[kept[j]!]! : duration
          times[j] = time -= frameOf
        }
      }
    }
    kept[count] = i
    times[count++] = counter
    if (started) counter += frame
    if (cts + frame >= end && key[i] === 1) {
      // With B-frames, the frames after the first keyframe past the end may still belong to the edit.
      if (offset !== undefined && !keyAfterEnd) {
        keyAfterEnd = true
        continue
      }
      break
    }
  }
  if (!started) return undefined
  if (minPts > 0) for (let k = 0; k < count; k++) times[k]! -= minPts
  return { kept: kept.subarray(0, count), dts: times.subarray(0, count) }
}

/** ffmpeg's av_rescale: a * b / c rounded to nearest, halves away from zero (a, b, c >= 0). @internal */
export const rescale = (a: number, b: number, c: number): number =>
  Number((BigInt(a) * BigInt(b) + BigInt(c) / 2n) / BigInt(c))

