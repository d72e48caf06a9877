/**
 * Finds the ffmpeg and ffprobe binaries, learns what each can do, and reports
 * which ones were chosen and what they lack.
 *
 * Candidates, in order, for each tool:
 * 1. `FFMPEG_PATH` / `FFPROBE_PATH` (read through Effect `Config`, so any
 *    `ConfigProvider` works). When set, it wins whatever it can do, and a bad
 *    value is an error rather than a silent fallback. With only
 *    `FFMPEG_PATH` set, an `ffprobe` beside it is tried first for ffprobe.
 * 2. `ffmpeg-static` (an optional dependency whose download may have failed;
 *    ffmpeg only).
 * 3. `@ffmpeg-installer/ffmpeg` and `@ffprobe-installer/ffprobe` (static
 *    builds that start in a few milliseconds).
 * 4. `PATH`.
 *
 * Without a variable, the first candidate that runs and lacks nothing
 * rallycache asks of it wins; when every one lacks something, the one that
 * lacks least (the earlier on a tie). So a full system ffmpeg beats a bundled
 * build that cannot do the job (the bundled 2018 ffmpeg refuses Opus in mp4;
 * the bundled 2023 ffprobe crashes on every MPEG-TS file), while a machine
 * with only the bundled builds still runs. What is asked: the encoders,
 * decoders and containers of the supported sources (H.264, HEVC, VP9, AV1,
 * ProRes; AAC, Opus, AC-3, MP3, PCM; mp4, mov, mkv, webm, MPEG-TS, avi), and
 * real runs on a tiny generated MPEG-TS and Opus track. A build's abilities
 * are measured once (a few runs of it, about 0.1-0.5 s) and cached per
 * process and, with `layerCached`, in a file.
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Config, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { createRequire } from "node:module"
import * as NodePath from "node:path"
import * as Probe from "./internal/export/ffmpegCapabilities.js"
import { ensureExecutable, run } from "./internal/export/process.js"

/**
 * Where a binary came from.
 *
 * @since 0.1.0
 * @category models
 */
export type BinarySource =
  | "env"
  | "beside FFMPEG_PATH"
  | "ffmpeg-static"
  | "@ffmpeg-installer/ffmpeg"
  | "@ffprobe-installer/ffprobe"
  | "PATH"

/**
 * What a build can do: the names it lists with `-encoders`, `-decoders`,
 * `-muxers` and `-demuxers` (ffmpeg: encoders, decoders, muxers; ffprobe:
 * decoders, demuxers), and the real runs on generated samples that failed.
 *
 * @since 0.1.0
 * @category models
 */
export type Capabilities = Probe.Capabilities

/**
 * A working binary: its path, where it was found, the first line of its
 * `-version` output and, once measured, what it can do and what it lacks of
 * what rallycache asks of it (empty when it can do everything).
 *
 * @since 0.1.0
 * @category models
 */
