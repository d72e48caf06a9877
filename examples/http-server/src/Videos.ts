/**
 * The registry of the videos this server opened, with their rallies'
 * times (the cache's status has states and keys, not times), and the ways
 * in and out: `openVideo` for videos the operator names at start-up,
 * `registerVideo` for clients (only files under the media root, rallies
 * inline or from a rallies file there), `closeVideo`.
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import { Errors, RallyCache } from "@rallycache/core"
import { RalliesFile } from "@rallycache/node"
import { Context, Effect, Layer, Option, Ref } from "effect"
import type { RegisterVideo } from "./Api.js"
import * as MediaRoot from "./internal/mediaRoot.js"
import { ServerConfig } from "./ServerConfig.js"

/**
 * @since 0.1.0
 * @category tags
 */
export class Videos extends Context.Tag("http-server/Videos")<Videos, Ref.Ref<ReadonlyMap<string, RallyCache.OpenedVideo>>>() {
  /** @since 0.1.0 */
  static readonly layer = Layer.effect(Videos, Ref.make<ReadonlyMap<string, RallyCache.OpenedVideo>>(new Map()))
}

/**
 * The registered videos, in the order they were first registered.
 *
 * @since 0.1.0
 * @category accessors
 */
export const all: Effect.Effect<ReadonlyArray<RallyCache.OpenedVideo>, never, Videos> = Effect.map(
  Effect.flatMap(Videos, Ref.get),
  (videos) => [...videos.values()]
)

/**
 * The registered video `id`, or core's `UnknownVideo`.
 *
 * @since 0.1.0
 * @category accessors
 */
export const known = (id: string): Effect.Effect<RallyCache.OpenedVideo, Errors.UnknownVideo, Videos> =>
  Effect.flatMap(Videos, Ref.get).pipe(
    Effect.flatMap((videos) => {
      const video = videos.get(id)
      return video === undefined ? Effect.fail(new Errors.UnknownVideo({ videoId: id })) : Effect.succeed(video)
    })
  )

/**
 * Open a video and make it available to the routes, without the media-root
 * check: for videos the operator names at start-up.
 *
 * @since 0.1.0
 * @category constructors
 */
export const openVideo = (
  input: RallyCache.OpenVideoInput
): Effect.Effect<RallyCache.OpenedVideo, RallyCache.OpenError, RallyCache.RallyCache | Videos> =>
  Effect.gen(function*() {
    const cache = yield* RallyCache.RallyCache
    const opened = yield* cache.openVideo(input)
    yield* Effect.flatMap(Videos, (videos) => Ref.update(videos, (map) => new Map(map).set(opened.source.id, opened)))
    return opened
  })

/**
 * Largest rallies file read for a client, in bytes (`RalliesFile.maxFileBytes`).
 *
 * @since 0.1.0
 * @category limits
 */
export const maxRalliesFileBytes = RalliesFile.maxFileBytes

/**
 * Read a rallies file under the media root with the CLI's grammar
 * (`RalliesFile.parse`). Messages name the file as the client wrote it,
 * never the server's absolute path.
 *
 * @since 0.1.0
 * @category constructors
 */
export const readRalliesFile = (
  requested: string
): Effect.Effect<
  RalliesFile.RalliesFile,
  MediaRoot.OutsideMediaRoot | MediaRoot.MediaNotFound | Errors.InvalidInput,
  ServerConfig | FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function*() {
    const config = yield* ServerConfig
    const fs = yield* FileSystem.FileSystem
    const path = yield* MediaRoot.resolve(config.mediaRoot, requested)
    const field = `ralliesFile ${requested}`
    const info = yield* fs.stat(path).pipe(
      Effect.mapError((error) => new Errors.InvalidInput({ field, reason: `cannot be read: ${error.message}` }))
    )
    if (info.type !== "File") {
      return yield* new Errors.InvalidInput({ field, reason: "is not a file", fix: "choose a rallies JSON file" })
    }
    if (Number(info.size) > maxRalliesFileBytes) {
      return yield* new Errors.InvalidInput({
        field,
        reason: `is ${Number(info.size)} bytes, larger than ${maxRalliesFileBytes}`,
        fix: "choose a rallies JSON file"
      })
    }
    const bytes = yield* fs.readFile(path).pipe(
      Effect.mapError((error) => new Errors.InvalidInput({ field, reason: `cannot be read: ${error.message}` }))
    )
    return yield* RalliesFile.parseEffect(bytes, requested).pipe(
      Effect.mapError((error) =>
        new Errors.InvalidInput({
          field,
          reason: error.field === requested ? error.reason : `${error.field}: ${error.reason}`,
          ...(error.fix === undefined ? {} : { fix: error.fix })
        })
      )
    )
  })

/**
 * Register a video for a client: its path, and its rallies file if one is
 * named, must resolve under the media root. Exactly one of `rallies` and
 * `ralliesFile` is given; the rallies file's `videoId` is the default id.
 *
 * @since 0.1.0
 * @category constructors
 */
export const registerVideo = (
  input: RegisterVideo
): Effect.Effect<
  RallyCache.OpenedVideo,
  RallyCache.OpenError | MediaRoot.OutsideMediaRoot | MediaRoot.MediaNotFound,
  RallyCache.RallyCache | Videos | ServerConfig | FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function*() {
    const config = yield* ServerConfig
    const path = yield* MediaRoot.resolve(config.mediaRoot, input.path)
    if (input.rallies !== undefined && input.ralliesFile !== undefined) {
      return yield* new Errors.InvalidInput({
        field: "ralliesFile",
        reason: "is given with rallies",
        fix: "send either rallies or ralliesFile, not both"
      })
    }
    const file = input.ralliesFile === undefined
      ? Option.none()
      : Option.some(yield* readRalliesFile(input.ralliesFile))
    const rallies = input.rallies ?? Option.getOrUndefined(Option.map(file, (f) => f.rallies))
    if (rallies === undefined) {
      return yield* new Errors.InvalidInput({
        field: "rallies",
        reason: "is missing",
        fix: `send "rallies": [{"start": 12.5, "end": 31}, ...] or "ralliesFile": a rallies file under the media root`
      })
    }
    const id = input.id ?? Option.getOrUndefined(Option.flatMapNullable(file, (f) => f.videoId))
    return yield* openVideo({ path, rallies, id, mode: input.mode })
  })

/**
 * Close a registered video: the cache cancels its queued exports and
 * releases its pins (its clips stay cached), and it leaves the registry.
 *
 * @since 0.1.0
 * @category destructors
 */
export const closeVideo = (
  id: string
): Effect.Effect<void, Errors.UnknownVideo, RallyCache.RallyCache | Videos> =>
  Effect.gen(function*() {
    yield* known(id)
    const cache = yield* RallyCache.RallyCache
    yield* cache.close(id)
    yield* Effect.flatMap(Videos, (videos) =>
      Ref.update(videos, (map) => {
        const next = new Map(map)
        next.delete(id)
        return next
      }))
  })
