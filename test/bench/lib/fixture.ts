/**
 * The generated "match": a 1280x720 30 fps H.264 + AAC video with a
 * keyframe every 2 s, and rallies of 6-25 s with gaps between them.
 *
 * Generated once with @rallycache/node's `SampleVideo` and cached in
 * test/bench/.fixtures (gitignored). `--quick` uses a shorter one.
 */
import { NodeContext } from "@effect/platform-node"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { existsSync, mkdirSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { log } from "./log.js"
import { prng } from "./stats.js"

export interface RallySpan {
  readonly start: number
  readonly end: number
}

export interface Fixture {
  readonly path: string
  readonly durationSec: number
  readonly width: number
  readonly height: number
  readonly fps: number
  readonly keyframeSec: number
  readonly rallies: ReadonlyArray<RallySpan>
  readonly sizeBytes: number
}

export interface FixtureSpec {
  readonly durationSec: number
  readonly rallyCount: number
  readonly seed: number
  /** 1280x720 unless given. */
  readonly width?: number
  readonly height?: number
}

export const fullSpec: FixtureSpec = { durationSec: 600, rallyCount: 40, seed: 20240611 }
export const quickSpec: FixtureSpec = { durationSec: 90, rallyCount: 5, seed: 20240611 }
/** For `RALLYCACHE_BENCH_SMOKE=1` (see smoke.ts): the same kind of match, small and short. */
export const smokeSpec: FixtureSpec = { durationSec: 40, rallyCount: 2, seed: 20240611, width: 320, height: 180 }

const defaultWidth = 1280
const defaultHeight = 720
const fps = 30
const keyframeSec = 2

export const fixturesDir = fileURLToPath(new URL("../.fixtures/", import.meta.url))

const round2 = (x: number): number => Math.round(x * 100) / 100

/**
 * Rallies of 6-25 s (skewed towards short ones, as in real matches) with
 * gaps of at least 1 s, spread over the video. Deterministic for a seed.
 * Starts are not keyframe-aligned, so copy mode really starts early.
 */
export const makeRallies = (spec: FixtureSpec): ReadonlyArray<RallySpan> => {
  const rand = prng(spec.seed)
  const lead = 1.5
  const tail = 1.5
  const minGap = 1
  for (let attempt = 0; attempt < 1000; attempt++) {
    const lengths = Array.from({ length: spec.rallyCount }, () => round2(6 + 19 * rand() ** 2))
    // The extremes of the range are always present.
    if (spec.rallyCount >= 2) {
      lengths[Math.floor(rand() * spec.rallyCount)] = 25
      lengths[Math.floor(rand() * spec.rallyCount)] = 6
    }
    const total = lengths.reduce((s, x) => s + x, 0)
    const free = spec.durationSec - lead - tail - total - minGap * (spec.rallyCount - 1)
    if (free < 0) continue
    const weights = Array.from({ length: spec.rallyCount - 1 }, () => rand())
    const weightSum = weights.reduce((s, x) => s + x, 0) || 1
    const rallies: Array<RallySpan> = []
    let t = lead + rand() * 0.5
    for (let i = 0; i < spec.rallyCount; i++) {
      const start = round2(t)
      const end = round2(start + lengths[i]!)
      rallies.push({ start, end })
      t = end + minGap + (free * (weights[i] ?? 0)) / weightSum * 0.98
    }
    if (rallies[rallies.length - 1]!.end <= spec.durationSec - 0.5) return rallies
  }
  throw new Error(`cannot fit ${spec.rallyCount} rallies of 6-25 s in ${spec.durationSec} s`)
}

const sampleOptions = (spec: FixtureSpec) => ({
  duration: spec.durationSec,
  width: spec.width ?? defaultWidth,
  height: spec.height ?? defaultHeight,
  fps,
  gop: keyframeSec,
  audio: true,
  // The burned-in clock costs encoding time and nothing here reads it.
  clock: false,
  preset: "veryfast"
})

/** The fixture for `spec`, generated if it is not cached yet. */
export const ensureFixture = async (spec: FixtureSpec): Promise<Fixture> => {
  mkdirSync(fixturesDir, { recursive: true })
  const options = sampleOptions(spec)
  const { width, height } = options
  const path = join(fixturesDir, SampleVideo.fileName(options))
  if (!existsSync(path)) {
    log(`generating the ${spec.durationSec} s fixture (${width}x${height} ${fps} fps, keyframe every ${keyframeSec} s) once; it is cached in ${fixturesDir}`)
  }
  const started = performance.now()
  await Effect.runPromise(
    SampleVideo.cached({ ...options, dir: fixturesDir }).pipe(
      Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
    )
  )
  const ms = performance.now() - started
  if (ms > 1000) log(`fixture ready in ${(ms / 1000).toFixed(1)} s`)
  return {
    path,
    durationSec: spec.durationSec,
    width,
    height,
    fps,
    keyframeSec,
    rallies: makeRallies(spec),
    sizeBytes: statSync(path).size
  }
}
