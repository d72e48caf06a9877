/**
 * Generated "match" videos for tests, the demo and benchmarks: ffmpeg's
 * lavfi `testsrc2` (a moving pattern with a frame counter), optionally a
 * burned-in running clock and a sine-wave audio track, encoded as H.264 +
 * AAC fast-start mp4 with a fixed keyframe interval.
 *
 * @example
 * ```ts
 * import { SampleVideo, FfmpegResolver } from "@rallycache/node"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import * as os from "node:os"
 * import * as path from "node:path"
 *
 * const video = SampleVideo.cached({ duration: 6, dir: path.join(os.tmpdir(), "rallycache-fixtures") }).pipe(
 *   Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Effect, Hash, Schema, Utils } from "effect"
import { Domain } from "@rallycache/core"
import * as NodeCrypto from "node:crypto"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Ffmpeg } from "./FfmpegResolver.js"
import { run } from "./internal/export/process.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Length in seconds. */
  readonly duration: number
  /** Default 320. */
  readonly width?: number | undefined
  /** Default 240. */
  readonly height?: number | undefined
  /** Frames per second, default 25. */
  readonly fps?: number | undefined
  /** Keyframe interval in seconds, default 1. */
  readonly gop?: number | undefined
  /** A 440 Hz sine track, default true. */
  readonly audio?: boolean | undefined
  /** Burn the running time (hh:mm:ss.mmm) into the picture, default true. */
  readonly clock?: boolean | undefined
  /** x264 preset of the fixture, default "veryfast". */
  readonly preset?: string | undefined
}

/**
 * Generating a sample video failed.
 *
 * @since 0.1.0
 * @category errors
 */
export class SampleVideoFailed extends Schema.TaggedError<SampleVideoFailed>()("SampleVideoFailed", {
  path: Schema.String,
  detail: Schema.String
}) {
  override get message(): string {
    return `cannot generate a sample video at ${this.path}: ${this.detail} (check that the folder is writable and ffmpeg works: rallycache doctor)`
  }
}

const resolved = (options: Options) => ({
  duration: options.duration,
  width: options.width ?? 320,
  height: options.height ?? 240,
  fps: options.fps ?? 25,
  gop: options.gop ?? 1,
  audio: options.audio ?? true,
  clock: options.clock ?? true,
  preset: options.preset ?? "veryfast"
})

const fonts = [
  "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
  "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
  "/usr/share/fonts/TTF/DejaVuSansMono.ttf",
  "/System/Library/Fonts/Menlo.ttc"
]

const drawtextSupport = new Map<string, boolean>()

const hasDrawtext = (ffmpegPath: string) =>
  Effect.gen(function*() {
    const known = drawtextSupport.get(ffmpegPath)
    if (known !== undefined) return known
    const result = yield* run(ffmpegPath, ["-hide_banner", "-filters"], { collectStdout: true }).pipe(
      Effect.orElseSucceed(() => ({ stdout: "" }))
    )
    const has = /\bdrawtext\b/.test(result.stdout)
    drawtextSupport.set(ffmpegPath, has)
    return has
  })

const clockFilter = (height: number): string => {
  const font = fonts.find((path) => NodeFs.existsSync(path))
  const size = Math.max(12, Math.round(height / 10))
  // `%{pts\:hms}` prints the running time; escaped for the filtergraph parser.
  return [
    "drawtext=text='%{pts\\:hms}'",
    ...(font === undefined ? [] : [`fontfile='${font}'`]),
    "fontcolor=white",
    `fontsize=${size}`,
    "box=1",
    "boxcolor=black@0.7",
    "x=(w-tw)/2",
    "y=h-th-10"
  ].join(":")
}

