/**
 * One cluster entity per video: the manager's per-video messages
 * (`RallyMessages.OpenVideo`, `Navigate`, `GetClip`, `Preload`, `Invalidate`,
 * `Status`, `Close`) as the RPC group of an `@effect/cluster` entity whose id
 * is the video id. The entity runs on the runner that owns the video's shard
 * and answers from that runner's own engine (`RallyCache` of
 * `@rallycache/core`: its export queue, its concurrency limit, its pins).
 *
 * `OpenVideo`, `Navigate` and `GetClip` are persisted messages: delivered at
 * least once across a runner's death. `OpenVideo` is also kept in a table of
 * its own, so that the runner taking a shard over after a crash or a
 * rebalance opens the video before it answers.
 *
 * @since 0.1.0
 */
import { ClusterSchema, Entity, type Sharding } from "@effect/cluster"
import { Rpc } from "@effect/rpc"
import { SqlClient } from "@effect/sql"
import { RallyMessages, RallyCache } from "@rallycache/core"
import { Context, Effect, Layer, Option } from "effect"
import * as Registry from "./internal/registry.js"

/**
 * The entity. The messages a viewer waits on are written to Postgres
 * (`SqlMessageStorage`) before they are sent: if their runner dies before it
 * answers, the runner that takes the shard over reads them from there and
 * answers. Their handlers are safe to run twice (opening the same video,
 * navigating to the same rally, serving a committed clip).
 *
 * Its id is the video id; `OpenVideo` must carry `id` (the
 * message is routed before any probe could derive one).
 *
 * @since 0.1.0
 * @category entity
 */
export const Video = Entity.make("RallyCacheVideo", [
  Rpc.fromTaggedRequest(RallyMessages.OpenVideo).annotate(ClusterSchema.Persisted, true),
  Rpc.fromTaggedRequest(RallyMessages.Navigate).annotate(ClusterSchema.Persisted, true),
  Rpc.fromTaggedRequest(RallyMessages.GetClip).annotate(ClusterSchema.Persisted, true),
  Rpc.fromTaggedRequest(RallyMessages.Preload),
  Rpc.fromTaggedRequest(RallyMessages.Invalidate),
  Rpc.fromTaggedRequest(RallyMessages.Status),
  Rpc.fromTaggedRequest(RallyMessages.Close)
])

/**
 * The name of the runner, put on every span it records (`rallycache.runner`).
 *
 * @since 0.1.0
 * @category context
 */
export class RunnerId extends Context.Tag("@rallycache/cluster/RunnerId")<RunnerId, string>() {}

/**
 * Span attributes of a message: its tag, the video, and the rally when there
 * is one.
 *
 * @since 0.1.0
 * @category tracing
 */
export const spanAttributes = (
  message: { readonly _tag: string; readonly videoId?: string; readonly index?: number | undefined }
): Record<string, string | number> => ({
  "rallycache.message": message._tag,
  ...(message.videoId === undefined ? {} : { "rallycache.video_id": message.videoId }),
  ...(message.index === undefined ? {} : { "rallycache.rally_index": message.index })
})

const received = <A, E, R>(
  runner: string,
  message: { readonly _tag: string; readonly videoId?: string; readonly index?: number | undefined },
  effect: Effect.Effect<A, E, R>
) =>
  Effect.withSpan(effect, `rallycache.runner.${message._tag}`, {
    kind: "server",
    attributes: { ...spanAttributes(message), "rallycache.runner": runner }
  })

/**
 * The entity's handlers on a runner, over the runner's `RallyCache`. The
 * handlers run concurrently (a `GetClip` waiting for its export does not hold
 * up a `Navigate`); the engine's actor orders what must be ordered.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, RallyCache.RallyCache | SqlClient.SqlClient | RunnerId | Sharding.Sharding> =
  Layer.unwrapEffect(Effect.gen(function*() {
    const registry = yield* Registry.make
    return Video.toLayer(
      Effect.gen(function*() {
        const cache = yield* RallyCache.RallyCache
        const runner = yield* RunnerId
        const address = yield* Entity.CurrentAddress
        const videoId = address.entityId
        // A video opened on another runner (before a crash or a rebalance):
        // open it here from its stored request before the first answer.
        const known = yield* cache.status(videoId).pipe(Effect.isSuccess)
        if (!known) {
          const stored = yield* registry.load(videoId).pipe(Effect.orDie)
          if (Option.isSome(stored)) {
            yield* cache.openVideo({ ...stored.value, id: videoId }).pipe(
              Effect.withSpan("rallycache.runner.reopen", { attributes: { "rallycache.video_id": videoId, "rallycache.runner": runner } }),
              Effect.catchAll((error) => Effect.logWarning(`cannot reopen video ${videoId}: ${error.message}`))
            )
          }
        }
        const annotate = Effect.annotateLogs({ videoId, runner })
        yield* Effect.logInfo("video entity started").pipe(annotate)
        // The entity stops when its shard moves or it has been idle: its
        // queued work is cancelled here (the new owner re-plans it).
        yield* Effect.addFinalizer(() =>
          cache.close(videoId).pipe(Effect.zipRight(Effect.logInfo("video entity stopped").pipe(annotate)))
        )

        return Video.of({
          OpenVideo: ({ payload }) =>
            received(
              runner,
              { _tag: "OpenVideo", videoId },
              cache.openVideo({ ...payload, id: videoId }).pipe(
                Effect.tap(() => registry.save(videoId, payload).pipe(Effect.orDie))
              )
            ),
          Navigate: ({ payload }) => received(runner, payload, cache.navigate(videoId, payload.index)),
          GetClip: ({ payload }) =>
            received(
              runner,
              payload,
              cache.getClip(videoId, payload.index).pipe(
                // Whether this request waited for an export on this runner.
                Effect.tap((clip) => Effect.annotateCurrentSpan("rallycache.exported", !clip.cached))
              )
            ),
          Preload: ({ payload }) =>
            received(
              runner,
              payload,
              cache.preload(videoId, {
                ...(payload.indexes === undefined ? {} : { indexes: payload.indexes }),
                ...(payload.priority === undefined ? {} : { priority: payload.priority })
              })
            ),
          Invalidate: ({ payload }) => received(runner, payload, cache.invalidate(videoId, payload.index)),
          Status: ({ payload }) => received(runner, payload, cache.status(videoId)),
          Close: ({ payload }) =>
            received(
              runner,
              payload,
              cache.close(videoId).pipe(Effect.zipRight(registry.remove(videoId).pipe(Effect.orDie)))
            )
        })
      }),
      // A defect in a handler is a bug: it goes back to the caller as the
      // answer, instead of restarting the entity and replaying its messages.
      { concurrency: "unbounded", disableFatalDefects: true }
    )
  }))
