/**
 * `rallycache doctor`: which ffmpeg and ffprobe are used, where they come
 * from and what they lack of what rallycache asks of them, the cache folder
 * and its size, and the configuration in effect. Exits 1 (after the report)
 * when either binary lacks something, such as an ffprobe that crashes on
 * MPEG-TS or an ffmpeg that cannot put Opus audio in mp4.
 *
 * @since 0.1.0
 */
import { Command } from "@effect/cli"
import * as CacheStore from "@rallycache/core/CacheStore"
import * as Config from "@rallycache/core/Config"
import * as FfmpegResolver from "@rallycache/node/FfmpegResolver"
import { Duration, Effect, Schema } from "effect"
import * as NodePath from "node:path"
import * as Common from "../internal/common.js"
import { CliExit } from "../CliErrors.js"
import * as Output from "../internal/output.js"

const origins: Record<Exclude<FfmpegResolver.BinarySource, "env">, string> = {
  "beside FFMPEG_PATH": "found beside FFMPEG_PATH",
  "ffmpeg-static": "bundled: npm package ffmpeg-static",
  "@ffmpeg-installer/ffmpeg": "bundled: npm package @ffmpeg-installer/ffmpeg",
  "@ffprobe-installer/ffprobe": "bundled: npm package @ffprobe-installer/ffprobe",
  "PATH": "found on PATH"
}

const describeBinary = (name: string, binary: FfmpegResolver.Binary): Array<Array<string>> => [
  [name, binary.path],
  ["", binary.source === "env" ? `set by ${name === "ffmpeg" ? "FFMPEG_PATH" : "FFPROBE_PATH"}` : origins[binary.source]],
  ["", binary.version],
  [
    "",
    binary.lacks === undefined || binary.lacks.length === 0
      ? "can do everything rallycache asks"
      : `lacks: ${binary.lacks.join(", ")}`
  ]
]

const describeValue = (key: string, value: unknown): string => {
  if (Duration.isDuration(value)) return Duration.format(value)
  if (key === "maxBytes" && typeof value === "number") return `${Output.formatBytes(value)} (${value})`
  return String(value)
}

/**
 * @since 0.1.0
 */
export const command = Command.make("doctor", Common.common, (options) =>
  Common.withStore(options, (cacheDir) =>
    Effect.gen(function*() {
      const { ffmpeg, ffprobe } = yield* FfmpegResolver.inspect(yield* FfmpegResolver.Ffmpeg, {
        cacheFile: NodePath.join(cacheDir, FfmpegResolver.cacheFileName)
      })
      const lacking = [ffmpeg, ffprobe].filter((binary) => (binary.lacks ?? []).length > 0)
      const problem = lacking.map((binary) =>
        `${binary === ffmpeg ? "ffmpeg" : "ffprobe"} ${(binary.lacks ?? []).join(", ")}`.replace(/ (encoder|decoder|muxer|demuxer) /, " lacks $1 ")
      ).join("; ")
      const fix = "Install a full build (Debian: apt-get install ffmpeg) or point FFMPEG_PATH and FFPROBE_PATH at one."
      // The report is printed whatever it says; a build that cannot do the job is a failure of the check.
      const failIfLacking = lacking.length === 0
        ? Effect.void
        : Effect.zipRight(
          Output.stderr(`doctor: ${problem}. ${fix}`),
          new CliExit({ code: 1 })
        )
      const store = yield* CacheStore.CacheStore
      const config = yield* Config.CacheConfig
      const usage = yield* store.usage
      if (options.json) {
        const report = (binary: FfmpegResolver.Binary) => ({
          path: binary.path,
          source: binary.source,
          version: binary.version,
          lacks: binary.lacks ?? []
        })
        yield* Output.json({
          ok: lacking.length === 0,
          ffmpeg: report(ffmpeg),
          ffprobe: report(ffprobe),
          cacheDir,
          cache: { entries: usage.entries, bytes: usage.bytes },
          config: Schema.encodeSync(Config.RallyCacheConfig)(config),
          node: process.version,
          platform: `${process.platform}-${process.arch}`
        })
        return yield* failIfLacking
      }
      yield* Output.stdout(Output.table([
        ...describeBinary("ffmpeg", ffmpeg),
        ...describeBinary("ffprobe", ffprobe),
        ["cache", cacheDir],
        ["", `${usage.entries} clips, ${Output.formatBytes(usage.bytes)} of ${Output.formatBytes(config.maxBytes)}`],
        ["node", `${process.version} on ${process.platform}-${process.arch}`]
      ]))
      const rows: Array<Array<string>> = [["setting", "value", "default"]]
      for (const [key, value] of Object.entries(config)) {
        const fallback = (Config.defaults as Record<string, unknown>)[key]
        rows.push([key, describeValue(key, value), fallback === undefined ? "" : describeValue(key, fallback)])
      }
      yield* Output.stdout("\n" + Output.table(rows, { header: true }))
      yield* Output.stdout(
        lacking.length === 0
          ? "\neverything needed was found."
          : `\n${problem}: sources that need what is missing are refused or cut in another mode. ${fix}`
      )
      return yield* failIfLacking
    }), "read-only")).pipe(Command.withDescription(
    "Show the ffmpeg and ffprobe in use, where they come from and what they lack, the cache folder and the configuration"
  ))
