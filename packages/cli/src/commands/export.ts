/**
 * `rallycache export <video> --rallies FILE [--out DIR] [--mode copy|accurate]
 * [--concurrency N] [--only 3,5-7] [--json]`
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import type * as Domain from "@rallycache/core/Domain"
import * as RallyCache from "@rallycache/core/RallyCache"
import { Effect, Either, Exit, Option, Schema } from "effect"
import * as NodePath from "node:path"
import * as CliStats from "../internal/cliStats.js"
import * as Common from "../internal/common.js"
import { CliExit, exitCodeOf, firstError, messageOf } from "../CliErrors.js"
import { ffmpegSaid } from "../internal/verbose.js"
import * as Output from "../internal/output.js"
import { ensureDir, outName, place } from "../internal/place.js"
import * as Progress from "../internal/progress.js"
import * as Video from "../internal/video.js"

/**
 * One clip in the `--json` output.
 *
 * @since 0.1.0
 */
export const ClipJson = Schema.Struct({
  index: Schema.Int,
  start: Schema.Number,
  end: Schema.Number,
  clipStart: Schema.Number,
  clipEnd: Schema.Number,
  path: Schema.String,
  bytes: Schema.Number,
  cached: Schema.Boolean,
  exportMs: Schema.Number,
  /** Exact mode: source time of the first frame presented (the rally's first frame), and the hidden lead-in before it. */
  firstFrame: Schema.optional(Schema.Number),
  leadIn: Schema.optional(Schema.Number)
})
/** @since 0.1.0 */
export type ClipJson = typeof ClipJson.Type

const out = Options.directory("out").pipe(
  Options.withPseudoName("DIR"),
  Options.withDescription("Also place each clip in DIR as rally-000.mp4, rally-001.mp4... (.mov, .webm or .mkv when the clip is; hard link, else copy)"),
  Options.optional
)

const only = Options.text("only").pipe(
  Options.withPseudoName("LIST"),
  Options.withDescription("Export only these rallies, by index: 3,5-7"),
  Options.optional
)

/**
 * @since 0.1.0
 */
