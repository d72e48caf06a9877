/**
 * `pnpm --filter cluster-example front -- [--port N] [--database-url URL]`
 *
 * The HTTP example (`examples/http-server`: its routes, player page and
 * metrics) as a client-only node of the cluster: its `RallyCache` sends
 * every call to the runner owning the video, and it serves the clip files
 * from the cache folder the runners share.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { HttpServer } from "@effect/platform"
import { ClusterRunner, Tracing } from "@rallycache/cluster"
import { Cause, Config, Console, Duration, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { parseArgs } from "node:util"
import * as App from "../../http-server/src/App.js"

const usage = "usage: pnpm --filter cluster-example front -- [--port N] [--host H] [--database-url URL] [--media-root DIR]"

const args = (() => {
  const argv = process.argv.slice(2)
  try {
    return parseArgs({
      args: argv[0] === "--" ? argv.slice(1) : argv,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "database-url": { type: "string" },
        "media-root": { type: "string" },
        help: { type: "boolean", short: "h" }
      },
      strict: true
    }).values
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`)
    process.exit(2)
  }
})()
if (args.help === true) {
  console.log(usage)
  process.exit(0)
}

/** Spans to an OTLP/HTTP collector when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. */
const tracing = Layer.unwrapEffect(
  Config.option(Config.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")).pipe(
    Effect.map((url) =>
      url._tag === "Some" ? Tracing.layerOtlp({ serviceName: "rallycache-front", url: url.value }) : Layer.empty
    )
  )
)

const program = Effect.gen(function*() {
  const databaseUrl = args["database-url"] ?? (yield* Config.string("DATABASE_URL"))
  // Every node of a cluster must agree on it.
  const failoverAfter = yield* Config.duration("RALLYCACHE_CLUSTER_FAILOVER").pipe(Config.withDefault(Duration.seconds(10)))
  const port = Number(args.port ?? "0")
  const host = args.host ?? "127.0.0.1"
  return yield* Effect.gen(function*() {
    const address = (yield* HttpServer.HttpServer).address
    const url = address._tag === "TcpAddress" ? `http://${address.hostname}:${address.port}/` : address.path
    yield* Effect.logInfo("front listening").pipe(Effect.annotateLogs({ url }))
    return yield* Effect.never
  }).pipe(
    Effect.provide(App.layerWithEngine(ClusterRunner.layerClient({ databaseUrl, failoverAfter }), {
      port,
      host,
      server: args["media-root"] === undefined ? {} : { mediaRoot: args["media-root"] }
    }))
  )
})

program.pipe(
  Effect.provide(tracing),
  Effect.tapErrorCause((cause) =>
    Option.match(Cause.failureOption(cause), {
      onSome: (error) => Console.error(`front: ${error instanceof Error ? error.message : String(error)}`),
      onNone: () => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("front stopped", cause)
    })
  ),
  Effect.provide(Logger.json),
  Logger.withMinimumLogLevel(LogLevel.Info),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
