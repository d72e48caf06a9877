/**
 * `retryFor` bounds the wait of a front's call: with no runner up, a call
 * fails with the typed `ClusterUnavailable` once `retryFor` has passed; a
 * defect of a runner's handler comes back once, never retried as if it were
 * transient. A client-only node and a runner in this process, real Postgres.
 */
import { describe, expect, it } from "@effect/vitest"
import { ClusterRallyCache, ClusterRunner } from "@rallycache/cluster"
import { CacheEvent, Errors, RallyCache } from "@rallycache/core"
import { Cause, Context, Effect, Exit, Layer, Logger, LogLevel, Option } from "effect"
import * as Postgres from "../../../test/support/postgres.js"

/**
 * An engine whose `getClip` dies (a bug in a handler); every other call is
 * unused here and dies too.
 */
const dyingEngine = (calls: Map<string, number>): Layer.Layer<RallyCache.RallyCache | CacheEvent.CacheEvents> => {
  const unused = Effect.dieMessage("not used in this test")
  const cache: RallyCache.RallyCacheShape = {
    openVideo: () => unused,
    navigate: () => unused,
    getClip: (videoId) =>
      Effect.suspend(() => {
        calls.set(videoId, (calls.get(videoId) ?? 0) + 1)
        return Effect.dieMessage(`a bug in getClip of ${videoId}`)
      }),
    leaseClip: () => unused,
    preload: () => unused,
    invalidate: () => unused,
    status: (videoId) => Effect.fail(new Errors.UnknownVideo({ videoId })),
    stats: unused,
    close: () => Effect.void,
    events: unused
  }
  return Layer.merge(Layer.succeed(RallyCache.RallyCache, cache), CacheEvent.CacheEvents.layer())
}

describe("retryFor (real Postgres; as root it runs as the postgres user)", () => {
  it.live("with no runner up, a call fails with ClusterUnavailable within retryFor plus one second", () =>
    Effect.gen(function*() {
      const pg = yield* Postgres.scoped
      const front = yield* Layer.build(ClusterRunner.layerClient({ databaseUrl: pg.url, retryFor: "2 seconds" }))
      const cache = Context.get(front, ClusterRallyCache.ClusterRallyCache)

      const timed = <A, E>(call: Effect.Effect<A, E>) =>
        Effect.gen(function*() {
          const start = Date.now()
          const exit = yield* Effect.exit(call)
          const failure: Option.Option<unknown> = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          return { failure, ms: Date.now() - start }
        })
      // A persisted message (stored, waiting for a runner) and a plain one.
      const [clip, status] = yield* Effect.all([timed(cache.getClip("nobody-home", 0)), timed(cache.status("nobody-home"))], {
        concurrency: 2
      })
      for (const { failure, ms } of [clip, status]) {
        expect(ms).toBeLessThan(3_000)
        expect(Option.getOrNull(failure)).toBeInstanceOf(ClusterRallyCache.ClusterUnavailable)
        const message = (Option.getOrThrow(failure) as Error).message
        expect(message).not.toContain("\n")
        expect(message).toContain("start a runner")
      }
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 60_000)

  it.live("a defect of a runner's handler comes back once and is not retried", () =>
    Effect.gen(function*() {
      const pg = yield* Postgres.scoped
      const calls = new Map<string, number>()
      const port = yield* Effect.promise(Postgres.freePort)
      yield* Layer.build(ClusterRunner.layer({ databaseUrl: pg.url, port, engine: dyingEngine(calls) }))
      const front = yield* Layer.build(ClusterRunner.layerClient({ databaseUrl: pg.url, retryFor: "10 seconds" }))
      const cache = Context.get(front, ClusterRallyCache.ClusterRallyCache)

      const exit = yield* Effect.exit(cache.getClip("buggy", 0))
      expect(Exit.isFailure(exit) && Option.isSome(Cause.dieOption(exit.cause))).toBe(true)
      // A retried defect would have been called again before the call returned.
      expect(calls.get("buggy")).toBe(1)
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 60_000)
})
