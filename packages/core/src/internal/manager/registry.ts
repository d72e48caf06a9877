/**
 * The one registry of job states: the export queue, and beside it only what
 * the queue does not keep (why a clip last failed, who waits for a clip, an
 * export's progress). Where a job is (queued, running, paused, retrying) and
 * at which priority is always read from the queue itself.
 *
 * The queue's events become cache events and metrics here, outside the
 * actor: routing them through the bounded mailbox could deadlock an actor
 * that is itself waiting on the queue.
 *
 * @internal
 */
import { Effect, Predicate, type Scope } from "effect"
import { JobCancelled, JobFailed, JobQueued, JobReprioritized, JobStarted } from "../../CacheEvent.js"
import type { CacheEventsShape } from "../../CacheEvent.js"
import type { RallyCacheConfig } from "../../Config.js"
import { retrySchedule } from "../../Config.js"
import type { CacheEntry, CacheKey } from "../../Domain.js"
import type { ExportError } from "../../Errors.js"
import * as ExportQueue from "../../ExportQueue.js"
import type { MetricsShape } from "../../Metrics.js"
import type { RallyState } from "../../RallyCache.js"

/** @internal */
export interface Registry {
  readonly queue: ExportQueue.ExportQueue<CacheEntry, ExportError>
  /** Why the last export of a key failed, until it is asked for again. */
  readonly failures: Map<CacheKey, string>
  /** Progress (0 to 1) of running exports. */
  readonly progress: Map<CacheKey, number>
  /** `getClip` callers waiting per key: their jobs are never cancelled or lowered by navigation. */
  readonly waiting: Map<CacheKey, number>
}

/** @internal */
export const isDemanded = (registry: Registry, key: CacheKey): boolean => (registry.waiting.get(key) ?? 0) > 0

/** Count a caller waiting for `key` until `effect` ends. @internal */
export const demanding = <A, E>(registry: Registry, key: CacheKey, effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
  Effect.ensuring(
    effect,
    Effect.sync(() => {
      const n = registry.waiting.get(key) ?? 0
      if (n <= 1) registry.waiting.delete(key)
      else registry.waiting.set(key, n - 1)
    })
  )

/** @internal */
export const addDemand = (registry: Registry, key: CacheKey): void => {
  registry.waiting.set(key, (registry.waiting.get(key) ?? 0) + 1)
}

/** The queue's state of `key` as a rally state, `undefined` when it holds no job. @internal */
export const rallyState = (registry: Registry, key: CacheKey): Effect.Effect<RallyState | undefined> =>
  Effect.map(registry.queue.state(key), (state): RallyState | undefined => {
    if (state === undefined) return undefined
    return state.phase === "running" || state.phase === "paused"
      ? { _tag: "Running", key, priority: state.priority, progress: registry.progress.get(key) ?? 0 }
      : { _tag: "Queued", key, priority: state.priority }
  })

/** Cancel the queued (not running) work of `keys` that no caller waits for. @internal */
export const cancelQueued = (registry: Registry, keys: Iterable<CacheKey>): Effect.Effect<void> =>
  Effect.forEach(
    keys,
    (key) =>
      isDemanded(registry, key) ? Effect.void : Effect.flatMap(registry.queue.state(key), (state) =>
        state?.phase === "queued" ? Effect.asVoid(registry.queue.cancel(key)) : Effect.void),
    { discard: true }
  )

const describeError = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && typeof error.message === "string" && error.message.length > 0
    ? error.message
    : String(error)

const failureReason = (error: unknown): string =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string"
    ? error._tag === "ExportFailed" && Predicate.hasProperty(error, "reason") && typeof error.reason === "string"
      ? error.reason
      : error._tag
    : "defect"

/** Build the queue and its registry. @internal */
export const make = (deps: {
  readonly config: RallyCacheConfig
  readonly events: CacheEventsShape
  readonly metrics: MetricsShape
  readonly preemption: "interrupt" | "suspend" | "off"
}): Effect.Effect<Registry, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { config, events, metrics } = deps
    const failures = new Map<CacheKey, string>()
    const progress = new Map<CacheKey, number>()
    const waiting = new Map<CacheKey, number>()

    const ended = (key: CacheKey): void => {
      waiting.delete(key)
      progress.delete(key)
    }

    const onEvent = (event: ExportQueue.QueueEvent): Effect.Effect<void> =>
      Effect.suspend(() => {
        const { key, rallyIndex, videoId } = event.job
        const job = { key, videoId, rallyIndex }
        switch (event._tag) {
          case "Queued": {
            failures.delete(key)
            return events.publish(new JobQueued({ ...job, priority: event.priority }))
          }
          case "Reprioritized":
            return events.publish(new JobReprioritized({ ...job, priority: event.priority }))
          case "Started": {
            progress.set(key, 0)
            return events.publish(new JobStarted({ ...job, priority: event.priority, attempt: event.attempt }))
          }
          case "Succeeded": {
            ended(key)
            failures.delete(key)
            return metrics.exportSucceeded(event.job.mode ?? config.mode, event.priority, event.millis)
          }
          case "Failed": {
            const reason = describeError(event.error)
            progress.delete(key)
            if (!event.willRetry) {
              ended(key)
              failures.set(key, reason)
            }
            return Effect.zipRight(
              metrics.exportFailed(failureReason(event.error), event.willRetry),
              events.publish(new JobFailed({ ...job, reason, willRetry: event.willRetry }))
            )
          }
          case "Cancelled": {
            if (event.reason === "preempted") progress.delete(key)
            else ended(key)
            return events.publish(new JobCancelled({ ...job, reason: event.reason }))
          }
        }
      }).pipe(Effect.zipRight(Effect.flatMap(queue.depth, metrics.queue)))

    const queue: ExportQueue.ExportQueue<CacheEntry, ExportError> = yield* ExportQueue.make<CacheEntry, ExportError>({
      concurrency: config.concurrency,
      preemption: deps.preemption,
      retry: retrySchedule(config),
      onEvent
    })
    return { queue, failures, progress, waiting }
  })
