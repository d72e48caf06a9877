/**
 * The `videos` group of `ViewerApi`: list, register, read, close, navigate
 * and status, over the registry (`Videos`), the `RallyCache` and its
 * `CacheConfig` (the preload window the status reports).
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, Path } from "@effect/platform"
import type { Domain } from "@rallycache/core"
import { Config, RallyCache } from "@rallycache/core"
import { Effect } from "effect"
import type { StatusReply, VideoReply, VideoSummary } from "./Api.js"
import { mapErrors } from "./internal/errors.js"
import { ViewerApi } from "./ViewerApi.js"
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

const summary = (path: Path.Path, opened: RallyCache.OpenedVideo): VideoSummary => ({
  id: opened.source.id,
  title: path.basename(opened.source.path),
  duration: opened.info.duration,
  rallyCount: opened.rallies.length,
  mode: opened.mode
})

const videoReply = (path: Path.Path, opened: RallyCache.OpenedVideo): VideoReply => ({
  ...summary(path, opened),
  rallies: opened.rallies.map((rally) => ({ index: rally.index, start: rally.start, end: rally.end }))
})

const videoStatus = (id: string) =>
  Effect.gen(function*() {
    const cache = yield* RallyCache.RallyCache
    const video = yield* Videos.known(id)
    const status = yield* cache.status(id)
    const stats = yield* cache.stats
    const config = yield* Config.CacheConfig
    const queued = stats.queue.queued
    const reply: StatusReply = {
      videoId: status.videoId,
      current: status.current,
      preloadAhead: config.preloadAhead,
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
    return reply
  })

/**
 * The handlers of the `videos` group.
 *
 * @since 0.1.0
 * @category handlers
 */
export const layer = HttpApiBuilder.group(ViewerApi, "videos", (handlers) =>
  Effect.gen(function*() {
    const path = yield* Path.Path
    return handlers
      .handle("list", () => Effect.map(Videos.all, (videos) => videos.map((video) => summary(path, video))))
      .handle("register", ({ payload }) =>
        mapErrors(Videos.registerVideo(payload)).pipe(Effect.map((opened) => videoReply(path, opened))))
      .handle("get", ({ path: { id } }) =>
        mapErrors(Videos.known(id)).pipe(Effect.map((opened) => videoReply(path, opened))))
      .handle("close", ({ path: { id } }) => mapErrors(Videos.closeVideo(id)))
      .handle("navigate", ({ path: { id }, payload: { index } }) =>
        mapErrors(
          Effect.gen(function*() {
            yield* Videos.known(id)
            const cache = yield* RallyCache.RallyCache
            yield* cache.navigate(id, index)
            return { videoId: id, current: index }
          })
        ))
      .handle("status", ({ path: { id } }) => mapErrors(videoStatus(id)))
  }))
