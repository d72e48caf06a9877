/**
 * The rallycache HTTP service: a clip API, Server-Sent Events, Prometheus
 * metrics and a player page, as one `HttpRouter` over the `RallyCache`
 * service. `layer` serves it on whatever `HttpServer` you provide, so the
 * same routes run on `NodeHttpServer` in `main.ts` and in the tests.
 *
 * @since 0.1.0
 */
import type { HttpPlatform } from "@effect/platform"
import { FileSystem, HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse, Path } from "@effect/platform"
import { CacheEvent, Domain, RallyCache } from "@rallycache/core"
import { Config, Context, Data, Deferred, Duration, Effect, Layer, Metric, Option, Ref, Schema, Stream } from "effect"
import type * as Http from "node:http"
import { handleErrors, Navigate, RallyParams, RegisterVideo, VideoParams } from "./Api.js"
import * as Conditional from "./internal/conditional.js"
import * as MediaRoot from "./internal/mediaRoot.js"
import * as Range from "./internal/range.js"
import { PlayerAssets } from "./Player.js"
import { Prometheus } from "./Prometheus.js"

/**
 * Settings of the HTTP layer itself (the cache reads its own
 * `RALLYCACHE_*` settings).
 *
 * @since 0.1.0
 */
export interface ServerSettings {
  /** Only files under this folder can be registered. */
  readonly mediaRoot: string
  /** How long a clip request waits for its export before answering 504. */
  readonly clipTimeout: Duration.Duration
  /** On shutdown, how long in-flight responses may take before their connections are closed. */
  readonly shutdownGrace: Duration.Duration
}

/**
 * Settings in code: durations as any `Duration.DurationInput`.
 *
 * @since 0.1.0
 */
export interface ServerOptions {
  readonly mediaRoot?: string | undefined
  readonly clipTimeout?: Duration.DurationInput | undefined
  readonly shutdownGrace?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 */
export class ServerConfig extends Context.Tag("http-server/ServerConfig")<ServerConfig, ServerSettings>() {
  /**
   * | variable                      | default            |
   * |-------------------------------|--------------------|
   * | RALLYCACHE_MEDIA_ROOT         | the current folder |
   * | RALLYCACHE_CLIP_TIMEOUT       | 30 seconds         |
   * | RALLYCACHE_SHUTDOWN_GRACE     | 30 seconds         |
   */
  static readonly layerConfig = (defaults: ServerOptions = {}) =>
    Layer.effect(
      ServerConfig,
      Config.all({
        mediaRoot: Config.string("RALLYCACHE_MEDIA_ROOT").pipe(
          Config.withDefault(defaults.mediaRoot ?? process.cwd())
        ),
        clipTimeout: Config.duration("RALLYCACHE_CLIP_TIMEOUT").pipe(
          Config.withDefault(Duration.decode(defaults.clipTimeout ?? "30 seconds"))
        ),
        shutdownGrace: Config.duration("RALLYCACHE_SHUTDOWN_GRACE").pipe(
          Config.withDefault(Duration.decode(defaults.shutdownGrace ?? "30 seconds"))
        )
      })
    )

