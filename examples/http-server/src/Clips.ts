/**
 * `GET /api/videos/:id/rallies/:n/clip`: one rally's clip through the
 * cache's hit path (`leaseClip`), streamed from disk, with `ETag` from the
 * cache key, `If-None-Match`, `Range` (RFC 9110, see `internal/range`) and
 * `If-Range`. The clip is leased for the request's scope, which lasts until
 * the last byte is written, so eviction cannot remove it mid-response.
 *
 * @since 0.1.0
 */
import { FileSystem, HttpApiBuilder, HttpApiSchema, HttpServerResponse } from "@effect/platform"
import { Domain, RallyCache } from "@rallycache/core"
import { Duration, Effect, Metric } from "effect"
import { ClipTimeout, RangeNotSatisfiable } from "./ApiErrors.js"
import * as Conditional from "./internal/conditional.js"
import { mapErrors } from "./internal/errors.js"
import * as Range from "./internal/range.js"
import { ServerConfig } from "./ServerConfig.js"
import { ViewerApi } from "./ViewerApi.js"

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
export const contentType = (path: string): string => {
  const extension = path.slice(path.lastIndexOf(".") + 1)
  return Domain.containers.includes(extension as Domain.Container)
    ? Domain.containerMediaTypes[extension as Domain.Container]
    : Domain.containerMediaTypes.mp4
}

const rangeNotSatisfiable = HttpApiSchema.getStatusError(RangeNotSatisfiable)

/**
 * The `clips` group of `ViewerApi`.
 *
 * @since 0.1.0
 * @category handlers
 */
export const layer = HttpApiBuilder.group(ViewerApi, "clips", (handlers) =>
  handlers.handleRaw("clip", ({ headers, path: { id, n } }) =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const config = yield* ServerConfig
      const fs = yield* FileSystem.FileSystem

      const clip = yield* mapErrors(cache.leaseClip(id, n)).pipe(
        Effect.timeoutFail({
          duration: config.clipTimeout,
          onTimeout: () =>
            new ClipTimeout({
              message: `rally ${n} of video ${JSON.stringify(id)} was not exported within ${
                Duration.format(config.clipTimeout)
              } (it keeps exporting; retry shortly or raise RALLYCACHE_CLIP_TIMEOUT)`
            })
        }),
        Effect.tapErrorTag("ClipTimeout", () => countClip(504, "miss"))
      )
      const etag = `"${clip.key}"`
      const common = { "accept-ranges": "bytes", etag, "cache-control": "no-cache" }
      if (Conditional.noneMatch(headers["if-none-match"], etag)) {
        yield* countClip(304, "none")
        return HttpServerResponse.empty({ status: 304, headers: common })
      }
      const size = clip.sizeBytes
      const outcome = clip.cached ? "hit" : "miss"
      const withCache = { ...common, "x-cache": outcome }
      const rangeHeader = Conditional.rangeApplies(headers["if-range"], etag) ? headers.range : undefined
      const decision = Range.decide(rangeHeader, size)
      // The clip's bytes as an Effect stream rather than HttpServerResponse.file:
      // @effect/platform-node 0.108 passes an exclusive end to
      // fs.createReadStream, whose `end` is inclusive, so a bounded range would
      // read one byte more than its Content-Length.
      const body = (start: number, length: number) =>
        fs.stream(clip.path, { offset: start, bytesToRead: length, chunkSize: FileSystem.KiB(64) })
      const type = contentType(clip.path)
      switch (decision._tag) {
        case "Unsatisfiable": {
          yield* countClip(416, outcome)
          // Declared as RangeNotSatisfiable; answered here for its Content-Range.
          return HttpServerResponse.empty({
            status: rangeNotSatisfiable,
            headers: { ...common, "content-range": Range.unsatisfiedRange(size), "content-length": "0" }
          })
        }
        case "Partial": {
          yield* countClip(206, outcome)
          const length = decision.end - decision.start + 1
          return HttpServerResponse.stream(body(decision.start, length), {
            status: 206,
            contentType: type,
            contentLength: length,
            headers: { ...withCache, "content-range": Range.contentRange(decision.start, decision.end, size) }
          })
        }
        case "Full": {
          yield* countClip(200, outcome)
          return HttpServerResponse.stream(body(0, size), { contentType: type, contentLength: size, headers: withCache })
        }
      }
    })))
