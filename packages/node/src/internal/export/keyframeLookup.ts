/**
 * Lookups over a source's keyframe and packet lists that cost the same for
 * a 2-hour source as for a 2-minute one: binary searches, and tables built
 * once per list (the lists are the source's probe entry's, shared by every
 * cut of it) where a search alone would still scan back or forward through
 * the file.
 *
 * @internal
 */

/** The first of `n` indices where `holds`, which holds for a suffix of them (binary search), or `n`. @internal */
export const firstWhere = (n: number, holds: (i: number) => boolean): number => {
  let lo = 0
  for (let hi = n; lo < hi;) {
    const mid = (lo + hi) >>> 1
    if (holds(mid)) hi = mid
    else lo = mid + 1
  }
  return lo
}

/** A keyframe's decode time, as the lists hold it. */
interface Decoded {
  readonly dts: number
}

const spacedTables = new WeakMap<ReadonlyArray<Decoded>, Map<number, Int32Array>>()

/**
 * For each index `i` of `keyframes`, the last index at or before it whose
 * next keyframe in the list decodes more than `gap` seconds later (the last
 * keyframe has none and always counts), or -1. Built once per list and gap:
 * a run of keyframes closer than `gap` (all-intra sources) would otherwise
 * be walked back through for every cut.
 *
 * @internal
 */
export const lastSpaced = (keyframes: ReadonlyArray<Decoded>, gap: number): Int32Array => {
  let byGap = spacedTables.get(keyframes)
  if (byGap === undefined) {
    byGap = new Map()
    spacedTables.set(keyframes, byGap)
  }
  const known = byGap.get(gap)
  if (known !== undefined) return known
  const table = new Int32Array(keyframes.length)
  for (let i = 0, last = -1; i < keyframes.length; i++) {
    const next = keyframes[i + 1]
    if (next === undefined || next.dts - keyframes[i]!.dts > gap) last = i
    table[i] = last
  }
  byGap.set(gap, table)
  return table
}

/** Running maxima of a packet list's decode and presentation times (see `decodedMaxima`). @internal */
export interface DecodedMaxima {
  /** `dts[p]`: the largest decode time among packets 0..p. */
  readonly dts: Float64Array
  /** `pts[p]`: the largest presentation time among packets 0..p. */
  readonly pts: Float64Array
}

const maximaTables = new WeakMap<ArrayLike<number>, DecodedMaxima>()

/**
 * The running maxima of `packets` ((pts, dts) pairs in decode order), built
 * once per list. The first packet whose decode time reaches a bound is the
 * first whose running maximum does, so a binary search over them finds it
 * even where decode times step back, and the latest presentation before it
 * is one read.
 *
 * @internal
 */
export const decodedMaxima = (packets: ArrayLike<number>): DecodedMaxima => {
  const known = maximaTables.get(packets)
  if (known !== undefined) return known
  const pairs = packets.length >> 1
  const dts = new Float64Array(pairs)
  const pts = new Float64Array(pairs)
  for (let p = 0, maxDts = -Infinity, maxPts = -Infinity; p < pairs; p++) {
    maxPts = Math.max(maxPts, packets[2 * p]!)
    maxDts = Math.max(maxDts, packets[2 * p + 1]!)
    pts[p] = maxPts
    dts[p] = maxDts
  }
  const maxima = { dts, pts }
  maximaTables.set(packets, maxima)
  return maxima
}
