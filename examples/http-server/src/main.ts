/**
 * `pnpm --filter http-server start [-- --video PATH --rallies FILE]`
 *
 * Serves the clip API and the player page, and prints the URL. With
 * `--video` and `--rallies` (or `RALLYCACHE_VIDEO` and `RALLYCACHE_RALLIES`),
 * the video is opened at start and the printed player URL plays it. With
 * `--demo`, a generated one-minute sample video is opened instead.
 */
import { FileSystem, HttpServer } from "@effect/platform"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Config, Console, Effect, Option, Schema } from "effect"
import { NodeRallyCache, SampleVideo } from "@rallycache/node"
import * as path from "node:path"
import { parseArgs } from "node:util"
import { describeParseError, RalliesFile } from "./Api.js"
import * as App from "./App.js"
import * as Server from "./Server.js"

const usage =
  "usage: pnpm --filter http-server start [-- [--port N] [--host H] [--cache-dir DIR] [--video PATH --rallies FILE | --demo]]"

const parse = () => {
  // `pnpm start -- --flag` passes the `--` through.
  const argv = process.argv.slice(2)
  try {
    return parseArgs({
      args: argv[0] === "--" ? argv.slice(1) : argv,
      options: {
        port: { type: "string" },
        host: { type: "string" },
        "cache-dir": { type: "string" },
        video: { type: "string" },
        rallies: { type: "string" },
        demo: { type: "boolean" },
        help: { type: "boolean", short: "h" }
      },
      strict: true
    }).values
  } catch (error) {
    console.error(`${error instanceof Error ? error.message : String(error)}\n${usage}`)
    process.exit(2)
  }
}
const args = parse()

if (args.help === true) {
  console.log(usage)
  process.exit(0)
}

/** A flag, else its environment variable. */
const setting = (flag: string | undefined, variable: string) =>
  flag === undefined
    ? Config.option(Config.string(variable))
    : Effect.succeed(Option.some(flag))

class StartupError extends Schema.TaggedError<StartupError>()("StartupError", { message: Schema.String }) {}

/** A generated sample match (cached beside the clips) and its rallies. */
const openDemo = Effect.gen(function*() {
  const duration = 60
  const dir = path.join(yield* NodeRallyCache.resolveCacheDir({ cacheDir: args["cache-dir"] }), "demo")
  const video = yield* SampleVideo.cached({ duration, dir })
  const rallies = SampleVideo.sampleRallies(duration, 8).map(({ end, start }) => ({ start, end }))
  return yield* Server.openVideo({ path: video, rallies, id: "demo" })
})

const openStartupVideo = Effect.gen(function*() {
  if (args.demo === true) return Option.some((yield* openDemo).source.id)
  const video = yield* setting(args.video, "RALLYCACHE_VIDEO")
  const rallies = yield* setting(args.rallies, "RALLYCACHE_RALLIES")
  if (Option.isNone(video)) return Option.none<string>()
  if (Option.isNone(rallies)) {
    return yield* new StartupError({ message: "--video needs --rallies FILE (a JSON { rallies: [{ start, end }] })" })
  }
  const fs = yield* FileSystem.FileSystem
  const text = yield* fs.readFileString(rallies.value).pipe(
    Effect.mapError((error) => new StartupError({ message: `cannot read ${rallies.value}: ${error.message}` }))
  )
  const json = yield* Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: () => new StartupError({ message: `${rallies.value} is not JSON (expected { "rallies": [{ "start": 1, "end": 9 }] })` })
  })
  const file = yield* Schema.decodeUnknown(RalliesFile)(json).pipe(
    Effect.mapError((error) => new StartupError({ message: `${rallies.value}: ${describeParseError(error)}` }))
  )
  const opened = yield* Server.openVideo({ path: video.value, rallies: file.rallies, id: file.videoId })
  return Option.some(opened.source.id)
})

const program = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  const address = server.address
  const base = address._tag === "TcpAddress"
    ? `http://${address.hostname === "0.0.0.0" || address.hostname === "::" ? "localhost" : address.hostname}:${address.port}/`
    : `unix:${address.path}`
  const opened = yield* openStartupVideo
  yield* Console.log(`rallycache http-server listening on ${base}`)
  if (Option.isSome(opened)) {
    yield* Console.log(`player: ${base}?video=${encodeURIComponent(opened.value)}`)
  }
  return yield* Effect.never
})

const port = args.port === undefined ? undefined : Number(args.port)
if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) {
  console.error(`--port must be an integer from 0 to 65535, got ${args.port}`)
  process.exit(2)
}

program.pipe(
  Effect.provide(App.layer({ port, host: args.host, cacheDir: args["cache-dir"] })),
  // A typed failure (bad flag, rallies file, RALLYCACHE_* variable, no
  // ffmpeg...) is one line; only defects get a full cause.
  Effect.tapErrorCause((cause) =>
    Option.match(Cause.failureOption(cause), {
      onSome: (error) => Console.error(`http-server: ${error instanceof Error ? error.message : String(error)}`),
      onNone: () => Cause.isInterruptedOnly(cause) ? Effect.void : Effect.logError("http-server stopped", cause)
    })
  ),
  NodeRuntime.runMain({ disableErrorReporting: true })
)
