/**
 * The clip API outside the cache: probe a source, and export one rally
 * straight to a path the user chooses, with the cache's safety rules: the
 * clip is written to a temporary file beside the output, fsynced, checked
 * and renamed into place, so the output path never holds a partial file;
 * nothing is written anywhere else.
 *
 * @example
 * ```ts
 * import { Clip, FfmpegExporter } from "@rallycache/node"
 * import { Domain } from "@rallycache/core"
 * import { NodeContext } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 *
 * const program = Clip.exportRallyTo("match.mp4", new Domain.Rally({ index: 0, start: 12.5, end: 31 }), "rally-0.mp4", {
 *   mode: "accurate"
 * }).pipe(Effect.provide(FfmpegExporter.layer().pipe(Layer.provideMerge(NodeContext.layer))))
 * ```
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Domain, Errors, Exporter } from "@rallycache/core"
import { Effect, Exit, Queue, Schema, Stream, Take } from "effect"
import * as NodeCrypto from "node:crypto"
import * as NodePath from "node:path"
import { resolveSource } from "./internal/media/urlSource.js"

/**
 * What `exportRallyTo` produced.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExportedClip extends Exporter.ExportResult {
  /** Absolute path of the clip. */
  readonly path: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ExportToOptions {
  /** Default "exact". */
  readonly mode?: Domain.ExportMode | undefined
  readonly onProgress?: ((ratio: number) => Effect.Effect<void>) | undefined
}

/**
 * Duration, keyframe interval, streams and fingerprint of a source (cached
 * per source by the exporter).
 *
 * @since 0.1.0
 * @category utils
 */
export const probe = (
  path: string
): Effect.Effect<
  Domain.SourceInfo,
  Errors.SourceNotFound | Errors.SourceUnreadable | Errors.NotMediaFile | Errors.UnsupportedSource,
  Exporter.Exporter
> =>
  Effect.flatMap(Exporter.Exporter, (exporter) => exporter.probe(resolveSource(path)))

const invalidOutput = (path: string, reason: string, fix: string) =>
  new Errors.InvalidInput({ field: "output", reason: `${path} ${reason}`, fix })

/**
 * Export one rally of `sourcePath` to `outputPath` (an mp4, overwritten if it
 * exists). The output's folder must exist; a folder as output is refused.
 *
 * @since 0.1.0
 * @category utils
 */
export const exportRallyTo = (
  sourcePath: string,
  rally: Domain.Rally,
  outputPath: string,
  options: ExportToOptions = {}
): Effect.Effect<ExportedClip, Errors.ExportError | Errors.InvalidInput, Exporter.Exporter | FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const exporter = yield* Exporter.Exporter
    const output = NodePath.resolve(outputPath)
    const source = resolveSource(sourcePath)
    const dir = NodePath.dirname(output)
    if (output === source) {
      return yield* invalidOutput(output, "is the source video", "choose another output path")
    }
    const existing = yield* Effect.option(fs.stat(output))
    if (existing._tag === "Some" && existing.value.type === "Directory") {
      return yield* invalidOutput(output, "is a directory", "give a file path such as clips/rally-3.mp4")
    }
    if (existing._tag === "Some" && existing.value.type !== "File") {
      return yield* invalidOutput(output, `is not a regular file (${existing.value.type})`, "give a file path")
    }
    const parent = yield* Effect.option(fs.stat(dir))
    if (parent._tag === "None" || parent.value.type !== "Directory") {
      return yield* invalidOutput(output, "is in a folder that does not exist", "create the folder first")
    }
    const info = yield* exporter.probe(source)
    const videoId = Schema.decodeSync(Domain.VideoId)(`file:${info.fingerprint}`)
    const tempPath = NodePath.join(dir, `.${NodePath.basename(output)}.${NodeCrypto.randomUUID().slice(0, 8)}.part`)
    const result = yield* exporter.export({
      source: new Domain.VideoSource({ id: videoId, path: source, fingerprint: info.fingerprint }),
      rally,
      mode: options.mode ?? "exact",
      priority: "high",
      tempPath,
      outputPath: output,
      onProgress: options.onProgress
    })
    return { ...result, path: output }
  })

/**
 * One element of `exportRallyToStream`: progress ratios (0 to 1, from
 * ffmpeg's `-progress` output), then the finished clip.
 *
 * @since 0.1.0
 * @category models
 */
export type ExportProgress =
  | { readonly _tag: "Progress"; readonly ratio: number }
  | { readonly _tag: "Done"; readonly clip: ExportedClip }

/**
 * `exportRallyTo` as a `Stream` of progress that ends with the clip. Ending
 * the stream early (or interrupting it) ends ffmpeg and leaves no file.
 *
 * @example
 * ```ts
 * import { Clip } from "@rallycache/node"
 * import { Domain } from "@rallycache/core"
 * import { Console, Effect, Stream } from "effect"
 *
 * const program = Clip.exportRallyToStream("match.mp4", new Domain.Rally({ index: 0, start: 12, end: 30 }), "r0.mp4", {
 *   mode: "accurate"
 * }).pipe(Stream.runForEach((event) => event._tag === "Progress" ? Console.log(`${Math.round(event.ratio * 100)}%`) : Effect.void))
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const exportRallyToStream = (
  sourcePath: string,
  rally: Domain.Rally,
  outputPath: string,
  options: Omit<ExportToOptions, "onProgress"> = {}
): Stream.Stream<ExportProgress, Errors.ExportError | Errors.InvalidInput, Exporter.Exporter | FileSystem.FileSystem> =>
  Stream.unwrapScoped(Effect.gen(function*() {
    type E = Errors.ExportError | Errors.InvalidInput
    const queue = yield* Queue.unbounded<Take.Take<ExportProgress, E>>()
    yield* exportRallyTo(sourcePath, rally, outputPath, {
      ...options,
      onProgress: (ratio) => Queue.offer(queue, Take.of<ExportProgress>({ _tag: "Progress", ratio }))
    }).pipe(
      Effect.onExit((exit) =>
        Exit.isSuccess(exit)
          ? Queue.offerAll(queue, [Take.of<ExportProgress>({ _tag: "Done", clip: exit.value }), Take.end])
          : Queue.offer(queue, Take.failCause(exit.cause))
      ),
      Effect.ignore,
      Effect.forkScoped
    )
    return Stream.fromQueue(queue).pipe(Stream.flattenTake)
  }))
