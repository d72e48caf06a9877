/**
 * The keyframe and packet lookups a cut makes binary-search the source's
 * lists (and tables built once per list), so that a rally from a 2-hour
 * source costs what it costs from a 2-minute one. They must choose what the
 * linear scans they replace chose: on random lists (GOPs of every length,
 * all-intra runs, decode times that step back), every plan is compared
 * with the scan's.
 */
import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { firstWhere, lastSpaced } from "../src/internal/export/keyframeLookup.js"
import { copyPlan, dtsHeuristic, type Keyframe, videoEndOfCopy } from "../src/internal/export/keyframePlan.js"

/** The linear scan `copyPlan` made before it searched (kept here as the reference). */
const copyPlanByScan = (
  keyframes: ReadonlyArray<Keyframe>,
  start: number,
  end: number,
  sourceDuration: number,
  seekByIndex: boolean,
  videoDelay: boolean
) => {
  const clippedEnd = Math.min(end, sourceDuration)
  let chosen = -1
  if (!seekByIndex) {
    for (let i = 0; i < keyframes.length && keyframes[i]!.pts <= start + 1e-6; i++) chosen = i
    if (chosen <= 0) {
      const clipStart = Math.max(0, Math.min(keyframes[0]?.pts ?? 0, start))
      return { seek: null, duration: Math.max(clippedEnd, 0.001), clipStart, clipEnd: clippedEnd }
    }
    const k = keyframes[chosen]!
    const seek = (keyframes[chosen - 1]!.pts + k.pts) / 2
    return { seek, duration: Math.max(clippedEnd - seek, 0.001), clipStart: Math.max(0, k.pts), clipEnd: clippedEnd }
  }
  const heuristic = videoDelay ? dtsHeuristic : 0
  for (let i = 0; i < keyframes.length; i++) {
    const k = keyframes[i]!
    if (k.pts > start + 1e-6) break
    const next = keyframes[i + 1]
    if (next === undefined || !videoDelay || next.dts - k.dts > dtsHeuristic + 0.004) chosen = i
  }
  if (chosen < 0) {
    const clipStart = Math.min(keyframes[0]?.pts ?? 0, start)
    return { seek: null, duration: Math.max(clippedEnd, 0.001), clipStart: Math.max(0, clipStart), clipEnd: clippedEnd }
  }
  const k = keyframes[chosen]!
  const next = keyframes[chosen + 1]
  const room = next === undefined ? 0.4 : next.dts - k.dts - heuristic
  const seek = k.dts + heuristic + Math.min(0.2, room / 2)
  return {
    seek: Math.max(0, seek),
    duration: Math.max(clippedEnd - Math.max(0, seek), 0.001),
    clipStart: Math.max(0, k.pts),
    clipEnd: clippedEnd
  }
}

/** The linear scan `videoEndOfCopy` made before it searched. */
const videoEndByScan = (packets: ArrayLike<number>, present: number, duration: number, frameDuration: number) => {
  let end = duration
  for (let i = 0; i + 1 < packets.length; i += 2) {
    if (packets[i + 1]! - present >= duration) break
    end = Math.max(end, packets[i]! - present + frameDuration)
  }
  return end
}

/** Keyframes sorted by pts, spaced by frames of 1/30 s: all-intra runs, short and long GOPs, dts a little earlier. */
const keyframeLists = fc.array(
  fc.record({ frames: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 6, max: 120 })), lead: fc.integer({ min: 0, max: 4 }) }),
  { maxLength: 60 }
).map((steps) => {
  let frame = 0
  return steps.map(({ frames, lead }): Keyframe => {
    frame += frames
    return { pts: frame / 30, dts: (frame - lead) / 30 }
  })
})

/** A start on, just around, or between the keyframes' times. */
const startNear = (keyframes: ReadonlyArray<Keyframe>) =>
  fc.oneof(
    fc.double({ min: -1, max: (keyframes.at(-1)?.pts ?? 0) + 2, noNaN: true }),
    fc.constantFrom(...keyframes.map((k) => k.pts), 0).chain((pts) =>
      fc.constantFrom(pts, pts + 1e-6, pts + 2e-6, pts - 1e-6, pts - 1e-3)
    )
  )

/** (pts, dts) pairs in decode order, dts mostly rising but sometimes stepping back, pts reordered by a few frames. */
const packetLists = fc.array(fc.record({ step: fc.integer({ min: -2, max: 3 }), reorder: fc.integer({ min: -3, max: 3 }) }), {
  maxLength: 200
}).map((steps) => {
  const pairs = new Float64Array(steps.length * 2)
  let dts = 0
  steps.forEach(({ reorder, step }, p) => {
    dts += step
    pairs[2 * p] = (dts + reorder) / 25
    pairs[2 * p + 1] = dts / 25
  })
  return pairs
})

describe("keyframe lookups", () => {
  it.prop("firstWhere finds the first index of a suffix", [fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 300 })], ([n, from]) => {
    const cut = Math.min(n, from)
    expect(firstWhere(n, (i) => i >= cut)).toBe(cut)
  })

  it.prop("lastSpaced is the last keyframe at or before each index whose successor is far enough", [keyframeLists, fc.constantFrom(0, 1 / 30, dtsHeuristic + 0.004, 1)], ([keyframes, gap]) => {
    const table = lastSpaced(keyframes, gap)
    keyframes.forEach((_, i) => {
      let last = -1
      for (let j = 0; j <= i; j++) {
        const next = keyframes[j + 1]
        if (next === undefined || next.dts - keyframes[j]!.dts > gap) last = j
      }
      expect(table[i]).toBe(last)
    })
    // Built once per list and gap: the same table again.
    expect(lastSpaced(keyframes, gap)).toBe(table)
  })

  it.prop(
    "copyPlan chooses what the linear scan chose",
    [keyframeLists.chain((keyframes) => fc.tuple(fc.constant(keyframes), startNear(keyframes), fc.boolean(), fc.boolean()))],
    ([[keyframes, start, seekByIndex, videoDelay]]) => {
      const end = start + 8
      const duration = (keyframes.at(-1)?.pts ?? 0) + 5
      expect(copyPlan(keyframes, start, end, duration, seekByIndex, videoDelay)).toEqual(
        copyPlanByScan(keyframes, start, end, duration, seekByIndex, videoDelay)
      )
    },
    { fastCheck: { numRuns: 500 } }
  )

  it.prop(
    "videoEndOfCopy ends where the linear scan ended",
    [packetLists, fc.double({ min: -1, max: 10, noNaN: true }), fc.double({ min: 0, max: 5, noNaN: true })],
    ([packets, present, duration]) => {
      expect(videoEndOfCopy(packets, present, duration, 0.04)).toBe(videoEndByScan(packets, present, duration, 0.04))
    },
    { fastCheck: { numRuns: 500 } }
  )
})
