/**
 * Finds the ffmpeg and ffprobe binaries and reports which ones were chosen.
 *
 * Order, for each tool:
 * 1. `FFMPEG_PATH` / `FFPROBE_PATH` (read through Effect `Config`, so any
 *    `ConfigProvider` works). When set, it wins, and a bad value is an error
 *    rather than a silent fallback. With only `FFMPEG_PATH` set, an
 *    `ffprobe` beside it is tried first for ffprobe.
 * 2. `ffmpeg-static` (an optional dependency whose install may have failed;
 *    ffmpeg only).
 * 3. `@ffmpeg-installer/ffmpeg` and `@ffprobe-installer/ffprobe` (static
 *    builds: they start in about 3 ms, against about 50 ms for a dynamically
 *    linked system ffmpeg, which is why they come before PATH).
 * 4. `PATH`.
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Config, Context, Duration, Effect, Layer, Option, Schema } from "effect"
import { createRequire } from "node:module"
import * as NodePath from "node:path"
import { ensureExecutable, run } from "./internal/process.js"

/**
 * Where a binary came from.
 *
 * @since 0.1.0
 */
export type BinarySource =
  | "env"
  | "beside FFMPEG_PATH"
  | "ffmpeg-static"
  | "@ffmpeg-installer/ffmpeg"
  | "@ffprobe-installer/ffprobe"
  | "PATH"

/**
 * A working binary: its path, where it was found and the first line of its
 * `-version` output.
 *
 * @since 0.1.0
 */
export interface Binary {
  readonly path: string
  readonly source: BinarySource
  readonly version: string
}

/**
 * @since 0.1.0
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

const firstWorking = (
  tool: "ffmpeg" | "ffprobe",
  candidates: ReadonlyArray<Option.Option<Candidate> | string>
): Effect.Effect<Binary, FfmpegNotFound, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const tried: Array<string> = []
    for (const candidate of candidates) {
      if (typeof candidate === "string") {
        tried.push(candidate)
        continue
      }
      if (Option.isNone(candidate)) continue
      const result = yield* Effect.either(check(candidate.value))
      if (result._tag === "Right") return result.right
      tried.push(result.left)
    }
    return yield* new FfmpegNotFound({ tool, tried })
  })

const fromEnv = (
  tool: "ffmpeg" | "ffprobe",
  envVar: string,
  path: string
): Effect.Effect<Binary, FfmpegNotFound, CommandExecutor.CommandExecutor> =>
  check({ path, source: "env" }).pipe(
    Effect.mapError((reason) => new FfmpegNotFound({ tool, tried: [reason], envVar }))
  )

/**
 * Resolve both binaries. Each is checked by running it with `-version`.
 *
 * @since 0.1.0
 */
export const resolve: Effect.Effect<FfmpegShape, FfmpegNotFound, CommandExecutor.CommandExecutor> = Effect.gen(
  function*() {
    const env = yield* Config.all({
      ffmpeg: Config.option(Config.nonEmptyString("FFMPEG_PATH")),
      ffprobe: Config.option(Config.nonEmptyString("FFPROBE_PATH"))
    }).pipe(Effect.orElseSucceed(() => ({ ffmpeg: Option.none<string>(), ffprobe: Option.none<string>() })))

    const ffmpeg = Option.isSome(env.ffmpeg)
      ? yield* fromEnv("ffmpeg", "FFMPEG_PATH", env.ffmpeg.value)
      : yield* firstWorking("ffmpeg", [
        fromPackage("ffmpeg-static", "ffmpeg-static"),
        fromPackage("@ffmpeg-installer/ffmpeg", "@ffmpeg-installer/ffmpeg"),
        fromPath("ffmpeg"),
        "ffmpeg-static, @ffmpeg-installer/ffmpeg and PATH have no ffmpeg"
      ])

    const ffprobe = Option.isSome(env.ffprobe)
      ? yield* fromEnv("ffprobe", "FFPROBE_PATH", env.ffprobe.value)
      : yield* firstWorking("ffprobe", [
        Option.isSome(env.ffmpeg)
          ? Option.some<Candidate>({
            path: NodePath.join(NodePath.dirname(env.ffmpeg.value), "ffprobe"),
            source: "beside FFMPEG_PATH"
          })
          : Option.none(),
        fromPackage("@ffprobe-installer/ffprobe", "@ffprobe-installer/ffprobe"),
        fromPath("ffprobe"),
        "@ffprobe-installer/ffprobe and PATH have no ffprobe"
      ])
    return { ffmpeg, ffprobe }
  }
)

/**
 * The `Ffmpeg` service, resolved once when the layer is built.
 * Requires a `CommandExecutor` (`NodeContext.layer`).
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Ffmpeg, FfmpegNotFound, CommandExecutor.CommandExecutor> = Layer.effect(
  Ffmpeg,
  resolve
)

/**
 * A fixed pair of binaries, without probing (for tests and embedders that
 * manage their own).
 *
 * @since 0.1.0
 */
export const layerStatic = (shape: FfmpegShape): Layer.Layer<Ffmpeg> => Layer.succeed(Ffmpeg, shape)
