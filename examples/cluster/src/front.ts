/**
 * `pnpm --filter cluster-example front -- [--port N] [--database-url URL] [--cache-dir DIR]`
 *
 * The HTTP example (`examples/http-server`: its routes, player page and
 * metrics) as a client-only node of the cluster: its `RallyCache` sends
 * every call to the runner owning the video. With `RALLYCACHE_S3_BUCKET`
 * set, it fetches each clip from the bucket into its own cache folder and
 * serves it from there (with Range, as the HTTP example does); without it,
 * it serves the file the runner names (runners on this machine only).
 */
import { Command, Options } from "@effect/cli"
import { HttpServer } from "@effect/platform"
import { ClusterRunner } from "@rallycache/cluster"
import { NodeRallyCache } from "@rallycache/node"
import { S3CacheStore } from "@rallycache/s3"
import { Config, Effect, Option } from "effect"
import * as App from "http-server/App"
import * as Cli from "./Cli.js"

const port = Cli.port({ min: 0, default: 0, description: "Port to listen on (default: a free port)" })
const mediaRoot = Options.text("media-root").pipe(
  Options.withDescription("Only videos under this folder can be registered (default: the HTTP example's)"),
  Options.optional
)

const cacheDir = Options.text("cache-dir").pipe(
  Options.withDescription("The front's own folder for clips fetched from the bucket (default: RALLYCACHE_CACHE_DIR, else the user cache folder)"),
  Options.optional
)

const command = Command.make(
  "front",
  { port, host: Cli.host, databaseUrl: Cli.databaseUrl, mediaRoot, cacheDir },
  (args) =>
    Effect.gen(function*() {
      const failoverAfter = yield* Cli.failoverAfter
      const bucket = yield* Config.option(Config.nonEmptyString("RALLYCACHE_S3_BUCKET"))
      const folder = yield* NodeRallyCache.resolveCacheDir(
        Option.match(args.cacheDir, { onNone: () => ({}), onSome: (cacheDir) => ({ cacheDir }) })
      )
      const engine = ClusterRunner.layerClient({
        databaseUrl: args.databaseUrl,
        failoverAfter,
        clips: Option.isSome(bucket) ? S3CacheStore.layerConfig({ cacheDir: folder }) : undefined
      })
      return yield* Effect.gen(function*() {
        const address = (yield* HttpServer.HttpServer).address
        const url = address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}/` : address.path
        yield* Effect.logInfo("front listening").pipe(Effect.annotateLogs({ url }))
        return yield* Effect.never
      }).pipe(
        Effect.provide(App.layerWithEngine(engine, {
          port: args.port,
          host: args.host,
          server: Option.match(args.mediaRoot, { onNone: () => ({}), onSome: (mediaRoot) => ({ mediaRoot }) })
        }))
      )
    }).pipe(Effect.provide(Cli.tracing("rallycache-front")))
).pipe(Command.withDescription("The HTTP example as a client-only node of the rallycache cluster"))

Cli.runMain("front", command)
