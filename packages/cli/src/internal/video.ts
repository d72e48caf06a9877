/**
 * Options and steps shared by the commands that work on a video
 * (`export`, `get`, `watch`, `demo`).
 *
 * @internal
 */
import { Args, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import * as Domain from "@rallycache/core/Domain"
import * as Errors from "@rallycache/core/Errors"
import type * as RalliesGrammar from "@rallycache/core/RalliesGrammar"
import * as RallyCache from "@rallycache/core/RallyCache"
import { Effect, Option } from "effect"
import * as NodePath from "node:path"

/** @internal */
export const video = Args.file({ name: "video" }).pipe(
  Args.withDescription("The match video file (mp4, mkv, mov... any file ffmpeg reads)")
)

/** @internal */
export const rallies = Options.file("rallies").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription(`The rallies JSON file: {"rallies": [{"start": 12.5, "end": "0:31"}, ...]}`)
)

/** @internal */
export const mode = Options.choice("mode", Domain.exportModes).pipe(
  Options.withDescription(
    "exact (default): a stream copy whose mp4 edit list starts it at the rally's first frame; copy: as fast, starts at the keyframe before the rally; accurate: re-encoded, frame-exact"
  ),
  Options.optional
)

/** @internal */
export const concurrency = Options.integer("concurrency").pipe(
  Options.withPseudoName("N"),
  Options.withDescription("ffmpeg processes at once (default 2)"),
  Options.filterMap(
    (n) => n >= 1 && n <= 64 ? Option.some(n) : Option.none(),
    "--concurrency must be a whole number from 1 to 64"
  ),
  Options.optional
)

/** @internal */
export const videoId = Options.text("video-id").pipe(
  Options.withPseudoName("ID"),
  Options.withDescription("Video id (default: the rallies file's videoId, then the source's fingerprint)"),
  Options.optional
)

/**
 * Settings from the command line, for the cache layer.
 *
 * @internal
 */
export const settings = (options: {
  readonly mode: Option.Option<Domain.ExportMode>
  readonly concurrency: Option.Option<number>
}) => ({
  ...(Option.isSome(options.mode) ? { mode: options.mode.value } : {}),
  ...(Option.isSome(options.concurrency) ? { concurrency: options.concurrency.value } : {})
})

/**
 * Fail early, with the same message as the exporter, when the video is
 * missing or not a file (no cache layer or ffmpeg needed to say so).
 *
 * @internal
 */
export const checkSource = (path: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const absolute = NodePath.resolve(path)
    const info = yield* fs.stat(absolute).pipe(
      Effect.mapError((error) =>
        error._tag === "SystemError" && error.reason === "NotFound"
          ? new Errors.SourceNotFound({ path: absolute })
          : new Errors.SourceUnreadable({ path: absolute, reason: error.message })
      )
    )
    if (info.type !== "File") {
      return yield* new Errors.SourceUnreadable({ path: absolute, reason: `it is a ${info.type.toLowerCase()}` })
    }
    return absolute
  })

/**
 * Open the video in the cache.
 *
 * @internal
 */
export const open = (input: {
  readonly path: string
  readonly file: RalliesGrammar.RalliesFile
  readonly videoId: Option.Option<string>
  readonly mode: Option.Option<Domain.ExportMode>
}) =>
  Effect.gen(function*() {
    const rc = yield* RallyCache.RallyCache
    const id = Option.getOrUndefined(input.videoId) ?? input.file.videoId
    return yield* rc.openVideo({
      path: input.path,
      rallies: input.file.rallies,
      ...(id === undefined ? {} : { id }),
      ...(Option.isSome(input.mode) ? { mode: input.mode.value } : {})
    })
  })
