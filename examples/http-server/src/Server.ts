/**
 * The rallycache HTTP service: a clip API, Server-Sent Events, Prometheus
 * metrics and a player page, as one `HttpRouter` over the `RallyCache`
 * service. `layer` serves it on whatever `HttpServer` you provide, so the
 * same routes run on `NodeHttpServer` in `main.ts` and in the tests.
 *
 * The routes' jobs live in their own modules: `Clips` (range serving),
 * `Videos` (the registry of videos), `Events` (Server-Sent Events), `Api`
 * (shapes and errors).
 *
 * @since 0.1.0
 */
import type { FileSystem, HttpPlatform, Path } from "@effect/platform"
import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
import type { Domain } from "@rallycache/core"
import { RallyCache } from "@rallycache/core"
import { Deferred, Duration, Effect, Layer, Option, type Schema } from "effect"
import { bodyJson, handleErrors, Navigate, params, RegisterVideo, type StatusReply, VideoParams, type VideoReply } from "./Api.js"
import * as Clips from "./Clips.js"
import * as Events from "./Events.js"
import { PlayerAssets } from "./Player.js"
import { Prometheus } from "./Prometheus.js"
import { NodeServer, ServerConfig } from "./ServerConfig.js"
import * as Videos from "./Videos.js"

/** Rally states flattened for JSON readers (the page, curl, scripts). */
const rallyReply = (rally: Domain.Rally, state: RallyCache.RallyState | undefined): StatusReply["rallies"][number] => {
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

const videoReply = (opened: RallyCache.OpenedVideo): VideoReply => ({
  id: opened.source.id,
  mode: opened.mode,
  duration: opened.info.duration,
  rallies: opened.rallies.map((rally) => ({ index: rally.index, start: rally.start, end: rally.end }))
})

const pathParams = <A, I>(schema: Schema.Schema<A, I>) =>
  Effect.flatMap(HttpRouter.params, (values) => params(schema, values))

const videoStatus = Effect.gen(function*() {
  const { id } = yield* pathParams(VideoParams)
  const cache = yield* RallyCache.RallyCache
  const video = yield* Videos.known(id)
  const status = yield* cache.status(id)
  const stats = yield* cache.stats
  const queued = stats.queue.queued
  const reply: StatusReply = {
    videoId: status.videoId,
    current: status.current,
    rallies: video.rallies.map((rally) => rallyReply(rally, status.rallies[rally.index])),
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
  }
  return yield* HttpServerResponse.json(reply)
})

/**
 * All routes. Needs `RallyCache`, the server's settings and services, and a
 * scope per request (the HTTP server gives one).
 *
 * @since 0.1.0
 * @category routes
 */
export const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/api/videos",
    Effect.gen(function*() {
      const input = yield* bodyJson(RegisterVideo)
      const opened = yield* Videos.registerVideo(input)
      return yield* HttpServerResponse.json(videoReply(opened), { status: 201 })
    }).pipe(handleErrors)
  ),
  HttpRouter.get("/api/videos/:id/rallies/:n/clip", handleErrors(Clips.route)),
  HttpRouter.post(
    "/api/videos/:id/navigate",
    Effect.gen(function*() {
      const { id } = yield* pathParams(VideoParams)
      const { index } = yield* bodyJson(Navigate)
      yield* Videos.known(id)
      yield* Effect.flatMap(RallyCache.RallyCache, (cache) => cache.navigate(id, index))
      return yield* HttpServerResponse.json({ videoId: id, current: index })
    }).pipe(handleErrors)
  ),
  HttpRouter.get("/api/videos/:id/status", handleErrors(videoStatus)),
  HttpRouter.get("/api/events", Events.route),
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
 * @category layers
 */
export const layer: Layer.Layer<
  never,
  never,
  | HttpServer.HttpServer
  | RallyCache.RallyCache
  | ServerConfig
  | Videos.Videos
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
    yield* HttpServer.serveEffect(router.pipe(HttpRouter.provideService(Events.ShuttingDown, shuttingDown)))
  })
)