export const command = Command.make(
  "export",
  {
    ...Common.common,
    video: Video.video,
    rallies: Video.rallies,
    out,
    mode: Video.mode,
    concurrency: Video.concurrency,
    only,
    videoId: Video.videoId
  },
  (options) =>
    Effect.gen(function*() {
      const file = yield* Common.readRallies(options.rallies)
      const selected = Option.isSome(options.only)
        ? yield* Either.match(Common.parseOnly(options.only.value, file.rallies.length), {
          onLeft: (e) => Effect.fail(e),
          onRight: (v) => Effect.succeed(v)
        })
        : file.rallies.map((_, i) => i)
      const source = yield* Video.checkSource(options.video)
      const outDir = Option.map(options.out, (dir) => NodePath.resolve(dir))

      yield* Common.withCache(options, Video.settings(options), (cacheDir) =>
        Effect.scoped(Effect.gen(function*() {
          const rc = yield* RallyCache.RallyCache
          const opened = yield* Video.open({ path: source, file, videoId: options.videoId, mode: options.mode })
          const videoId = opened.source.id
          // Only once the input is known good, so bad input writes nothing.
          if (Option.isSome(outDir)) yield* ensureDir(outDir.value)
          const exportMs = new Map<number, number>()
          const fellBack: Array<string> = []
          const display = yield* Progress.makeDisplay({ tty: Output.isTTY(), plain: !options.json })
          yield* Progress.follow(videoId, display, (event) => {
            if (event._tag === "ClipReady") exportMs.set(event.clip.rallyIndex, event.exportMs)
            if (event._tag === "ExportFellBack") {
              fellBack.push(`rally ${event.rallyIndex}: cut ${event.to} instead of ${event.from}: ${event.reason}`)
            }
          })
          yield* Progress.live(videoId, display, (status) => Progress.statusLines(status, selected))

          const one = (index: number) =>
            Effect.gen(function*() {
              const started = yield* Output.nowMs
              const clip: Domain.Clip = yield* rc.getClip(videoId, index)
              const waited = (yield* Output.nowMs) - started
              const placed = Option.isSome(outDir)
                ? (yield* place(clip.path, outDir.value, outName(index, clip.path))).path
                : clip.path
              const json: ClipJson = {
                index,
                start: clip.start,
                end: clip.end,
                clipStart: clip.clipStart,
                clipEnd: clip.clipEnd,
                path: placed,
                bytes: clip.sizeBytes,
                cached: clip.cached,
                exportMs: clip.cached ? 0 : Output.round(exportMs.get(index) ?? waited, 1),
                ...(clip.firstFrame === undefined ? {} : { firstFrame: clip.firstFrame }),
                ...(clip.leadIn === undefined ? {} : { leadIn: Output.round(clip.leadIn, 3) })
              }
              return json
            })

          // Requests go to the manager in rally order, so the queue (FIFO
          // within a priority) exports them in that order; `concurrency`
          // bounds how many wait at once, not how many ffmpeg run.
          const results = yield* Effect.forEach(selected, (index) => Effect.exit(one(index)), { concurrency: 64 })
          yield* display.clear

          const clips: Array<ClipJson> = []
          const errors: Array<{ readonly index: number; readonly error: string }> = []
          let firstFailure: unknown = undefined
          results.forEach((exit, i) => {
            if (Exit.isSuccess(exit)) clips.push(exit.value)
            else {
              const error = Option.getOrElse(firstError(exit.cause), () => "interrupted")
              firstFailure ??= error
              errors.push({ index: selected[i]!, error: messageOf(error) })
            }
          })
          const hits = clips.filter((c) => c.cached).length
          const summary = {
            hits,
            misses: selected.length - hits,
            exported: clips.length - hits,
            failed: errors.length,
            bytes: clips.reduce((sum, c) => sum + c.bytes, 0)
          }
          yield* CliStats.add(cacheDir, { hits, misses: clips.length - hits })
          if (options.json) {
            yield* Output.json({
              videoId,
              mode: opened.mode,
              clips,
              metrics: summary,
              ...(errors.length > 0 ? { errors } : {})
            })
          } else {
            yield* Output.stdout(
              Output.table([
                ["rally", "start", "end", "clip", "size", "cached", "export", "path"],
                ...clips.map((c) => [
                  String(c.index),
                  c.start.toFixed(2),
                  c.end.toFixed(2),
                  `${(c.firstFrame ?? c.clipStart).toFixed(2)}-${c.clipEnd.toFixed(2)}`,
                  Output.formatBytes(c.bytes),
                  c.cached ? "yes" : "no",
                  c.cached ? "-" : Output.formatMs(c.exportMs),
                  c.path
                ])
              ], { header: true })
            )
            yield* Output.stdout(
              `\n${clips.length} clip${clips.length === 1 ? "" : "s"} of ${videoId} (${opened.mode} mode): ${summary.hits} cached, ${summary.exported} exported, ${summary.failed} failed, ${
                Output.formatBytes(summary.bytes)
              }${Option.isSome(outDir) ? `, in ${outDir.value}` : ""}`
            )
          }
          if (options.verbose) for (const line of fellBack) yield* Output.stderr(line)
          if (errors.length > 0) {
            const first = errors[0]!
            const said = ffmpegSaid(firstFailure)
            if (options.verbose && said !== undefined) yield* Output.stderr(said)
            yield* Output.stderr(
              `${errors.length} of ${selected.length} rallies failed; rally ${first.index}: ${first.error}${
                errors.length > 1 ? ` (and ${errors.length - 1} more${options.json ? `, listed in "errors"` : ""})` : ""
              }`
            )
            return yield* new CliExit({ code: exitCodeOf(firstFailure) === 2 ? 2 : 1 })
          }
        })))
    })
).pipe(Command.withDescription("Export every rally (or --only some) through the cache"))
