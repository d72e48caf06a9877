/**
 * `RallyCache` (the client API of `@rallycache/core`) for a front end that
 * hosts no video: every call is a message to the video's entity, on
 * whichever runner owns its shard. Programs written against `RallyCache`
 * (the HTTP example, the CLI's library calls) run unchanged over it.
 *
 * The messages a viewer waits on (`openVideo`, `navigate`, `getClip`) are
 * persisted: if the runner dies before it answers, the runner that takes the
 * video over answers instead. Every call waits at most `retryFor`, then
 * fails with `ClusterUnavailable`; the cache's typed errors are answers and
 * come back as they are; a defect is never retried.
 *
 * Differences from the in-process cache: `leaseClip` does not pin across
 * processes (the owner's engine pins the viewer's current clip); `stats`
 * describes no runner (zeros, ask a runner instead); `events` is empty.
 *
 * @since 0.1.0
 */
import { ClusterError, EntityId, Sharding } from "@effect/cluster"
import { CacheStore, Errors, RallyCache as Core } from "@rallycache/core"
import { Context, Duration, Effect, Layer, Option, Schedule, Schema, Stream } from "effect"
import { spanAttributes, Video } from "./VideoEntity.js"

/**
 * @since 0.1.0
 * @category options
 */
export interface Options {
  /** How long a call waits for a runner to answer before it fails with `ClusterUnavailable`. Default 60 seconds. */
  readonly retryFor?: Duration.DurationInput | undefined
  /** Put on the front's spans as `rallycache.front`. Default `"front"`. */
  readonly frontId?: string | undefined
  /**
   * The store the runners commit clips to, on a folder of this node's own:
   * each clip a runner answers with is fetched through it, and the answer
   * names this node's copy. Without it, the answer names the runner's file.
   */
  readonly clips?: CacheStore.CacheStoreShape | undefined
}

/**
 * No runner answered a call within `retryFor`: none is up, none can reach
 * Postgres, or the cluster kept refusing the message.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClusterUnavailable extends Schema.TaggedError<ClusterUnavailable>()("ClusterUnavailable", {
  request: Schema.String,
  videoId: Schema.String,
  waitedMs: Schema.Number,
  reason: Schema.String
}) {
  override get message(): string {
    return `no runner answered ${this.request} for video ${JSON.stringify(this.videoId)} within ${this.waitedMs} ms (${this.reason}): start a runner, or check that the runners reach Postgres, then try again`
  }
}

/** A method of the core API whose calls may also fail with `ClusterUnavailable`. */
type Widened<F> = F extends (...args: infer Args) => Effect.Effect<infer A, infer E, infer R>
  ? (...args: Args) => Effect.Effect<A, E | ClusterUnavailable, R>
  : F

/**
 * The core API over the cluster, each call able to fail with `ClusterUnavailable`.
 *
 * @since 0.1.0
 * @category models
 */
export type ClusterRallyCacheShape = { readonly [K in keyof Core.RallyCacheShape]: Widened<Core.RallyCacheShape[K]> }

/**
 * @since 0.1.0
 * @category tags
 */
export class ClusterRallyCache extends Context.Tag("@rallycache/cluster/ClusterRallyCache")<
  ClusterRallyCache,
  ClusterRallyCacheShape
