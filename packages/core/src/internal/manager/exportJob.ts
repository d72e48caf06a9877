/**
 * The export job: reserve the key, export, commit, publish, clean up. The
 * queue runs it (perhaps several times: retries, preemption); the store's
 * key lock makes a second process wait or find the clip committed.
 *
 * @internal
 */
import { Clock, Effect, Exit, Option, type Tracer } from "effect"
import { ClipReady, ExportFellBack, InProcessCutRefused, JobProgress } from "../../CacheEvent.js"
import type { CacheEventsShape } from "../../CacheEvent.js"
import type { CacheStoreShape, Reservation } from "../../CacheStore.js"
import type { CleanupShape } from "../../Cleanup.js"
import type { RallyCacheConfig } from "../../Config.js"
import type { CacheEntry, Priority, VideoId } from "../../Domain.js"
import type { ExportError } from "../../Errors.js"
import type { ExporterShape } from "../../Exporter.js"
import type { ExportJob, JobContext } from "../../ExportQueue.js"
import type { MetricsShape } from "../../Metrics.js"
import type { Registry } from "./registry.js"
import { makeClip, type VideoView } from "./view.js"

/** @internal */
export interface Deps {
  readonly config: RallyCacheConfig
  readonly store: CacheStoreShape
  readonly exporter: ExporterShape
  readonly events: CacheEventsShape
  readonly cleanup: CleanupShape
  readonly metrics: MetricsShape
  readonly registry: Registry
}

/** The export job of rally `index` of `view`, for the queue. @internal */
export const make = (deps: Deps) => {
  const { config, events, exporter, registry, store } = deps

  // Clean up at once when a new clip pushes the cache over a limit, instead
  // of waiting for the next periodic run.
  const afterCommit = (videoId: VideoId) =>
    Effect.gen(function*() {
      const usage = yield* store.usage
      let over = usage.bytes > config.maxBytes
      if (!over && usage.entries > config.maxEntriesPerVideo) {
        const entries = yield* store.list
        let count = 0
        for (const entry of entries) if (entry.videoId === videoId) count++
        over = count > config.maxEntriesPerVideo
      }
      if (over) yield* deps.cleanup.trigger
    }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("rallycache: cleanup after a commit failed", cause)))

  /** The priority the queue holds for the job now (it may have been raised since it was queued). */
  const priorityNow = (view: VideoView, index: number): Effect.Effect<Priority> =>
    Effect.map(registry.queue.state(view.keys[index]!), (state) => state?.priority ?? "high")

  const run = (view: VideoView, index: number, context: JobContext): Effect.Effect<CacheEntry, ExportError> => {
    const key = view.keys[index]!
    const rally = view.rallies[index]!
    let committed = false
    const use = (reservation: Reservation) =>
      Effect.gen(function*() {
        const startedAt = yield* Clock.currentTimeMillis
        const result = yield* exporter.export({
          source: view.source,
          rally,
          mode: view.mode,
          priority: yield* priorityNow(view, index),
          tempPath: reservation.tempPath,
          outputPath: reservation.finalPath,
          paused: context.paused,
          confirmPaused: context.confirmPaused,
          onProgress: (ratio) =>
            Effect.suspend(() => {
              if (registry.progress.has(key)) registry.progress.set(key, ratio)
              return events.publish(new JobProgress({ key, videoId: view.source.id, rallyIndex: index, ratio }))
            })
        })
        const entry = yield* store.commit(reservation, {
          videoId: view.source.id,
          rallyIndex: index,
          mode: view.mode,
          clipStart: result.clipStart,
          clipEnd: result.clipEnd,
          firstFrame: result.firstFrame,
          leadIn: result.leadIn,
          container: result.container,
          sizeBytes: result.sizeBytes,
          priority: yield* priorityNow(view, index)
        })
        committed = true
        if (result.fellBack !== undefined) {
          yield* deps.metrics.exportFellBack(view.mode, result.fellBack.to)
          yield* events.publish(
            new ExportFellBack({
              key,
              videoId: view.source.id,
              rallyIndex: index,
              from: view.mode,
              to: result.fellBack.to,
              reason: result.fellBack.reason
            })
          )
        }
        if (deps.metrics.exportCutBy !== undefined) {
          yield* deps.metrics.exportCutBy(result.cutBy ?? "ffmpeg", result.inProcessRefused !== undefined)
        }
        if (result.inProcessRefused !== undefined) {
          yield* events.publish(
            new InProcessCutRefused({
              key,
              videoId: view.source.id,
              rallyIndex: index,
              mode: result.fellBack?.to ?? view.mode,
              reason: result.inProcessRefused
            })
          )
        }
        const exportMs = (yield* Clock.currentTimeMillis) - startedAt
        yield* events.publish(
          new ClipReady({ clip: makeClip(view, index, entry, store.pathOf(entry.key), false), exportMs })
        )
        yield* afterCommit(view.source.id)
        return entry
      })
    return Effect.acquireUseRelease(
      // The acquire of acquireUseRelease is uninterruptible, but reserve may
      // wait for another process's export: cancelling must not wait for it.
      // Both stores only take the lock in an uninterruptible step, so an
      // interrupted wait leaks no lock.
      Effect.interruptible(store.reserve(key)),
      (reserved) => reserved._tag === "Cached" ? Effect.succeed(reserved.entry) : use(reserved.reservation),
      (reserved, exit) =>
        reserved._tag === "Reserved" && Exit.isFailure(exit) && !committed
          ? store.abort(reserved.reservation)
          : Effect.void
    )
  }

  return (
    view: VideoView,
    index: number,
    priority: Priority,
    parent: Option.Option<Tracer.AnySpan>
  ): ExportJob<CacheEntry, ExportError> => ({
    key: view.keys[index]!,
    videoId: view.source.id,
    rallyIndex: index,
    priority,
    mode: view.mode,
    run: (context) =>
      run(view, index, context).pipe(
        Effect.withSpan("rallycache.export", {
          attributes: {
            "rallycache.video": view.source.id,
            "rallycache.rally": index,
            "rallycache.priority": priority,
            "rallycache.mode": view.mode,
            "rallycache.runner": config.runnerId,
            "rallycache.key": view.keys[index]!,
            "rallycache.attempt": context.attempt
          },
          ...(Option.isSome(parent) ? { parent: parent.value } : {})
        })
      )
  })
}
