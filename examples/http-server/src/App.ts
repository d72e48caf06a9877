/**
 * The whole service as one layer: the routes of `Server`, a Node HTTP
 * server, and rallycache's default Node layer (ffmpeg exporter, disk cache,
 * `RALLYCACHE_*` settings). `main.ts` runs it; the tests build it in-process.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { Config as CacheConfig, type RallyCache } from "@rallycache/core"
import { NodeRallyCache } from "@rallycache/node"
import { Config, Effect, Layer } from "effect"
import * as Http from "node:http"
import * as Clips from "./Clips.js"
import { PlayerAssets } from "./Player.js"
import { Prometheus } from "./Prometheus.js"
import * as Server from "./Server.js"
import { NodeServer, ServerConfig, type ServerOptions } from "./ServerConfig.js"
import * as Videos from "./Videos.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Default: `PORT`, else a free port. */
  readonly port?: number | undefined
  /** Default: `HOST`, else 127.0.0.1. */
  readonly host?: string | undefined
  /** Default: `RALLYCACHE_CACHE_DIR`, else the user cache folder. */
  readonly cacheDir?: string | undefined
  /** Cache settings in code; `RALLYCACHE_*` variables still override them. */
  readonly cache?: CacheConfig.Options | undefined
  /** Default: `RALLYCACHE_MEDIA_ROOT`, `RALLYCACHE_CLIP_TIMEOUT`, `RALLYCACHE_SHUTDOWN_GRACE`. */
  readonly server?: ServerOptions | undefined
}

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}) =>
  compose(
    options,
    NodeRallyCache.layer({
      ...options.cache,
      ...(options.cacheDir === undefined ? {} : { cacheDir: options.cacheDir })
    })
  )

/**
 * The same service over another `RallyCache` (for example a cluster front's,
 * in `examples/cluster`): `cacheDir` does not apply, and `cache` (then the
 * `RALLYCACHE_*` variables the engine's runners read too) only gives the
 * preload window the status reports to the page.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithEngine = <E>(engine: Layer.Layer<RallyCache.RallyCache, E>, options: Options = {}) =>
  compose(options, Layer.mergeAll(engine, NodeContext.layer, CacheConfig.CacheConfig.layerConfig(options.cache)))

const compose = <A, E>(
  options: Options,
  cache: Layer.Layer<A | RallyCache.RallyCache | NodeContext.NodeContext, E>
) =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const port = options.port ?? (yield* Config.integer("PORT").pipe(Config.withDefault(0)))
    const host = options.host ?? (yield* Config.string("HOST").pipe(Config.withDefault("127.0.0.1")))
    const server = Http.createServer()
    const support = Layer.mergeAll(
      Videos.Videos.layer,
      ServerConfig.layerConfig(options.server),
      PlayerAssets.layer,
      Prometheus.layer({ runtimeMetrics: options.server?.runtimeMetrics }),
      Layer.succeed(NodeServer, server),
      Layer.effectDiscard(Clips.registerMetrics)
    )
    return Server.layer.pipe(
      Layer.provideMerge(support),
      Layer.provideMerge(NodeHttpServer.layer(() => server, { port, host })),
      // Built first, released last: the cache outlives every response.
      Layer.provideMerge(cache)
    )
  }))
