/**
 * `RallyCache` (the client API of `@rallycache/core`) for a front end that
 * hosts no video: every call is a message to the video's entity, on
 * whichever runner owns its shard. Programs written against `RallyCache`
 * (the HTTP example, the CLI's library calls) run unchanged over it.
 *
 * Every message is safe to repeat (opening, navigating, fetching a clip,
 * invalidating, closing), so a message lost with a runner that died is sent
 * again until a runner answers, for up to `retryFor`.
 *
 * Differences from the in-process cache: `leaseClip` does not pin across
 * processes (the owner's engine pins the viewer's current clip); `stats`
 * describes no runner (zeros, ask a runner instead); `events` is empty.
 *
 * @since 0.1.0
 */
import { ClusterError, EntityId, Sharding } from "@effect/cluster"
import { Errors, RallyCache as Core } from "@rallycache/core"
import { Cause, Duration, Effect, Layer, Option, Schedule, Stream } from "effect"
import { spanAttributes, Video } from "./VideoEntity.js"

/**
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** How long a message is retried while no runner answers for its video. Default 60 seconds. */
  readonly retryFor?: Duration.DurationInput | undefined
  /** Put on the front's spans as `rallycache.front`. Default `"front"`. */
  readonly frontId?: string | undefined
}

const emptyStats: Core.Stats = {
  metrics: {
    hits: 0,
    misses: 0,
    hitRate: 0,
    exports: 0,
    exportFailures: 0,
    exportRetries: 0,
    exportMs: { count: 0, sum: 0, p50: 0, p99: 0, max: 0 },
    validations: { valid: 0, invalid: 0, successRate: 0 },
    queue: { high: 0, normal: 0, low: 0, running: 0 },
    cacheBytes: 0,
    cacheEntries: 0,
    evictions: { size: 0, age: 0, "per-video": 0, invalid: 0, manual: 0, "source-changed": 0 },
    heapUsedBytes: 0
  },
  usage: { bytes: 0, entries: 0 },
  queue: {
    queued: { high: [], normal: [], low: [] },
    running: [],
    retrying: [],
    completed: 0,
    failed: 0,
    cancelled: 0
  },
  videos: 0
}

/** The cluster's own failures, as opposed to the cache's typed errors (which are answers). */
type ClusterFailure = ClusterError.MailboxFull | ClusterError.AlreadyProcessingMessage | ClusterError.PersistenceError

const isClusterFailure = (error: unknown): error is ClusterFailure =>
  error instanceof ClusterError.MailboxFull || error instanceof ClusterError.AlreadyProcessingMessage ||
  error instanceof ClusterError.PersistenceError

/**
 * Builds the client over the `Sharding` of a client-only (or runner) node.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<Core.RallyCacheShape, never, Sharding.Sharding> =>
  Effect.gen(function*() {
    const clientFor = yield* Video.client
    const sharding = yield* Sharding.Sharding
    const front = options.frontId ?? "front"
    const budget = Duration.decode(options.retryFor ?? Duration.seconds(60))
    const retry = Schedule.spaced(Duration.millis(100)).pipe(Schedule.upTo(budget))

    // A runner dying mid-request surfaces as a defect or an interruption of
    // the reply: those, and the cluster's own failures, are retried; the
    // cache's typed errors are answers and go back to the caller.
    const send = <A, E>(
      message: { readonly _tag: string; readonly videoId: string; readonly index?: number | undefined },
      call: Effect.Effect<A, E>
    ): Effect.Effect<A, Exclude<E, Extract<E, ClusterFailure>>> =>
      call.pipe(
        Effect.sandbox,
        Effect.retry({
          schedule: retry,
          while: (cause) => Option.match(Cause.failureOption(cause), { onNone: () => true, onSome: isClusterFailure })
        }),
        Effect.unsandbox,
        Effect.catchIf((error: E): error is Extract<E, ClusterFailure> => isClusterFailure(error), Effect.die),
        Effect.withSpan(`rallycache.front.${message._tag}`, {
          kind: "client",
          attributes: {
            ...spanAttributes(message),
            "rallycache.front": front,
            // The front does not know the owner; the shard names it in the cluster's tables.
            "rallycache.shard": sharding.getShardId(EntityId.make(message.videoId), Video.getShardGroup(EntityId.make(message.videoId))).toString()
          }
        })
      )

    const cache: Core.RallyCacheShape = {
      openVideo: (input) =>
        Effect.suspend(() => {
          const videoId = input.id
          if (videoId === undefined) {
            return Effect.fail(
              new Errors.InvalidInput({
                field: "id",
                reason: "a cluster routes each video by its id, so openVideo needs one",
                fix: "pass id"
              })
            )
          }
          return send(
            { _tag: "OpenVideo", videoId },
            clientFor(videoId).OpenVideo({
              path: input.path,
              rallies: input.rallies,
              id: videoId,
              ...(input.mode === undefined ? {} : { mode: input.mode })
            })
          )
        }),
      navigate: (videoId, index) => send({ _tag: "Navigate", videoId, index }, clientFor(videoId).Navigate({ videoId, index })),
      getClip: (videoId, index) => send({ _tag: "GetClip", videoId, index }, clientFor(videoId).GetClip({ videoId, index })),
      leaseClip: (videoId, index) => send({ _tag: "GetClip", videoId, index }, clientFor(videoId).GetClip({ videoId, index })),
      preload: (videoId, opts) =>
        send(
          { _tag: "Preload", videoId },
          clientFor(videoId).Preload({
            videoId,
            ...(opts?.indexes === undefined ? {} : { indexes: opts.indexes }),
            ...(opts?.priority === undefined ? {} : { priority: opts.priority })
          })
        ),
      invalidate: (videoId, index) =>
        send({ _tag: "Invalidate", videoId, index }, clientFor(videoId).Invalidate({ videoId, index })),
      status: (videoId) => send({ _tag: "Status", videoId }, clientFor(videoId).Status({ videoId })),
      stats: Effect.succeed(emptyStats),
      close: (videoId) => send({ _tag: "Close", videoId }, clientFor(videoId).Close({ videoId })),
      events: Stream.empty
    }
    return cache
  })

/**
 * `RallyCache` over the cluster; needs the `Sharding` of a client-only node
 * (`ClusterRunner.layerClient`) or of a runner.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Core.RallyCache, never, Sharding.Sharding> =>
  Layer.effect(Core.RallyCache, make(options))
