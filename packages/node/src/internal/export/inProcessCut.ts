/**
 * The choice between the in-process cutters (`mp4Cut`, `mkvCut`) and ffmpeg for one
 * planned stream-copy cut, and the in-process run itself as an Effect
 * (interruptible between pieces, I/O errors typed as ffmpeg's are).
 *
 * @internal
 */
import type { Errors, Exporter } from "@rallycache/core"
import { Effect } from "effect"
import { audioDurationOf, type Cut } from "./exportPlan.js"
import { ioFailure } from "./exportRun.js"
import type { SourceEntry } from "../media/ffprobe.js"
import { cutMkv, type MkvCutResult } from "../media/mkvCut.js"
import { MkvUnsupported } from "../media/mkvEbml.js"
import { cutMp4, type Mp4CutResult } from "../media/mp4Cut.js"
import { Mp4Unsupported } from "../media/mp4Tracks.js"
import { isUrl } from "../media/urlSource.js"

/**
 * Whether this cut can be tried in process: a copy or exact cut of an
 * mp4/mov source into mp4/mov, or a copy cut of a Matroska/WebM source into
 * Matroska/WebM. @internal
 */
export const inProcessEligible = (entry: SourceEntry, cut: Cut): boolean =>
  (cut.mode === "copy" || cut.mode === "exact") &&
  (cut.container === "mp4" || String(cut.container) === "mov") &&
  entry.format.split(",").includes("mov") ||
  cut.mode === "copy" && matroskaClip(cut) && entry.format === "matroska,webm"

const matroskaClip = (cut: Cut) => cut.container === "webm" || cut.container === "mkv"

/** The in-process cut wrote the clip, or refused the source (nothing written) and ffmpeg is to cut it. @internal */
export type InProcessOutcome =
  | { readonly _tag: "Cut"; readonly result: Mp4CutResult | MkvCutResult }
  | { readonly _tag: "Refused"; readonly reason: string }

/**
 * Cut `cut` of `entry` into `request.tempPath` without a child process.
 *
 * @internal
 */
export const cutInProcess = (
  entry: SourceEntry,
  request: Exporter.ExportRequest,
  cut: Cut
): Effect.Effect<InProcessOutcome, Errors.ExportFailed> =>
  isUrl(entry.path)
    ? Effect.succeed({ _tag: "Refused", reason: "the source is a URL (the in-process cutter reads local files only)" })
    : cutLocal(entry, request, cut)

const cutLocal = (entry: SourceEntry, request: Exporter.ExportRequest, cut: Cut) =>
  Effect.tryPromise({
    try: (signal): Promise<Mp4CutResult | MkvCutResult> =>
      matroskaClip(cut)
        ? cut.dropLeading
          ? Promise.reject(new MkvUnsupported("its keyframe has leading pictures to drop"))
          : cutMkv(entry.path, request.tempPath, {
            keyframe: cut.clipStart,
            presented: cut.presented,
            audioDuration: audioDurationOf(entry, cut.container, cut.clipStart, cut.presented),
            docType: cut.container === "webm" ? "webm" : "matroska"
          }, entry, signal)
        : cutMp4(entry.path, request.tempPath, {
        keyframe: cut.clipStart,
        present: cut.firstFrame ?? cut.clipStart,
        presented: cut.presented,
        startTime: entry.startTime
      }, signal, entry),
    catch: (error) => error
  }).pipe(
    Effect.map((result): InProcessOutcome => ({ _tag: "Cut", result })),
    Effect.catchAll((error) =>
      error instanceof Mp4Unsupported || error instanceof MkvUnsupported
        ? Effect.succeed<InProcessOutcome>({ _tag: "Refused", reason: error.message })
        : Effect.fail(ioFailure("the in-process cut failed", error instanceof Error ? error : { message: String(error) }))
    )
  )