export interface Binary {
  readonly path: string
  readonly source: BinarySource
  readonly version: string
  readonly capabilities?: Capabilities | undefined
  readonly lacks?: ReadonlyArray<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface FfmpegShape {
  readonly ffmpeg: Binary
  readonly ffprobe: Binary
}

/**
 * No working ffmpeg (or ffprobe) was found, or `FFMPEG_PATH` /
 * `FFPROBE_PATH` points at something that is not one.
 *
 * @since 0.1.0
 * @category errors
 */
export class FfmpegNotFound extends Schema.TaggedError<FfmpegNotFound>()("FfmpegNotFound", {
  tool: Schema.Literal("ffmpeg", "ffprobe"),
  /** What was tried, in order, and why each failed. */
  tried: Schema.Array(Schema.String),
  /** Set when an environment variable named a bad binary. */
  envVar: Schema.optional(Schema.String)
}) {
  override get message(): string {
    if (this.envVar !== undefined) {
      return `${this.envVar} does not name a working ${this.tool} (${this.tried.join("; ")}): point ${this.envVar} at a ${this.tool} binary or unset it`
    }
    const envVar = this.tool === "ffmpeg" ? "FFMPEG_PATH" : "FFPROBE_PATH"
    return `${this.tool} not found (tried ${this.tried.join("; ")}): set ${envVar} to a ${this.tool} binary or run \`apt-get install ffmpeg\``
  }
}

/**
 * The resolved binaries, as a service.
 *
 * @example
 * ```ts
 * import { FfmpegResolver } from "@rallycache/node"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect } from "effect"
 *
 * const program = Effect.gen(function*() {
 *   const { ffmpeg, ffprobe } = yield* FfmpegResolver.Ffmpeg
 *   console.log(`ffmpeg ${ffmpeg.path} (${ffmpeg.source}): ${ffmpeg.version}`)
 * }).pipe(Effect.provide(FfmpegResolver.layer), Effect.provide(NodeContext.layer))
 * ```
 *
 * @since 0.1.0
 * @category tags
 */
export class Ffmpeg extends Context.Tag("@rallycache/node/Ffmpeg")<Ffmpeg, FfmpegShape>() {}

interface Candidate {
  readonly path: string
  readonly source: BinarySource
}

const require = createRequire(import.meta.url)

/** A package's exported binary path, or none when the package (or its binary) is absent. */
const fromPackage = (name: string, source: BinarySource): Option.Option<Candidate> => {
  try {
    const loaded: unknown = require(name)
    const path = typeof loaded === "string"
      ? loaded
      : typeof loaded === "object" && loaded !== null && "path" in loaded && typeof loaded.path === "string"
      ? loaded.path
      : undefined
    return path === undefined ? Option.none() : Option.some({ path, source })
  } catch {
    return Option.none()
  }
}

const fromPath = (tool: string): Option.Option<Candidate> => {
  const dirs = (process.env["PATH"] ?? "").split(NodePath.delimiter).filter((dir) => dir.length > 0)
  for (const dir of dirs) {
    const path = NodePath.join(dir, tool)
    if (ensureExecutable(path)) return Option.some({ path, source: "PATH" })
  }
  return Option.none()
}

/**
 * Check that `candidate` runs, and read its version.
 * Fails with a short reason.
 */
const check = (candidate: Candidate): Effect.Effect<Binary, string, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    if (!ensureExecutable(candidate.path)) {
      return yield* Effect.fail(`${candidate.source}: ${candidate.path} is not an executable file`)
    }
    const result = yield* run(candidate.path, ["-hide_banner", "-version"], { collectStdout: true, stderrLines: 2 })
      .pipe(
        Effect.timeoutFail({
          duration: Duration.seconds(10),
          onTimeout: () => `${candidate.source}: ${candidate.path} -version did not answer in 10 s`
        }),
        Effect.mapError((error) =>
          typeof error === "string" ? error : `${candidate.source}: ${candidate.path} cannot start (${error.message})`
        )
      )
    const version = result.stdout.split("\n")[0]?.trim() ?? ""
    if (result.exitCode !== 0 || !/version/i.test(version)) {
      return yield* Effect.fail(`${candidate.source}: ${candidate.path} -version exited ${result.exitCode ?? result.signal}`)
    }
    return { path: candidate.path, source: candidate.source, version }
  })

type Measured = Binary & { readonly capabilities: Capabilities; readonly lacks: ReadonlyArray<string> }

/** `binary` with what it can do and what it lacks. */
const withCapabilities = (
  tool: Probe.Tool,
  binary: Binary,
  ffmpeg: string,
  cacheFile: string | undefined
): Effect.Effect<Measured, never, CommandExecutor.CommandExecutor> =>
  Effect.map(
    Probe.capabilities(tool, binary.path, binary.version, ffmpeg, cacheFile),
    (capabilities) => ({ ...binary, ...measured(tool, capabilities) })
  )

const measured = (tool: Probe.Tool, capabilities: Capabilities) => ({
  capabilities,
  lacks: Probe.lacks(tool, capabilities)
})

/**
 * The first candidate that runs and lacks nothing, else the working one
 * that lacks least (the earliest on a tie). `ffmpeg` makes the sample an
 * ffprobe is tried on (for ffmpeg itself, the candidate's own path).
 */
const best = (
  tool: Probe.Tool,
  candidates: ReadonlyArray<Option.Option<Candidate> | string>,
  ffmpeg: (candidate: Binary) => string,
  cacheFile: string | undefined
): Effect.Effect<Binary, FfmpegNotFound, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const tried: Array<string> = []
    let chosen: Measured | undefined
    for (const candidate of candidates) {
      if (typeof candidate === "string") {
        tried.push(candidate)
        continue
      }
      if (Option.isNone(candidate)) continue
      const { path, source } = candidate.value
      // A build measured before and unchanged since is not run again.
      const entry = ensureExecutable(path) ? Probe.known(tool, path, cacheFile) : undefined
      let binary: Measured
      if (entry !== undefined) {
        binary = { path, source, version: entry.version, ...measured(tool, entry.capabilities) }
      } else {
        const result = yield* Effect.either(check(candidate.value))
        if (result._tag === "Left") {
          tried.push(result.left)
          continue
        }
        binary = yield* withCapabilities(tool, result.right, ffmpeg(result.right), cacheFile)
      }
      if (chosen === undefined || binary.lacks.length < chosen.lacks.length) chosen = binary
      if (binary.lacks.length === 0) break
    }
    if (chosen === undefined) return yield* new FfmpegNotFound({ tool, tried })
    return chosen
  })

const fromEnv = (
  tool: "ffmpeg" | "ffprobe",
  envVar: string,
  path: string,
  cacheFile: string | undefined
): Effect.Effect<Binary, FfmpegNotFound, CommandExecutor.CommandExecutor> =>
  Effect.suspend(() => {
    // Measured before and unchanged since: known to run, no need to start it.
    const entry = ensureExecutable(path) ? Probe.known(tool, path, cacheFile) : undefined
    return entry !== undefined
      ? Effect.succeed<Binary>({ path, source: "env", version: entry.version })
      : check({ path, source: "env" })
  }).pipe(
    Effect.mapError((reason) => new FfmpegNotFound({ tool, tried: [reason], envVar }))
  )

