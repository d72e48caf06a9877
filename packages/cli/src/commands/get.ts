/**
 * `rallycache get <video> --rallies FILE --index N [--json]`: the path of
 * one rally's clip, exported at high priority when it is missing.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as RallyCache from "@rallycache/core/RallyCache"
import { Effect, Option } from "effect"
import * as CliStats from "../internal/cliStats.js"
import * as Common from "../internal/common.js"
import { UsageError } from "../CliErrors.js"
import * as Output from "../internal/output.js"
import * as Progress from "../internal/progress.js"
import * as Video from "../internal/video.js"

const index = Options.integer("index").pipe(Options.withPseudoName("N"), Options.withDescription("The rally, by its position in the file (from 0)"))

/**
 * @since 0.1.0
 */
export const command = Command.make(
  "get",
  {
    ...Common.common,
    video: Video.video,
    rallies: Video.rallies,
    index,
    mode: Video.mode,
    videoId: Video.videoId
  },
  (options) =>
    Effect.gen(function*() {
      const file = yield* Common.readRallies(options.rallies)
      const count = file.rallies.length
      if (options.index < 0 || options.index >= count) {
        return yield* new UsageError({
          message: `--index ${options.index}: the rallies file has ${count} rall${count === 1 ? "y" : "ies"} (use 0 to ${
            count - 1
          })`
        })
      }
      const source = yield* Video.checkSource(options.video)
      yield* Common.withCache(options, Video.settings({ mode: options.mode, concurrency: Option.none() }), (cacheDir) =>
        Effect.scoped(Effect.gen(function*() {
          const rc = yield* RallyCache.RallyCache
          const opened = yield* Video.open({ path: source, file, videoId: options.videoId, mode: options.mode })
          const videoId = opened.source.id
          const display = yield* Progress.makeDisplay({ tty: Output.isTTY(), plain: false })
          yield* Progress.live(videoId, display, (status) => Progress.statusLines(status, [options.index]))
          const started = yield* Output.nowMs
          const clip = yield* rc.getClip(videoId, options.index)
          const waitMs = Output.round((yield* Output.nowMs) - started, 1)
          yield* display.clear
          yield* CliStats.add(cacheDir, clip.cached ? { hits: 1, misses: 0 } : { hits: 0, misses: 1 })
          yield* options.json
            ? Output.json({ path: clip.path, cached: clip.cached, waitMs })
            : Output.stdout(clip.path)
        })))
    })
).pipe(Command.withDescription("Print the path of one rally's clip, exporting it at high priority when missing"))
