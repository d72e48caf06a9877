/**
 * The `Exporter` service on real ffmpeg, run through @effect/platform's
 * `Command`.
 *
 * - **copy** mode: stream copy from the keyframe at or before the rally's
 *   start (chosen from the source's packet index, so the clip starts at most
 *   one GOP early); mp4 where the streams fit, else webm or mkv.
 * - **exact** mode: the same stream copy into mp4, with an edit list that
 *   starts presentation at the rally's first frame (`firstFrame`; the
 *   `leadIn` before it is stored and hidden) and ends it at the rally's end.
 *   Streams that do not fit mp4, and AV1, are cut `accurate` instead
 *   (`fellBack` in the result).
 * - **accurate** mode: input seek and re-encode with libx264 + aac, frame-exact.
 *
 * Every export writes to `request.tempPath`, is fsynced and checked (by
 * default in process, from the container's index: streams present with
 * durations within tolerance, every sample inside the file; see
 * `verifyOutput`), and only then renamed to `request.outputPath`. A failed or interrupted export leaves
 * nothing at either path, and no ffmpeg behind it: interruption sends
 * SIGTERM, then SIGKILL after `killGrace`; on Linux ffmpeg also runs under
 * `setpriv --pdeathsig KILL` so it dies with its parent, and each running
 * export is recorded in `runDir` so `reapStale` can end the orphans of a
 * crashed process at the next start.
 *
 * @example
 * ```ts
 * import { FfmpegExporter } from "@rallycache/node"
 * import { NodeContext } from "@effect/platform-node"
 * import { Layer } from "effect"
 *
 * const ExporterLive = FfmpegExporter.layer({ preset: "veryfast", crf: 20, runDir: "/var/cache/rallycache/run" }).pipe(
 *   Layer.provide(NodeContext.layer)
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import type { Domain, Exporter } from "@rallycache/core"
import { Exporter as ExporterTag } from "@rallycache/core"
import type { Duration, Effect } from "effect"
import { Layer } from "effect"
import type { Ffmpeg, FfmpegNotFound } from "./FfmpegResolver.js"
import { layer as ffmpegLayer } from "./FfmpegResolver.js"
import * as internal from "./internal/export/ffmpegExporter.js"
import type { ReapResult } from "./internal/export/runRegistry.js"
import * as RunRegistry from "./internal/export/runRegistry.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** x264 preset of accurate mode. Default "veryfast" (ultrafast is not faster here and makes 2.8x larger files). */
  readonly preset?: string | undefined
  /** x264 CRF of accurate mode. Default 20. */
  readonly crf?: number | undefined
  /** AAC bitrate of accurate mode. Default "128k". */
  readonly audioBitrate?: string | undefined
  /** Niceness of low-priority exports and, where the kernel schedules by autogroup, of their session's autogroup (0 to disable). Default 10. */
  readonly lowPriorityNice?: number | undefined
  /** Time between SIGTERM and SIGKILL when an export is interrupted. Default 2 seconds. */
  readonly killGrace?: Duration.DurationInput | undefined
  /** Where running exports are recorded (`<runDir>/<pid>.json`), e.g. `<cacheDir>/run`. */
  readonly runDir?: string | undefined
  /** An export running longer fails with `ExportFailed("timeout")` (transient). Default: none. */
  readonly timeout?: Duration.DurationInput | undefined
  /**
   * How far (seconds) a rally may end past the source's end before it is
   * rejected; within it the clip ends with the source. Default 0.5.
   */
  readonly endSlack?: number | undefined
  /**
   * Copy and exact cuts of mp4/mov sources are written in process (the kept
   * samples copied as they lie, new sample tables and edit lists), with no
   * ffmpeg child; ffmpeg cuts what the in-process cutter refuses (the result's
   * `inProcessRefused` says why). `false` always runs ffmpeg. Default `true`.
   */
  readonly inProcess?: boolean | undefined
  /**
   * How each new clip is checked before it is renamed into place:
   * - `"container"` (default): read in process from the clip's container
   *   (mp4 boxes, Matroska/WebM elements): each expected stream present with
   *   samples and a duration within tolerance, and every sample the index
   *   points to inside the file, so a clip cut short fails. No process.
   * - `"ffprobe"`: ffprobe reads the file back (streams present, duration
   *   within tolerance). Costs one process start, about as much as a
   *   copy-mode cut itself, and passes a faststart mp4 cut short.
   * - `"progress"`: trusts ffmpeg's own final `-progress` report (frames
   *   written, output duration) and its exit code; no extra process.
   * Either way the deep check (`verify`) runs in the store's sweeps.
   */
  readonly verifyOutput?: "container" | "ffprobe" | "progress" | undefined
}

/**
 * The version string of the encoder settings of `mode` (part of cache keys).
 *
 * @since 0.1.0
 * @category utils
 */
export const settingsVersion: (mode: Domain.ExportMode, options?: Options) => string = internal.settingsVersion

/**
 * Build the exporter from a resolved `Ffmpeg`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: Options
) => Effect.Effect<
  Exporter.ExporterShape,
  never,
  Ffmpeg | CommandExecutor.CommandExecutor | FileSystem.FileSystem
> = internal.make

/**
 * The exporter, on an already resolved `Ffmpeg` service (share one
 * resolution between the exporter and, say, a `doctor` command).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithFfmpeg = (
  options: Options = {}
): Layer.Layer<Exporter.Exporter, never, Ffmpeg | CommandExecutor.CommandExecutor | FileSystem.FileSystem> =>
  Layer.effect(ExporterTag.Exporter, make(options))

/**
 * The exporter, resolving ffmpeg itself (see `FfmpegResolver`). Requires the
 * platform (`NodeContext.layer`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Exporter.Exporter, FfmpegNotFound, CommandExecutor.CommandExecutor | FileSystem.FileSystem> =>
  layerWithFfmpeg(options).pipe(Layer.provide(ffmpegLayer))

/**
 * End the ffmpeg processes recorded in `runDir` by processes that are gone
 * (crashed or SIGKILLed), and remove their part files. Safe with several
 * processes sharing a cache folder: records of live owners are kept. Run it
 * at start-up, before new exports.
 *
 * @since 0.1.0
 * @category utils
 */
export const reapStale = (runDir: string): Effect.Effect<ReapResult, never, FileSystem.FileSystem> =>
  RunRegistry.reapStale(runDir)

/**
 * @since 0.1.0
 */
export type { ReapResult }
