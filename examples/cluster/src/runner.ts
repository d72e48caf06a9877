/**
 * `pnpm --filter cluster-example runner -- --port 34431 [--database-url URL] [--cache-dir DIR]`
 *
 * One runner of the cluster: joins it through Postgres, hosts the video
 * entities of its shards, exports their clips with its own ffmpeg into the
 * shared cache folder. Logs are JSON lines on stdout (the tests read them).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { ClusterRunner, Tracing } from "@rallycache/cluster"
import { CacheEvent } from "@rallycache/core"
import { Cause, Config, Console, Duration, Effect, Layer, Logger, LogLevel, Option, Stream } from "effect"
import { parseArgs } from "node:util"

const usage =
  "usage: pnpm --filter cluster-example runner -- --port N [--host H] [--database-url URL] [--cache-dir DIR] [--concurrency N]"

const args = (() => {
  const argv = process.argv.slice(2)
  try {
    return parseArgs({
      args: argv[0] === "--" ? argv.slice(1) : argv,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "database-url": { type: "string" },
        "cache-dir": { type: "string" },
        concurrency: { type: "string" },
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
const port = Number(args.port ?? process.env["RUNNER_PORT"] ?? "34431")
if (!(Number.isInteger(port) && port > 0 && port < 65536)) {
  console.error(`--port must be an integer from 1 to 65535, got ${args.port}`)
  process.exit(2)
}
const host = args.host ?? "127.0.0.1"

/** Every export this runner starts, finishes or drops, as a log line. */
const logExports = Layer.scopedDiscard(Effect.gen(function*() {
  const events = yield* CacheEvent.CacheEvents
  const stream = yield* events.subscribe
  yield* stream.pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "JobStarted":
        case "JobCancelled":
        case "JobFailed":
          return Effect.logInfo("export").pipe(
            Effect.annotateLogs({ event: event._tag, videoId: event.videoId, rallyIndex: event.rallyIndex, key: event.key })
          )
        case "ClipReady":
          return Effect.logInfo("export").pipe(
            Effect.annotateLogs({
              event: event._tag,
              videoId: event.clip.videoId,
              rallyIndex: event.clip.rallyIndex,
              key: event.clip.key,
              path: event.clip.path
            })
          )
        default:
          return Effect.void
      }
    }),
    Effect.forkScoped
  )
}))

/** Spans to an OTLP/HTTP collector when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. */
const tracing = Layer.unwrapEffect(
  Config.option(Config.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")).pipe(
    Effect.map((url) =>
      url._tag === "Some" ? Tracing.layerOtlp({ serviceName: `rallycache-runner-${port}`, url: url.value }) : Layer.empty
    )
  )
)

const program = Effect.gen(function*() {
  const databaseUrl = args["database-url"] ?? (yield* Config.string("DATABASE_URL"))
  // Every node of a cluster must agree on it.
  const failoverAfter = yield* Config.duration("RALLYCACHE_CLUSTER_FAILOVER").pipe(Config.withDefault(Duration.seconds(10)))
  const concurrency = args.concurrency === undefined ? undefined : Number(args.concurrency)
  const runner = ClusterRunner.layer({
    databaseUrl,
    failoverAfter,
    host,
    port,
    cache: {
      ...(args["cache-dir"] === undefined ? {} : { cacheDir: args["cache-dir"] }),
      ...(concurrency === undefined ? {} : { concurrency })
    }
  })
  return yield* Effect.gen(function*() {
    yield* Effect.logInfo("runner ready").pipe(Effect.annotateLogs({ runner: `${host}:${port}`, pid: process.pid }))
    return yield* Effect.never
  }).pipe(Effect.provide(logExports.pipe(Layer.provideMerge(runner))))
})

program.pipe(
  Effect.provide(tracing),
  Effect.tapErrorCause((cause) =>
    Option.match(Cause.failureOption(cause), {
      onSome: (error) => Console.error(`runner: ${error instanceof Error ? error.message : String(error)}`),
      onNone: () => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("runner stopped", cause)
    })
  ),
  Effect.provide(Logger.json),
  Logger.withMinimumLogLevel(LogLevel.Info),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
