/**
 * The engine behind `RallyCache`, put together: the registry of job states
 * (the export queue), the export job, the actor and the hit path.
 *
 * @internal
 */
import { Effect, type Scope } from "effect"
import { CacheEvents } from "../../CacheEvent.js"
import { CacheStore } from "../../CacheStore.js"
import { Cleanup } from "../../Cleanup.js"
import { CacheConfig } from "../../Config.js"
import { Exporter } from "../../Exporter.js"
import {
  Close,
  GetClip,
  Invalidate,
  Navigate,
  OpenVideo,
  Preload,
  Stats as StatsMessage,
  Status
} from "../../RallyMessages.js"
import { Metrics } from "../../Metrics.js"
import { PreloadPolicy } from "../../PreloadPolicy.js"
import type { ClipError, RallyCacheShape } from "../../RallyCache.js"
import * as Actor from "./actor.js"
import * as ExportJob from "./exportJob.js"
import type { Awaiter } from "./mailbox.js"
import * as HitPath from "./hitPath.js"
import * as Registry from "./registry.js"

/**
 * Build the engine and its client API. Everything it starts lives in the
 * current scope: closing it stops the actor, fails what waits in the
 * mailbox, releases the pins and shuts the export queue down (running
 * exports are interrupted and their reservations aborted).
 *
 * @internal
 */
export const make: Effect.Effect<
  RallyCacheShape,
  never,
  Scope.Scope | Exporter | CacheStore | PreloadPolicy | Metrics | CacheEvents | CacheConfig | Cleanup
> = Effect.gen(function*() {
  const exporter = yield* Exporter
  const store = yield* CacheStore
  const metrics = yield* Metrics
  const events = yield* CacheEvents
  const config = yield* CacheConfig

  const registry = yield* Registry.make({
    config,
    events,
    metrics,
    preemption: !config.preemption ? "off" : exporter.canPause ? "suspend" : "interrupt"
  })
  const makeJob = ExportJob.make({ config, store, exporter, events, cleanup: yield* Cleanup, metrics, registry })
  const actor = yield* Actor.make({ config, store, exporter, metrics, policy: yield* PreloadPolicy, registry, makeJob })
  const { ask } = actor

  const hitPath = HitPath.make({
    store,
    metrics,
    published: actor.published,
    miss: (videoId, index) =>
      Effect.flatten(ask<Awaiter, ClipError>((reply) => ({
        _tag: "GetClip",
        message: new GetClip({ videoId, index }),
        reply
      })))
  })

  const shape: RallyCacheShape = {
    openVideo: (input) =>
      ask((reply) => ({
        _tag: "OpenVideo",
        message: new OpenVideo({
          path: input.path,
          rallies: input.rallies.map((r) => ({ start: r.start, end: r.end })),
          id: input.id,
          mode: input.mode
        }),
        reply
      })),
    navigate: (videoId, index) => ask((reply) => ({ _tag: "Navigate", message: new Navigate({ videoId, index }), reply })),
    getClip: hitPath.getClip,
    leaseClip: hitPath.leaseClip,
    preload: (videoId, options) =>
      ask((reply) => ({
        _tag: "Preload",
        message: new Preload({ videoId, indexes: options?.indexes, priority: options?.priority }),
        reply
      })),
    invalidate: (videoId, index) =>
      ask((reply) => ({ _tag: "Invalidate", message: new Invalidate({ videoId, index }), reply })),
    status: (videoId) => ask((reply) => ({ _tag: "Status", message: new Status({ videoId }), reply })),
    stats: ask((reply) => ({ _tag: "Stats", message: new StatsMessage(), reply })),
    close: (videoId) => ask((reply) => ({ _tag: "Close", message: new Close({ videoId }), reply })),
    events: events.stream
  }
  return shape
})
