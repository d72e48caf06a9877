/**
 * `pnpm --filter cluster-example runner -- --port 34431 [--database-url URL] [--cache-dir DIR]`
 *
 * One runner of the cluster: joins it through Postgres, hosts the video
 * entities of its shards, exports their clips with its own ffmpeg. With
 * `RALLYCACHE_S3_BUCKET` set, clips are committed to that bucket
 * (`@rallycache/s3`, Postgres as the index) and the cache folder only holds
 * hot copies; without it, clips live in the cache folder. No runner shares
 * its folder. Logs are JSON lines on stdout (the tests read them).
 */
import { Command, Options } from "@effect/cli"
import { ClusterEngine, ClusterRunner } from "@rallycache/cluster"
import { CacheEvent } from "@rallycache/core"
import { NodeRallyCache } from "@rallycache/node"
import { S3CacheStore } from "@rallycache/s3"
import { Config, Effect, Layer, Option, Stream } from "effect"
import * as Cli from "./Cli.js"

const port = Cli.port({
  min: 1,
  env: "RUNNER_PORT",
  default: 34431,
  description: "Port the other nodes reach this runner on (default: RUNNER_PORT, else 34431)"
})
const cacheDir = Options.text("cache-dir").pipe(
  Options.withDescription("This runner's own cache folder (default: RALLYCACHE_CACHE_DIR, else the user cache folder)"),
  Options.optional
)
const concurrency = Options.integer("concurrency").pipe(
  Options.withDescription("Exports this runner runs at once (default: the cache's own)"),
  Options.filterMap((n) => n >= 1 ? Option.some(n) : Option.none(), "--concurrency must be an integer of 1 or more"),
  Options.optional
)

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

const command = Command.make(
  "runner",
  { port, host: Cli.host, databaseUrl: Cli.databaseUrl, cacheDir, concurrency },
  (args) =>
    Effect.gen(function*() {
      const failoverAfter = yield* Cli.failoverAfter
      const cache = {
        ...Option.match(args.cacheDir, { onNone: () => ({}), onSome: (cacheDir) => ({ cacheDir }) }),
        ...Option.match(args.concurrency, { onNone: () => ({}), onSome: (concurrency) => ({ concurrency }) })
      }
      const bucket = yield* Config.option(Config.nonEmptyString("RALLYCACHE_S3_BUCKET"))
      const cacheDir = yield* NodeRallyCache.resolveCacheDir(cache)
      const runner = ClusterRunner.layer({
        databaseUrl: args.databaseUrl,
        failoverAfter,
        host: args.host,
        port: args.port,
        cache,
        engine: Option.isSome(bucket)
          ? ClusterEngine.layer({
            store: S3CacheStore.layerConfig({ cacheDir }),
            cacheDir,
            config: Option.match(args.concurrency, { onNone: () => ({}), onSome: (concurrency) => ({ concurrency }) })
          })
          : undefined
      })
      return yield* Effect.gen(function*() {
        yield* Effect.logInfo("runner ready").pipe(
          Effect.annotateLogs({ runner: `${args.host}:${args.port}`, pid: process.pid })
        )
        return yield* Effect.never
      }).pipe(Effect.provide(logExports.pipe(Layer.provideMerge(runner))))
    }).pipe(Effect.provide(Cli.tracing(`rallycache-runner-${args.port}`)))
).pipe(Command.withDescription("One runner of the rallycache cluster"))

Cli.runMain("runner", command)
