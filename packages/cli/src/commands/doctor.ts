/**
 * `rallycache doctor`: which ffmpeg and ffprobe were found and their
 * versions, the cache folder and its size, and the configuration in effect.
 *
 * @since 0.1.0
 */
import { Command } from "@effect/cli"
import { CacheStore, Config } from "@rallycache/core"
import { FfmpegResolver } from "@rallycache/node"
import { Duration, Effect, Schema } from "effect"
import * as Common from "../internal/common.js"
import * as Output from "../internal/output.js"

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
      const { ffmpeg, ffprobe } = yield* FfmpegResolver.Ffmpeg
      const store = yield* CacheStore.CacheStore
      const config = yield* Config.CacheConfig
      const usage = yield* store.usage
      if (options.json) {
        return yield* Output.json({
          ffmpeg,
          ffprobe,
          cacheDir,
          cache: { entries: usage.entries, bytes: usage.bytes },
          config: Schema.encodeSync(Config.RallyCacheConfig)(config),
          node: process.version,
          platform: `${process.platform}-${process.arch}`
        })
      }
      yield* Output.stdout(Output.table([
        ["ffmpeg", `${ffmpeg.path} (${ffmpeg.source})`],
        ["", ffmpeg.version],
        ["ffprobe", `${ffprobe.path} (${ffprobe.source})`],
        ["", ffprobe.version],
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
      yield* Output.stdout("\neverything needed was found.")
    }), "read-only")).pipe(Command.withDescription("Show the ffmpeg and ffprobe in use, the cache folder and the configuration"))
