/**
 * `pnpm --filter cluster-example front -- [--port N] [--database-url URL]`
 *
 * The HTTP example (`examples/http-server`: its routes, player page and
 * metrics) as a client-only node of the cluster: its `RallyCache` sends
 * every call to the runner owning the video, and it serves the clip files
 * from the cache folder the runners share.
 */
import { Command, Options } from "@effect/cli"
import { HttpServer } from "@effect/platform"
import { ClusterRunner } from "@rallycache/cluster"
import { Effect, Option } from "effect"
import * as App from "../../http-server/src/App.js"
import * as Cli from "./Cli.js"

const port = Cli.port({ min: 0, default: 0, description: "Port to listen on (default: a free port)" })
const mediaRoot = Options.text("media-root").pipe(
  Options.withDescription("Only videos under this folder can be registered (default: the HTTP example's)"),
  Options.optional
)

const command = Command.make(
  "front",
  { port, host: Cli.host, databaseUrl: Cli.databaseUrl, mediaRoot },
  (args) =>
    Effect.gen(function*() {
      const failoverAfter = yield* Cli.failoverAfter
      return yield* Effect.gen(function*() {
        const address = (yield* HttpServer.HttpServer).address
        const url = address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}/` : address.path
        yield* Effect.logInfo("front listening").pipe(Effect.annotateLogs({ url }))
        return yield* Effect.never
      }).pipe(
        Effect.provide(App.layerWithEngine(ClusterRunner.layerClient({ databaseUrl: args.databaseUrl, failoverAfter }), {
          port: args.port,
          host: args.host,
          server: Option.match(args.mediaRoot, { onNone: () => ({}), onSome: (mediaRoot) => ({ mediaRoot }) })
        }))
      )
    }).pipe(Effect.provide(Cli.tracing("rallycache-front")))
).pipe(Command.withDescription("The HTTP example as a client-only node of the rallycache cluster"))

Cli.runMain("front", command)