/**
 * The file, in a cache folder, where the Node default layer keeps what each
 * build can do.
 *
 * @since 0.1.0
 * @category constants
 */
export const cacheFileName = "ffmpeg-capabilities.json"

/**
 * Options of `resolveWith` and `layerCached`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolveOptions {
  /** A JSON file that keeps what each build can do across processes. */
  readonly cacheFile?: string | undefined
}

/**
 * Resolve both binaries: each candidate is checked by running it with
 * `-version`, then by what it can do (see the module's description). A
 * binary named by `FFMPEG_PATH` / `FFPROBE_PATH` is used as it is, without
 * measuring it (`inspect` does, for a report).
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveWith = (
  options: ResolveOptions = {}
): Effect.Effect<FfmpegShape, FfmpegNotFound, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const env = yield* Config.all({
      ffmpeg: Config.option(Config.nonEmptyString("FFMPEG_PATH")),
      ffprobe: Config.option(Config.nonEmptyString("FFPROBE_PATH"))
    }).pipe(Effect.orElseSucceed(() => ({ ffmpeg: Option.none<string>(), ffprobe: Option.none<string>() })))

    const ffmpeg = Option.isSome(env.ffmpeg)
      ? yield* fromEnv("ffmpeg", "FFMPEG_PATH", env.ffmpeg.value, options.cacheFile)
      : yield* best("ffmpeg", [
        fromPackage("ffmpeg-static", "ffmpeg-static"),
        fromPackage("@ffmpeg-installer/ffmpeg", "@ffmpeg-installer/ffmpeg"),
        fromPath("ffmpeg"),
        "ffmpeg-static, @ffmpeg-installer/ffmpeg and PATH have no ffmpeg"
      ], (candidate) => candidate.path, options.cacheFile)

    const ffprobe = Option.isSome(env.ffprobe)
      ? yield* fromEnv("ffprobe", "FFPROBE_PATH", env.ffprobe.value, options.cacheFile)
      : yield* best("ffprobe", [
        Option.isSome(env.ffmpeg)
          ? Option.some<Candidate>({
            path: NodePath.join(NodePath.dirname(env.ffmpeg.value), "ffprobe"),
            source: "beside FFMPEG_PATH"
          })
          : Option.none(),
        fromPackage("@ffprobe-installer/ffprobe", "@ffprobe-installer/ffprobe"),
        fromPath("ffprobe"),
        "@ffprobe-installer/ffprobe and PATH have no ffprobe"
      ], () => ffmpeg.path, options.cacheFile)
    return { ffmpeg, ffprobe }
  })

/**
 * `resolveWith()`: resolve both binaries, with what they can do cached in
 * this process only.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolve: Effect.Effect<FfmpegShape, FfmpegNotFound, CommandExecutor.CommandExecutor> = resolveWith()

/**
 * Both binaries with what they can do and what they lack, measuring those
 * that were not (a binary from `FFMPEG_PATH`, or one given to
 * `layerStatic`). For reports such as `rallycache doctor`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const inspect = (
  shape: FfmpegShape,
  options: ResolveOptions = {}
): Effect.Effect<FfmpegShape, never, CommandExecutor.CommandExecutor> =>
  Effect.all({
    ffmpeg: shape.ffmpeg.lacks !== undefined
      ? Effect.succeed(shape.ffmpeg)
      : withCapabilities("ffmpeg", shape.ffmpeg, shape.ffmpeg.path, options.cacheFile),
    ffprobe: shape.ffprobe.lacks !== undefined
      ? Effect.succeed(shape.ffprobe)
      : withCapabilities("ffprobe", shape.ffprobe, shape.ffmpeg.path, options.cacheFile)
  })

/**
 * The `Ffmpeg` service, resolved once when the layer is built.
 * Requires a `CommandExecutor` (`NodeContext.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Ffmpeg, FfmpegNotFound, CommandExecutor.CommandExecutor> = Layer.effect(
  Ffmpeg,
  resolve
)

/**
 * Like `layer`, keeping what each build can do in `cacheFile`, so later
 * processes do not measure it again (the Node default layer keeps it in the
 * cache folder).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCached = (
  cacheFile: string
): Layer.Layer<Ffmpeg, FfmpegNotFound, CommandExecutor.CommandExecutor> =>
  Layer.effect(Ffmpeg, resolveWith({ cacheFile }))

/**
 * A fixed pair of binaries, without probing (for tests and embedders that
 * manage their own).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStatic = (shape: FfmpegShape): Layer.Layer<Ffmpeg> => Layer.succeed(Ffmpeg, shape)
