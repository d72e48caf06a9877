/**
 * What the cache does, as a stream of events: for UIs, Server-Sent Events,
 * the CLI's progress display and logs.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, PubSub, Schema, Stream } from "effect"
import type { Scope } from "effect"
import { CacheKey, Clip, EvictionReason, ExportMode, Priority, VideoId } from "./Domain.js"

const Job = {
  key: CacheKey,
  videoId: VideoId,
  rallyIndex: Schema.Int
}

/**
 * @since 0.1.0
 * @category models
 */
export class JobQueued extends Schema.TaggedClass<JobQueued>()("JobQueued", { ...Job, priority: Priority }) {}
/**
 * @since 0.1.0
 * @category models
 */
export class JobReprioritized extends Schema.TaggedClass<JobReprioritized>()("JobReprioritized", {
  ...Job,
  priority: Priority
}) {}
/**
 * @since 0.1.0
 * @category models
 */
export class JobStarted extends Schema.TaggedClass<JobStarted>()("JobStarted", {
  ...Job,
  priority: Priority,
  attempt: Schema.Int
}) {}
/**
 * @since 0.1.0
 * @category models
 */
export class JobProgress extends Schema.TaggedClass<JobProgress>()("JobProgress", {
  ...Job,
  ratio: Schema.Number
}) {}
/**
 * @since 0.1.0
 * @category models
 */
export class JobCancelled extends Schema.TaggedClass<JobCancelled>()("JobCancelled", {
  ...Job,
  /**
   * `preempted`: interrupted by preemption (`interrupt` mode); the job goes
   * back to the front of its queue and runs again later. A job paused by
   * preemption (`suspend` mode) publishes no event.
   */
  reason: Schema.Literal("cancelled", "preempted", "shutdown")
}) {}
/**
 * @since 0.1.0
 * @category models
 */
export class ClipReady extends Schema.TaggedClass<ClipReady>()("ClipReady", { clip: Clip, exportMs: Schema.Number }) {}
/**
 * The exporter could not cut this clip in the requested mode and cut it in
 * `to` instead (e.g. an `exact` clip whose streams do not fit mp4 is cut
 * `accurate`). Published just before its `ClipReady`.
 *
 * @since 0.1.0
 * @category models
 */
export class ExportFellBack extends Schema.TaggedClass<ExportFellBack>()("ExportFellBack", {
  ...Job,
  from: ExportMode,
  to: ExportMode,
  reason: Schema.String
}) {}

/**
 * The in-process mp4/mov cutter refused this copy or exact clip (a source
 * layout it does not model, or a clip that failed its check), so ffmpeg cut
 * it. Published just before its `ClipReady`.
 *
 * @since 0.2.0
 * @category models
 */
export class InProcessCutRefused extends Schema.TaggedClass<InProcessCutRefused>()("InProcessCutRefused", {
  ...Job,
  mode: ExportMode,
  reason: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category models
 */
export class JobFailed extends Schema.TaggedClass<JobFailed>()("JobFailed", {
  ...Job,
  reason: Schema.String,
  willRetry: Schema.Boolean
}) {}
/**
 * @since 0.1.0
 * @category models
 */
export class Evicted extends Schema.TaggedClass<Evicted>()("Evicted", {
  key: CacheKey,
  videoId: VideoId,
  rallyIndex: Schema.Int,
  reason: EvictionReason
}) {}
/**
 * @since 0.1.0
 * @category models
 */
export class EntryInvalid extends Schema.TaggedClass<EntryInvalid>()("EntryInvalid", {
  key: CacheKey,
  reason: Schema.String
}) {}

/**
 * @since 0.1.0
 * @category schemas
 */
export const CacheEvent = Schema.Union(
  JobQueued,
  JobReprioritized,
  JobStarted,
  JobProgress,
  JobCancelled,
  ClipReady,
  ExportFellBack,
  InProcessCutRefused,
  JobFailed,
  Evicted,
  EntryInvalid
)
/**
 * @since 0.1.0
 * @category models
 */
export type CacheEvent = typeof CacheEvent.Type

/**
 * @since 0.1.0
 * @category models
 */
export interface CacheEventsShape {
  readonly publish: (event: CacheEvent) => Effect.Effect<void>
  /** Events from the moment of subscription, while the scope is open. */
  readonly subscribe: Effect.Effect<Stream.Stream<CacheEvent>, never, Scope.Scope>
  /** Events from the moment the stream is run. */
  readonly stream: Stream.Stream<CacheEvent>
}

/**
 * One hub of events per cache instance.
 *
 * @since 0.1.0
 * @category tags
 */
export class CacheEvents extends Context.Tag("@rallycache/core/CacheEvents")<CacheEvents, CacheEventsShape>() {
  /**
   * A sliding hub: a subscriber that falls more than `capacity` events
   * behind loses the oldest ones instead of holding memory or slowing the
   * cache down.
   */
  static readonly layer = (capacity = 4096): Layer.Layer<CacheEvents> =>
    Layer.scoped(
      CacheEvents,
      Effect.gen(function*() {
        const hub = yield* Effect.acquireRelease(PubSub.sliding<CacheEvent>(capacity), PubSub.shutdown)
        return {
          publish: (event) => Effect.asVoid(PubSub.publish(hub, event)),
          subscribe: Effect.map(PubSub.subscribe(hub), (queue) => Stream.fromQueue(queue)),
          stream: Stream.fromPubSub(hub)
        }
      })
    )
}
