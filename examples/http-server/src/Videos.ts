/**
 * The registry of the videos this server opened, with their rallies'
 * times (the cache's status has states and keys, not times), and the two
 * ways in: `openVideo` for videos the operator names at start-up,
 * `registerVideo` for clients (only files under the media root).
 *
 * @since 0.1.0
 */
import type { FileSystem, Path } from "@effect/platform"
import { Errors, RallyCache } from "@rallycache/core"
import { Context, Effect, Layer, Ref } from "effect"
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
 * Register a video for a client: its path must resolve under the media root.
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
    return yield* openVideo({ path, rallies: input.rallies, id: input.id, mode: input.mode })
  })
