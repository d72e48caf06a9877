/**
 * `GET /api/events`: every cache event as Server-Sent Events, without the
 * server's file paths, until the server shuts down.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpServerResponse } from "@effect/platform"
import { CacheEvent, RallyCache } from "@rallycache/core"
import { Context, Deferred, Duration, Effect, Layer, Option, Schema, Stream } from "effect"
import { ViewerApi } from "./ViewerApi.js"

/**
 * Completed when the server starts shutting down: endless responses (the
 * event stream) end then, so closing the server only waits for real work.
 *
 * @since 0.1.0
 * @category tags
 */
export class ShuttingDown extends Context.Tag("http-server/ShuttingDown")<ShuttingDown, Deferred.Deferred<void>>() {
  /** Completed when the layer is released: before the HTTP server below it waits for its responses. */
  static readonly layer = Layer.scoped(
    ShuttingDown,
    Effect.acquireRelease(Deferred.make<void>(), (deferred) => Deferred.succeed(deferred, undefined))
  )
}

/** The event as sent to browsers: without the server's file paths. */
const publicEvent = (event: CacheEvent.CacheEvent): unknown => {
  const encoded = Schema.encodeSync(CacheEvent.CacheEvent)(event)
  if (encoded._tag !== "ClipReady") return encoded
  const { path: _path, ...clip } = encoded.clip
  return { ...encoded, clip }
}

const response = Effect.gen(function*() {
  const cache = yield* RallyCache.RallyCache
  const shuttingDown = yield* ShuttingDown
  const encoder = new TextEncoder()
  const hub = yield* Effect.serviceOption(CacheEvent.CacheEvents)
  // Subscribe before the first byte goes out: a client that has read the
  // `retry` line misses no event that happens after it.
  const subscribed = Option.match(hub, {
    onNone: () => Effect.succeed(cache.events),
    onSome: (events) => events.subscribe
  })
  // A comment now and then keeps proxies and browsers from closing an idle stream.
  const keepAlive = Stream.tick(Duration.seconds(15)).pipe(Stream.drop(1), Stream.map(() => ": keep-alive\n\n"))
  const body = Stream.unwrapScoped(Effect.map(subscribed, (events) =>
    Stream.make("retry: 2000\n\n").pipe(
      Stream.concat(
        Stream.merge(events.pipe(Stream.map((event) => `data: ${JSON.stringify(publicEvent(event))}\n\n`)), keepAlive)
      )
    ))).pipe(
      Stream.interruptWhen(Deferred.await(shuttingDown)),
      Stream.map((text) => encoder.encode(text))
    )
  return HttpServerResponse.stream(body, {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-cache", "x-accel-buffering": "no" }
  })
})

/**
 * The `events` group of `ViewerApi`.
 *
 * @since 0.1.0
 * @category handlers
 */
export const layer = HttpApiBuilder.group(ViewerApi, "events", (handlers) => handlers.handleRaw("events", () => response))