>() {}

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
export const make = (options: Options = {}): Effect.Effect<ClusterRallyCacheShape, never, Sharding.Sharding> =>
  Effect.gen(function*() {
    const clientFor = yield* Video.client
    const sharding = yield* Sharding.Sharding
    const front = options.frontId ?? "front"
    const budget = Duration.decode(options.retryFor ?? Duration.seconds(60))

    // The cluster resends a message while its shard has no runner, and a
    // persisted one is answered from storage by whichever runner takes it:
    // the front only bounds the wait. Its own typed failures (a full
    // mailbox, Postgres unreachable) are tried again within the bound; the
    // cache's typed errors are answers; a defect is a bug, never retried.
    const send = <A, E>(
      message: { readonly _tag: string; readonly videoId: string; readonly index?: number | undefined },
      call: Effect.Effect<A, E>
    ): Effect.Effect<A, Exclude<E, ClusterFailure> | ClusterUnavailable> => {
      const unavailable = (reason: string) =>
        new ClusterUnavailable({ request: message._tag, videoId: message.videoId, waitedMs: Duration.toMillis(budget), reason })
      return call.pipe(
        Effect.retry({ schedule: Schedule.spaced(Duration.millis(100)), while: isClusterFailure }),
        // The caller hears of the timeout at once; telling the cluster that
        // the request is withdrawn (a write to Postgres) goes on behind it.
        Effect.disconnect,
        Effect.timeoutFail({ duration: budget, onTimeout: () => unavailable("no answer") }),
        Effect.catchIf(
          (error: E | ClusterUnavailable): error is Extract<E, ClusterFailure> => isClusterFailure(error),
          (error) => Effect.fail(unavailable(error._tag))
        ),
        Effect.withSpan(`rallycache.front.${message._tag}`, {
          kind: "client",
          attributes: {
            ...spanAttributes(message),
            "rallycache.front": front,
            // The front does not know the owner; the shard names it in the cluster's tables.
            "rallycache.shard": sharding.getShardId(EntityId.make(message.videoId), Video.getShardGroup(EntityId.make(message.videoId))).toString()
          }
        })
      ) as Effect.Effect<A, Exclude<E, ClusterFailure> | ClusterUnavailable>
    }

    const clips = options.clips
    const getClip = (videoId: string, index: number) =>
      send({ _tag: "GetClip", videoId, index }, clientFor(videoId).GetClip({ videoId, index })).pipe(
        Effect.flatMap((clip) =>
          clips === undefined ? Effect.succeed(clip) : clips.lookup(clip.key).pipe(
            Effect.flatMap(Option.match({
              // Committed by the runner, evicted before this node fetched it: the caller asks again.
              onNone: () =>
                Effect.fail(new Errors.ExportCancelled({ key: clip.key })),
              onSome: (entry) => Effect.succeed({ ...clip, path: clips.pathOf(entry.key) })
            }))
          )
        )
      )

    const cache: ClusterRallyCacheShape = {
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
      getClip: (videoId, index) => getClip(videoId, index),
      leaseClip: (videoId, index) => getClip(videoId, index),
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
 * The core API of a cluster client: `ClusterUnavailable` is not one of the
 * core errors, so a program written against `RallyCache` sees it as a defect
 * carrying the typed error (its one-line message intact).
 */
const toCore = (cache: ClusterRallyCacheShape): Core.RallyCacheShape => {
  const orDie = <A, E, R>(effect: Effect.Effect<A, E | ClusterUnavailable, R>): Effect.Effect<A, E, R> =>
    Effect.catchIf(effect, (error): error is ClusterUnavailable => error instanceof ClusterUnavailable, Effect.die) as Effect.Effect<A, E, R>
  return {
    openVideo: (input) => orDie(cache.openVideo(input)),
    navigate: (videoId, index) => orDie(cache.navigate(videoId, index)),
    getClip: (videoId, index) => orDie(cache.getClip(videoId, index)),
    leaseClip: (videoId, index) => orDie(cache.leaseClip(videoId, index)),
    preload: (videoId, opts) => orDie(cache.preload(videoId, opts)),
    invalidate: (videoId, index) => orDie(cache.invalidate(videoId, index)),
    status: (videoId) => orDie(cache.status(videoId)),
    stats: cache.stats,
    close: (videoId) => orDie<void, never, never>(cache.close(videoId)),
    events: cache.events
  }
}

/**
 * `ClusterRallyCache`, and `RallyCache` of `@rallycache/core` over it;
 * needs the `Sharding` of a client-only node (`ClusterRunner.layerClient`)
 * or of a runner.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Core.RallyCache | ClusterRallyCache, never, Sharding.Sharding> =>
  Layer.effectContext(
    Effect.map(make(options), (cache) =>
      Context.make(ClusterRallyCache, cache).pipe(Context.add(Core.RallyCache, toCore(cache))))
  )

/**
 * `layer`, fetching every clip through the node's `CacheStore` (see the
 * `clips` option).
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWithClips = (
  options: Omit<Options, "clips"> = {}
): Layer.Layer<Core.RallyCache | ClusterRallyCache, never, Sharding.Sharding | CacheStore.CacheStore> =>
  Layer.unwrapEffect(Effect.map(CacheStore.CacheStore, (clips) => layer({ ...options, clips })))
