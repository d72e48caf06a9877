/**
 * The `Exporter` service cuts one rally out of a source video.
 *
 * Layers:
 * - `@rallycache/node`'s `FfmpegExporter.layer`: real ffmpeg.
 * - `TestExporter.layer`: in memory, its export time driven by the `Clock`
 *   (so `TestClock`), with injectable failures.
 *
 * @since 0.1.0
 */
import type { Effect, SubscriptionRef } from "effect"
import { Context } from "effect"
import type { Container, ExportMode, Priority, Rally, SourceInfo, VideoSource } from "./Domain.js"
import type { ExportError, NotMediaFile, SourceNotFound, SourceUnreadable, UnsupportedSource } from "./Errors.js"

/**
 * One export to perform.
 *
 * The exporter writes only to `tempPath`, and moves the finished, verified
 * file to `outputPath` atomically (same folder or same file system), so a
 * file at `outputPath` is always complete. If the effect fails or is
 * interrupted, nothing is left at either path.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExportRequest {
  readonly source: VideoSource
  readonly rally: Rally
  readonly mode: ExportMode
  readonly priority: Priority
  readonly tempPath: string
  readonly outputPath: string
  /** Called with the completed ratio (0 to 1) as the export advances. */
  readonly onProgress?: ((ratio: number) => Effect.Effect<void>) | undefined
  /**
   * While `true`, the export should pause without losing its work (ffmpeg:
   * SIGSTOP/SIGCONT). Exporters that cannot pause ignore it. Set by the
   * queue's preemption in `suspend` mode.
   */
  readonly paused?: SubscriptionRef.SubscriptionRef<boolean> | undefined
  /**
   * Run once the export has really stopped after `paused` turned `true`
   * (ffmpeg: after the SIGSTOP): the queue hands the freed slot over then.
   */
  readonly confirmPaused?: Effect.Effect<void> | undefined
}

/**
 * What an export produced.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExportResult {
  /** Where the clip really starts and ends in the source, in seconds. */
  readonly clipStart: number
  readonly clipEnd: number
  readonly sizeBytes: number
  /** Source time of the first frame a player presents, when it differs from `clipStart`. */
  readonly firstFrame?: number | undefined
  /** Seconds stored before `firstFrame`, hidden by the clip's edit list. */
  readonly leadIn?: number | undefined
  /** The clip's container (default mp4). */
  readonly container?: Container | undefined
  /**
   * Set when the requested mode could not be used for this clip and the
   * exporter cut it in another mode instead (e.g. `exact` to `accurate`).
   */
  readonly fellBack?: { readonly to: ExportMode; readonly reason: string } | undefined
  /** What wrote the clip (default `ffmpeg`): see `Cutter`. */
  readonly cutBy?: Cutter | undefined
  /**
   * Set when the in-process cutter was tried and refused this source (a
   * layout it does not model, or a clip that failed its check), so ffmpeg
   * cut it: why.
   */
  readonly inProcessRefused?: string | undefined
}

/**
 * What wrote a clip: the exporter's own mp4/mov writer, without a child
 * process (copy and exact cuts of mp4/mov sources), or ffmpeg.
 *
 * @since 0.1.0
 * @category models
 */
export type Cutter = "in-process" | "ffmpeg"

/**
 * What a deep check of a clip found.
 *
 * @since 0.1.0
 * @category models
 */
export type VerifyResult =
  | { readonly _tag: "Valid" }
  | { readonly _tag: "Invalid"; readonly reason: string }

/**
 * @since 0.1.0
 * @category models
 */
export interface ExporterShape {
  /**
   * A version string of the encoder settings of `mode`, part of every cache
   * key: changing the preset or CRF must change it.
   */
  readonly settingsVersion: (mode: ExportMode) => string
  /** Fingerprint, duration and keyframe interval of a source (cached per source). */
  readonly probe: (
    path: string
  ) => Effect.Effect<SourceInfo, SourceNotFound | SourceUnreadable | NotMediaFile | UnsupportedSource>
  /** Cut one rally. */
  readonly export: (request: ExportRequest) => Effect.Effect<ExportResult, ExportError>
  /** Deep-check a clip's media (reads its packets, not only its header). */
  readonly verify: (path: string) => Effect.Effect<VerifyResult>
  /** Whether `paused` is honoured (so preemption can pause instead of kill). */
  readonly canPause: boolean
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Exporter extends Context.Tag("@rallycache/core/Exporter")<Exporter, ExporterShape>() {}
