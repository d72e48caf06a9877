/**
 * The rallycache HTTP service: `ViewerApi` implemented with
 * `HttpApiBuilder` over the `RallyCache` service, its OpenAPI document at
 * `/openapi.json`, its documentation page at `/docs` (Scalar, served from
 * @effect/platform, no CDN), and the player page at `/`. `layer` serves it
 * on whatever `HttpServer` you provide, so the same routes run on
 * `NodeHttpServer` in `main.ts` and in the tests.
 *
 * The groups' handlers live in their own modules: `VideoRoutes` (videos),
 * `Media` (files under the media root), `Clips` (range serving), `Events`
 * (Server-Sent Events); the declaration in `ViewerApi`.
 *
 * @since 0.1.0
 */
import { HttpApiBuilder, HttpApiScalar, HttpServer, HttpServerResponse } from "@effect/platform"
import { Duration, Effect, Layer, Option } from "effect"
import * as Clips from "./Clips.js"
import * as Events from "./Events.js"
import { withOneLineDecodeErrors } from "./internal/errors.js"
import * as JsonBody from "./internal/jsonBody.js"
import * as Media from "./Media.js"
import { PlayerAssets } from "./Player.js"
import { Prometheus } from "./Prometheus.js"
import { NodeServer, ServerConfig } from "./ServerConfig.js"
import * as VideoRoutes from "./VideoRoutes.js"
import { ViewerApi } from "./ViewerApi.js"

const metrics = HttpApiBuilder.group(ViewerApi, "metrics", (handlers) =>
  handlers.handleRaw("metrics", () =>
    Effect.flatMap(Prometheus, (prometheus) => prometheus.scrape).pipe(
      Effect.map((text) => HttpServerResponse.text(text, { contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    )))

/**
 * `ViewerApi` with every group's handlers.
 *
 * @since 0.1.0
 * @category layers
 */
export const apiLayer = HttpApiBuilder.api(ViewerApi).pipe(
  Layer.provide([VideoRoutes.layer, Media.layer, Clips.layer, Events.layer, metrics]),
  Layer.provide(JsonBody.layer)
)

/** The player page and its script, beside the API. */
const pageRoutes = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const assets = yield* PlayerAssets
    yield* router.get("/", Effect.sync(() => HttpServerResponse.html(assets.html)))
    yield* router.get(
      "/player.js",
      Effect.sync(() =>
        HttpServerResponse.text(assets.script, {
          contentType: "text/javascript; charset=utf-8",
          headers: { "cache-control": "no-cache" }
        })
      )
    )
  })
)

/**
 * `/openapi.json` and the `/docs` page, generated from `ViewerApi`.
 *
 * @since 0.1.0
 * @category layers
 */
export const docsLayer = Layer.mergeAll(
  HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" }),
  HttpApiScalar.layer({ path: "/docs" })
)

/**
 * Serve the API, its documents and the page on the `HttpServer` in
 * context. On shutdown, the event streams end first; the server then waits
 * for in-flight responses (up to `shutdownGrace` when a `NodeServer` is
 * given) before the layers below it (the cache) are released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = Layer.scopedDiscard(
  Effect.gen(function*() {
    const config = yield* ServerConfig
    const node = yield* Effect.serviceOption(NodeServer)
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* Effect.logInfo("shutting down: finishing in-flight responses")
        if (Option.isSome(node)) {
          const server = node.value
          // Closing the server waits for every open response; past the grace
          // period the remaining connections are cut.
          setTimeout(() => server.closeAllConnections(), Duration.toMillis(config.shutdownGrace)).unref()
        }
      })
    )
    const app = yield* HttpApiBuilder.httpApp
    yield* HttpServer.serveEffect(app)
  })
).pipe(
  Layer.provide([
    docsLayer,
    pageRoutes,
    HttpApiBuilder.middleware(ViewerApi, withOneLineDecodeErrors)
  ]),
  Layer.provide(apiLayer),
  Layer.provide([HttpApiBuilder.Router.Live, HttpApiBuilder.Middleware.layer]),
  // Released after the server's own finalizer, before the HTTP server waits for responses.
  Layer.provide(Events.ShuttingDown.layer)
)
