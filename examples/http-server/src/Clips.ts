/**
 * `GET /api/videos/:id/rallies/:n/clip`: one rally's clip through the
 * cache's hit path (`leaseClip`), with `ETag` from the cache key,
 * `If-None-Match`, single `Range`s and `If-Range`. The clip is leased for
 * the request's scope, which lasts until the last byte is written, so
 * eviction cannot remove it mid-response.
 *
 * @since 0.1.0
 */
import { FileSystem, HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { RallyCache } from "@rallycache/core"
import { Effect, Metric } from "effect"
import { ClipTimeout, params, RallyParams } from "./Api.js"
import * as Conditional from "./internal/conditional.js"
import * as Range from "./internal/range.js"
import { ServerConfig } from "./ServerConfig.js"

const clipResponses = Metric.counter("rallycache_http_clip_responses", {
  description: "Clip responses by HTTP status and cache outcome",
  incremental: true
})

const countClip = (status: number, cache: "hit" | "miss" | "none") =>
  Metric.update(clipResponses.pipe(Metric.tagged("status", String(status)), Metric.tagged("cache", cache)), 1)

/**
 * Register the clip response counter at zero for the usual answers, so
 * `/metrics` lists it before any traffic.
 *
 * @since 0.1.0
 * @category metrics
 */
export const registerMetrics: Effect.Effect<void> = Effect.forEach(
  [[200, "hit"], [200, "miss"], [206, "hit"], [206, "miss"], [304, "none"]] as const,
  ([status, cache]) =>
    Metric.update(clipResponses.pipe(Metric.tagged("status", String(status)), Metric.tagged("cache", cache)), 0),
  { discard: true }
)

/**
 * The content type of a clip, by its container.
 *
 * @since 0.1.0
 * @category utils
 */
export const contentType = (path: string): string =>
  path.endsWith(".mkv") ? "video/x-matroska" : path.endsWith(".mov") ? "video/quicktime" : path.endsWith(".webm") ? "video/webm" : "video/mp4"

/**
 * The clip route.
 *
 * @since 0.1.0
 * @category routes
 */
export const route = Effect.gen(function*() {
  const { id, n } = yield* Effect.flatMap(HttpRouter.params, (values) => params(RallyParams, values))
  const request = yield* HttpServerRequest.HttpServerRequest
  const cache = yield* RallyCache.RallyCache
  const config = yield* ServerConfig
  const fs = yield* FileSystem.FileSystem

  const clip = yield* cache.leaseClip(id, n).pipe(
    Effect.timeoutFail({
      duration: config.clipTimeout,
      onTimeout: () => new ClipTimeout({ videoId: id, index: n, timeout: config.clipTimeout })
    }),
    Effect.tapErrorTag("ClipTimeout", () => countClip(504, "miss"))
  )
  const etag = `"${clip.key}"`
  const common = { "accept-ranges": "bytes", etag, "cache-control": "no-cache" }
  if (Conditional.noneMatch(request.headers["if-none-match"], etag)) {
    yield* countClip(304, "none")
    return HttpServerResponse.empty({ status: 304, headers: common })
  }
  const size = clip.sizeBytes
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
  const type = contentType(clip.path)
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
        contentType: type,
        contentLength: length,
        headers: { ...headers, "content-range": Range.contentRange(decision.start, decision.end, size) }
      })
    }
    case "Full": {
      yield* countClip(200, outcome)
      return HttpServerResponse.stream(body(0, size), { contentType: type, contentLength: size, headers })
    }
  }
})