  /** From code only, ignoring the environment. */
  static readonly layer = (options: ServerOptions = {}) =>
    Layer.succeed(ServerConfig, {
      mediaRoot: options.mediaRoot ?? process.cwd(),
      clipTimeout: Duration.decode(options.clipTimeout ?? "30 seconds"),
      shutdownGrace: Duration.decode(options.shutdownGrace ?? "30 seconds")
    })
}

/**
 * The videos this server registered, with their rallies' times (the cache's
 * status has states and keys, not times).
 *
 * @since 0.1.0
 */
export class Videos extends Context.Tag("http-server/Videos")<Videos, Ref.Ref<ReadonlyMap<string, RallyCache.OpenedVideo>>>() {
  static readonly layer = Layer.effect(Videos, Ref.make<ReadonlyMap<string, RallyCache.OpenedVideo>>(new Map()))
}

/**
 * Completed when the server starts shutting down: endless responses (the
 * event stream) end then, so closing the server only waits for real work.
 *
 * @since 0.1.0
 */
export class ShuttingDown extends Context.Tag("http-server/ShuttingDown")<ShuttingDown, Deferred.Deferred<void>>() {}

/**
 * The Node server underneath, when there is one: on shutdown, connections
 * still open after the grace period are closed.
 *
 * @since 0.1.0
 */
export class NodeServer extends Context.Tag("http-server/NodeServer")<NodeServer, Http.Server>() {}

/**
 * A clip export took longer than the server's `clipTimeout`.
 *
 * @since 0.1.0
 */
export class ClipTimeout extends Data.TaggedError("ClipTimeout")<{ readonly videoId: string; readonly index: number; readonly timeout: Duration.Duration }> {
  override get message(): string {
    return `rally ${this.index} of video ${JSON.stringify(this.videoId)} was not exported within ${Duration.format(this.timeout)} (it keeps exporting; retry shortly or raise RALLYCACHE_CLIP_TIMEOUT)`
  }
}

const clipResponses = Metric.counter("rallycache_http_clip_responses", {
  description: "Clip responses by HTTP status and cache outcome",
  incremental: true
})

const countClip = (status: number, cache: "hit" | "miss" | "none") =>
  Metric.update(clipResponses.pipe(Metric.tagged("status", String(status)), Metric.tagged("cache", cache)), 1)

/** Rally states flattened for JSON readers (the page, curl, scripts). */
const rallyView = (rally: Domain.Rally, state: RallyCache.RallyState | undefined) => {
  const base = { index: rally.index, start: rally.start, end: rally.end }
  switch (state?._tag) {
    case "Cached":
      return { ...base, state: "cached", key: state.key, sizeBytes: state.sizeBytes }
    case "Queued":
      return { ...base, state: "queued", key: state.key, priority: state.priority }
    case "Running":
      return { ...base, state: "running", key: state.key, priority: state.priority, progress: state.progress }
    case "Failed":
      return { ...base, state: "failed", key: state.key, reason: state.reason }
    case "Idle":
      return { ...base, state: "idle", key: state.key }
    case undefined:
      return { ...base, state: "idle" }
  }
}

/** The event as sent to browsers: without the server's file paths. */
const publicEvent = (event: CacheEvent.CacheEvent): unknown => {
  const encoded = Schema.encodeSync(CacheEvent.CacheEvent)(event)
  if (encoded._tag !== "ClipReady") return encoded
  const { path: _path, ...clip } = encoded.clip
  return { ...encoded, clip }
}

const knownVideo = (id: string) =>
  Effect.flatMap(Videos, Ref.get).pipe(
    Effect.flatMap((videos) => {
      const video = videos.get(id)
      return video === undefined ? Effect.fail(new UnknownVideoError(id)) : Effect.succeed(video)
    })
  )

class UnknownVideoError extends Data.TaggedError("UnknownVideo")<{ readonly videoId: string }> {
  constructor(videoId: string) {
    super({ videoId })
  }
  override get message(): string {
    return `video ${JSON.stringify(this.videoId)} is not registered (POST /api/videos first)`
  }
}

/**
 * Open a video and make it available to the routes, without the media-root
 * check: for videos the operator names at start-up.
 *
 * @since 0.1.0
 */
export const openVideo = (input: RallyCache.OpenVideoInput) =>
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
 */
export const registerVideo = (input: RegisterVideo) =>
  Effect.gen(function*() {
    const config = yield* ServerConfig
    const path = yield* MediaRoot.resolve(config.mediaRoot, input.path)
    return yield* openVideo({ path, rallies: input.rallies, id: input.id, mode: input.mode })
  })

const openedJson = (opened: RallyCache.OpenedVideo) => ({
  id: opened.source.id,
  mode: opened.mode,
  duration: opened.info.duration,
  rallies: opened.rallies.map((rally) => ({ index: rally.index, start: rally.start, end: rally.end }))
})

/**
 * Serve one rally's clip: `ETag` from the cache key, `If-None-Match`,
 * single `Range`s, `If-Range`. The clip is leased for the request's scope,
 * which lasts until the last byte is written, so eviction cannot remove it
 * mid-response.
 */
const serveClip = Effect.gen(function*() {
  const { id, n } = yield* HttpRouter.schemaPathParams(RallyParams)
  const request = yield* HttpServerRequest.HttpServerRequest
  const cache = yield* RallyCache.RallyCache
  const config = yield* ServerConfig
  const fs = yield* FileSystem.FileSystem
  yield* knownVideo(id)

  const status = yield* cache.status(id)
  const state = status.rallies[n]
  if (state === undefined) {
    return yield* Effect.fail(new RallyNotFoundError(id, n, status.rallies.length))
  }
  const etag = `"${state.key}"`
  const common = { "accept-ranges": "bytes", etag, "cache-control": "no-cache" }
  if (Conditional.noneMatch(request.headers["if-none-match"], etag)) {
    yield* countClip(304, "none")
    return HttpServerResponse.empty({ status: 304, headers: common })
  }

  const clip = yield* cache.leaseClip(id, n).pipe(
    Effect.timeoutFail({
      duration: config.clipTimeout,
      onTimeout: () => new ClipTimeout({ videoId: id, index: n, timeout: config.clipTimeout })
    }),
    Effect.tapErrorTag("ClipTimeout", () => countClip(504, "miss"))
  )
  const size = Number((yield* fs.stat(clip.path)).size)
  const outcome = clip.cached ? "hit" : "miss"
  const headers = { ...common, "x-cache": outcome }
  const rangeHeader = Conditional.rangeApplies(request.headers["if-range"], etag) ? request.headers["range"] : undefined
  const decision = Range.decide(rangeHeader, size)
  // The clip's bytes as an Effect stream rather than HttpServerResponse.file:
  // @effect/platform-node 0.108 passes an exclusive end to
  // fs.createReadStream, whose `end` is inclusive, so a bounded range would
  // read one byte more than its Content-Length.
  const body = (start: number, length: number) =>
    fs.stream(clip.path, { offset: start, bytesToRead: length, chunkSize: FileSystem.KiB(64) })
  switch (decision._tag) {
    case "Unsatisfiable":
      yield* countClip(416, outcome)
      return HttpServerResponse.empty({
        status: 416,
        headers: { ...common, "content-range": Range.unsatisfiedRange(size), "content-length": "0" }
      })
    case "Partial": {
      yield* countClip(206, outcome)
      const length = decision.end - decision.start + 1
      return HttpServerResponse.stream(body(decision.start, length), {
        status: 206,
        contentType: "video/mp4",
        contentLength: length,
        headers: { ...headers, "content-range": Range.contentRange(decision.start, decision.end, size) }
      })
    }
    case "Full": {
      yield* countClip(200, outcome)
      return HttpServerResponse.stream(body(0, size), { contentType: "video/mp4", contentLength: size, headers })
    }
  }
})

class RallyNotFoundError extends Data.TaggedError("RallyNotFound")<{ readonly videoId: string; readonly index: number; readonly count: number }> {
  constructor(videoId: string, index: number, count: number) {
    super({ videoId, index, count })
  }
  override get message(): string {
    return `video ${JSON.stringify(this.videoId)} has no rally ${this.index} (valid indexes are 0 to ${this.count - 1})`
  }
}

const videoStatus = Effect.gen(function*() {
  const { id } = yield* HttpRouter.schemaPathParams(VideoParams)
  const cache = yield* RallyCache.RallyCache
  const video = yield* knownVideo(id)
  const status = yield* cache.status(id)
  const stats = yield* cache.stats
  const queued = stats.queue.queued
  return yield* HttpServerResponse.json({
    videoId: status.videoId,
    current: status.current,
    rallies: video.rallies.map((rally) => rallyView(rally, status.rallies[rally.index])),
    queue: {
      high: queued.high.length,
      normal: queued.normal.length,
      low: queued.low.length,
      running: stats.queue.running.length
    },
    stats: {
      hits: stats.metrics.hits,
      misses: stats.metrics.misses,
      hitRate: stats.metrics.hitRate,
      exports: stats.metrics.exports,
      exportFailures: stats.metrics.exportFailures,
      cacheBytes: stats.usage.bytes,
      cacheEntries: stats.usage.entries
    }
  })
})

const events = Effect.gen(function*() {
  const cache = yield* RallyCache.RallyCache
  const shuttingDown = yield* ShuttingDown
  const encoder = new TextEncoder()
  const hub = yield* Effect.serviceOption(CacheEvent.CacheEvents)
  // Subscribe before the first byte goes out: a client that has read the
  // `retry` line misses no event that happens after it.
  const subscribed = Option.match(hub, {
    onNone: () => Effect.succeed(cache.events),
    onSome: (events) => events.subscribe
  })
  // A comment now and then keeps proxies and browsers from closing an idle stream.
  const keepAlive = Stream.tick(Duration.seconds(15)).pipe(Stream.drop(1), Stream.map(() => ": keep-alive\n\n"))
  const body = Stream.unwrapScoped(Effect.map(subscribed, (events) =>
    Stream.make("retry: 2000\n\n").pipe(
      Stream.concat(
        Stream.merge(events.pipe(Stream.map((event) => `data: ${JSON.stringify(publicEvent(event))}\n\n`)), keepAlive)
      )
    ))).pipe(
      Stream.interruptWhen(Deferred.await(shuttingDown)),
      Stream.map((text) => encoder.encode(text))
    )
  return HttpServerResponse.stream(body, {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
  })
})

/**
 * All routes. Needs `RallyCache`, the server's settings and services, and a
 * scope per request (the HTTP server gives one).
 *
 * @since 0.1.0
 */
export const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/api/videos",
    Effect.gen(function*() {
      const input = yield* HttpServerRequest.schemaBodyJson(RegisterVideo)
      const opened = yield* registerVideo(input)
      return yield* HttpServerResponse.json(openedJson(opened), { status: 201 })
    }).pipe(handleErrors)
  ),
  HttpRouter.get("/api/videos/:id/rallies/:n/clip", handleErrors(serveClip)),
  HttpRouter.post(
    "/api/videos/:id/navigate",
    Effect.gen(function*() {
      const { id } = yield* HttpRouter.schemaPathParams(VideoParams)
      const { index } = yield* HttpServerRequest.schemaBodyJson(Navigate)
      yield* knownVideo(id)
      yield* Effect.flatMap(RallyCache.RallyCache, (cache) => cache.navigate(id, index))
      return yield* HttpServerResponse.json({ videoId: id, current: index })
    }).pipe(handleErrors)
  ),
  HttpRouter.get("/api/videos/:id/status", handleErrors(videoStatus)),
  HttpRouter.get("/api/events", events),
  HttpRouter.get(
    "/metrics",
    Effect.flatMap(Prometheus, (prometheus) => prometheus.scrape).pipe(
      Effect.map((text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    )
  ),
  HttpRouter.get(
    "/",
    Effect.map(PlayerAssets, (assets) => HttpServerResponse.html(assets.html))
  ),
  HttpRouter.get(
    "/player.js",
    Effect.map(PlayerAssets, (assets) =>
      HttpServerResponse.text(assets.script, {
        contentType: "text/javascript; charset=utf-8",
        headers: { "cache-control": "no-cache" }
      }))
  )
)

/**
 * Serve `router` on the `HttpServer` in context. On shutdown, the event
 * streams end first; the server then waits for in-flight responses (up to
 * `shutdownGrace` when a `NodeServer` is given) before the layers below it
 * (the cache) are released.
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<
  never,
  never,
  | HttpServer.HttpServer
  | RallyCache.RallyCache
  | ServerConfig
  | Videos
  | PlayerAssets
  | Prometheus
  | FileSystem.FileSystem
  | Path.Path
  | HttpPlatform.HttpPlatform
> = Layer.scopedDiscard(
  Effect.gen(function*() {
    const shuttingDown = yield* Deferred.make<void>()
    const config = yield* ServerConfig
    const node = yield* Effect.serviceOption(NodeServer)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Effect.logInfo("shutting down: finishing in-flight responses")
        yield* Deferred.succeed(shuttingDown, undefined)
        if (Option.isSome(node)) {
          const server = node.value
          // Closing the server waits for every open response; past the grace
          // period the remaining connections are cut.
          setTimeout(() => server.closeAllConnections(), Duration.toMillis(config.shutdownGrace)).unref()
        }
      })
    )
    yield* HttpServer.serveEffect(router.pipe(HttpRouter.provideService(ShuttingDown, shuttingDown)))
  })
)