const ffmpegArgs = (o: ReturnType<typeof resolved>, output: string, clock: boolean): Array<string> => {
  const video = `testsrc2=size=${o.width}x${o.height}:rate=${o.fps}${clock ? `,${clockFilter(o.height)}` : ""}`
  const keyint = Math.max(1, Math.round(o.gop * o.fps))
  return [
    "-nostdin",
    "-y",
    "-v",
    "error",
    "-f",
    "lavfi",
    "-i",
    video,
    ...(o.audio ? ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"] : []),
    "-t",
    String(o.duration),
    "-map",
    "0:v",
    ...(o.audio ? ["-map", "1:a"] : []),
    "-c:v",
    "libx264",
    "-preset",
    o.preset,
    "-pix_fmt",
    "yuv420p",
    "-g",
    String(keyint),
    "-keyint_min",
    String(keyint),
    "-sc_threshold",
    "0",
    ...(o.audio ? ["-c:a", "aac", "-b:a", "96k"] : []),
    "-movflags",
    "+faststart",
    "-f",
    "mp4",
    output
  ]
}

const validate = (options: Options, path: string) =>
  Effect.gen(function*() {
    const o = resolved(options)
    const bad = !Number.isFinite(o.duration) || o.duration <= 0
      ? `duration must be a positive number of seconds, got ${o.duration}`
      : !Number.isInteger(o.width) || !Number.isInteger(o.height) || o.width < 16 || o.height < 16 ||
          o.width % 2 !== 0 || o.height % 2 !== 0
      ? `width and height must be even integers >= 16, got ${o.width}x${o.height}`
      : !(o.fps > 0) || !(o.gop > 0)
      ? `fps and gop must be positive, got fps ${o.fps} and gop ${o.gop}`
      : undefined
    if (bad !== undefined) return yield* new SampleVideoFailed({ path, detail: bad })
    return o
  })

/**
 * Generate a sample video at `output` (overwritten). Written to a temporary
 * file beside it and renamed, so `output` is never a partial file.
 *
 * @since 0.1.0
 * @category utils
 */
export const generate = (
  options: Options & { readonly output: string }
): Effect.Effect<string, SampleVideoFailed, Ffmpeg | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const output = NodePath.resolve(options.output)
    const o = yield* validate(options, output)
    const { ffmpeg } = yield* Ffmpeg
    const clock = o.clock && (yield* hasDrawtext(ffmpeg.path))
    const temp = NodePath.join(
      NodePath.dirname(output),
      `.${NodePath.basename(output)}.${process.pid}.${NodeCrypto.randomUUID().slice(0, 8)}.part`
    )
    const fail = (detail: string) => new SampleVideoFailed({ path: output, detail })
    yield* Effect.try({
      try: () => NodeFs.mkdirSync(NodePath.dirname(output), { recursive: true }),
      catch: (error) => fail(String(error))
    })
    const attempt = (withClock: boolean) =>
      run(ffmpeg.path, ffmpegArgs(o, temp, withClock)).pipe(Effect.mapError((error) => fail(error.message)))
    const body = Effect.gen(function*() {
    let result = yield* attempt(clock)
    if (result.exitCode !== 0 && clock) {
      // drawtext is listed but cannot render (no usable font): testsrc2's own
      // frame counter still shows the time.
      result = yield* attempt(false)
    }
    if (result.exitCode !== 0) {
      return yield* fail(
        `ffmpeg exited ${result.exitCode ?? result.signal}: ${result.stderrTail.slice(-3).join(" | ")}`
      )
    }
    yield* Effect.try({
      try: () => NodeFs.renameSync(temp, output),
      catch: (error) => fail(String(error))
    })
    return output
    })
    return yield* body.pipe(Effect.ensuring(Effect.sync(() => NodeFs.rmSync(temp, { force: true }))))
  })

/**
 * The file name `cached` uses for `options`: a hash of the resolved options.
 *
 * @since 0.1.0
 * @category utils
 */
export const fileName = (options: Options): string => {
  const o = resolved(options)
  const hash = NodeCrypto.createHash("sha256").update(JSON.stringify(o)).digest("hex").slice(0, 16)
  return `sample-${o.width}x${o.height}-${o.duration}s-${hash}.mp4`
}

/**
 * A sample video in `dir`, generated once and reused by later calls (from any
 * process) with the same options. Concurrent callers may both generate it;
 * each writes its own temporary file and renames it into place, so no one
 * ever sees a partial file.
 *
 * @since 0.1.0
 * @category utils
 */
export const cached = (
  options: Options & { readonly dir: string }
): Effect.Effect<string, SampleVideoFailed, Ffmpeg | CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const output = NodePath.resolve(options.dir, fileName(options))
    const exists = yield* Effect.sync(() => {
      try {
        return NodeFs.statSync(output).size > 0
      } catch {
        return false
      }
    })
    return exists ? output : yield* generate({ ...options, output })
  })

/**
 * Rallies for a sample video of `duration` seconds: 6-25 s each with 2-8 s
 * gaps, the same on every run for the same arguments. With `count`, exactly
 * that many: when they do not fit, lengths and gaps shrink towards 6 s and
 * 1 s, and below that everything scales down (a 6 s test video gets short
 * rallies). Without `count`, as many as fit.
 *
 * @since 0.1.0
 * @category utils
 */
export const sampleRallies = (duration: number, count?: number, seed = 1): ReadonlyArray<Domain.Rally> => {
  // The PCG generator behind Effect's `Random.make(seed)`, read directly: the
  // same numbers on every run for the same seed, without running an effect.
  const random = new Utils.PCGRandom(Hash.hash(seed))
  const between = (min: number, max: number) => min + (max - min) * random.number()
  const lead = Math.min(1, duration * 0.05)
  const available = duration - 2 * lead
  const minLength = 6
  const minGap = 1
  let lengths: Array<number> = []
  let gaps: Array<number> = []
  let total = 0
  for (let i = 0; count === undefined ? true : i < count; i++) {
    const gap = i === 0 ? 0 : between(2, 8)
    const length = between(minLength, 25)
    if (count === undefined && total + gap + length > available) break
    gaps.push(gap)
    lengths.push(length)
    total += gap + length
  }
  if (total > available) {
    const n = lengths.length
    const minimal = minLength * n + minGap * (n - 1)
    if (minimal <= available) {
      const slack = total - minimal
      const f = (available - minimal) / slack
      lengths = lengths.map((l) => minLength + (l - minLength) * f)
      gaps = gaps.map((g, i) => (i === 0 ? 0 : minGap + (g - minGap) * f))
    } else {
      const f = available / total
      lengths = lengths.map((l) => l * f)
      gaps = gaps.map((g) => g * f)
    }
  }
  const round = (t: number) => Math.round(t * 1000) / 1000
  const rallies: Array<Domain.Rally> = []
  let t = lead
  lengths.forEach((length, index) => {
    t += gaps[index] ?? 0
    const start = round(t)
    t += length
    rallies.push(new Domain.Rally({ index, start, end: Math.max(Math.min(round(t), duration), start + 0.001) }))
  })
  return rallies
}
