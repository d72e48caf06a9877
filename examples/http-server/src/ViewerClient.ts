/**
 * The client of `ViewerApi`, derived from the same declaration as the
 * server, over `fetch`: the player page and the tests use it. Browser-safe.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as ViewerClient from "./ViewerClient.js"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* ViewerClient.make("http://127.0.0.1:3000")
 *   const videos = yield* client.videos.list()
 *   const status = yield* client.videos.status({ path: { id: videos[0]!.id } })
 * })
 * Effect.runPromise(program.pipe(Effect.provide(ViewerClient.layerFetch)))
 * ```
 *
 * @since 0.1.0
 */
import { FetchHttpClient, HttpApiClient, type HttpClient } from "@effect/platform"
import type { Effect, Layer } from "effect"
import { ViewerApi } from "./ViewerApi.js"

/**
 * The client: one group per `ViewerApi` group (`videos`, `media`, `clips`,
 * `events`, `metrics`), one method per endpoint, typed failures.
 *
 * @since 0.1.0
 * @category models
 */
export type Client = Effect.Effect.Success<ReturnType<typeof make>>

/**
 * A client for the server at `baseUrl` (the page passes its own origin,
 * `location.origin`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (baseUrl: string | URL) => HttpApiClient.make(ViewerApi, { baseUrl })

/**
 * The `HttpClient` the client runs on: the platform's `fetch`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFetch: Layer.Layer<HttpClient.HttpClient> = FetchHttpClient.layer
