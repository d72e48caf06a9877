/**
 * `pnpm --filter http-server start -- [--demo | --video PATH --rallies FILE] [options]`
 *
 * Serves the clip API and the player page, and prints the URL. With
 * `--demo`, a generated one-minute sample match is opened and the printed
 * player URL plays it; with `--video` and `--rallies` (or
 * `RALLYCACHE_VIDEO` and `RALLYCACHE_RALLIES`), your video. Relative paths
 * count from the folder the command was typed in (pnpm's `INIT_CWD`), which
 * is also the default media root.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { argvOf, teardown, withOneLineErrors } from "@rallycache/cli/CliErrors"
import { Errors, type RalliesGrammar } from "@rallycache/core"
import { NodeRallyCache, ProcessInfo, RalliesFile, SampleVideo } from "@rallycache/node"
import { Config, Console, Effect, Option } from "effect"
import { HttpServer } from "@effect/platform"
import * as NodePath from "node:path"
import * as App from "./App.js"
import * as Videos from "./Videos.js"

/** Where the user typed the command: pnpm runs scripts inside the package, and says where it started. */
const userDir = ProcessInfo.userDir()
const fromUser = ProcessInfo.fromUser

const port = Options.integer("port").pipe(
  Options.withDescription("Port to listen on, 0 to 65535 (default: PORT, else a free port)"),
  Options.withFallbackConfig(Config.integer("PORT")),
  Options.filterMap(
    (n) => n >= 0 && n < 65536 ? Option.some(n) : Option.none(),
    "--port (or PORT) must be a number from 0 to 65535"
  ),
  Options.optional
)
const host = Options.text("host").pipe(
  Options.withDescription("Address to listen on (default: HOST, else 127.0.0.1)"),
  Options.withFallbackConfig(Config.string("HOST")),
  Options.optional
)
const cacheDir = Options.text("cache-dir").pipe(
  Options.withDescription("Where clips are kept (default: RALLYCACHE_CACHE_DIR, else the user cache folder)"),
  Options.filterMap((dir) => dir.trim() === "" ? Option.none() : Option.some(dir), "--cache-dir is empty (pass a folder, or leave it out for the default)"),
  Options.optional
)
const mediaRoot = Options.text("media-root").pipe(
  Options.withDescription("Only videos under this folder can be registered (default: RALLYCACHE_MEDIA_ROOT, else the current folder)"),
  Options.withFallbackConfig(Config.nonEmptyString("RALLYCACHE_MEDIA_ROOT")),
  Options.optional
)
const video = Options.text("video").pipe(
  Options.withDescription("A video to open at start (default: RALLYCACHE_VIDEO)"),
  Options.withFallbackConfig(Config.nonEmptyString("RALLYCACHE_VIDEO")),
  Options.optional
)
const rallies = Options.text("rallies").pipe(
  Options.withDescription("Its rallies file (default: RALLYCACHE_RALLIES)"),
  Options.withFallbackConfig(Config.nonEmptyString("RALLYCACHE_RALLIES")),
  Options.optional
)
const demo = Options.boolean("demo").pipe(Options.withDescription("Open a generated one-minute sample match"))
const runtimeMetrics = Options.boolean("runtime-metrics").pipe(
  Options.withDescription("Also list Effect's runtime metrics (effect_fiber_*) at /metrics")
)

/** A generated sample match (cached beside the clips) and its rallies. */
const openDemo = (dir: Option.Option<string>) =>
  Effect.gen(function*() {
    const duration = 60
    const root = yield* NodeRallyCache.resolveCacheDir({ cacheDir: Option.getOrUndefined(dir) })
    const path = yield* SampleVideo.cached({ duration, dir: NodePath.join(root, "demo") })
    const sample = SampleVideo.sampleRallies(duration, 8).map(({ end, start }) => ({ start, end }))
    return yield* Videos.openVideo({ path, rallies: sample, id: "demo" })
  })

const command = Command.make(
  "http-server",
  { port, host, cacheDir, mediaRoot, video, rallies, demo, runtimeMetrics },
  (args) => {
    // Checked before the server starts: bad input is one line and exit 2.
    const startup = Effect.gen(function*() {
      if (args.demo || Option.isNone(args.video)) return Option.none()
      if (Option.isNone(args.rallies)) {
        return yield* new Errors.InvalidInput({
          field: "--video",
          reason: "needs --rallies FILE",
          fix: "pass the video's rallies file, or use --demo"
        })
      }
      const file = yield* RalliesFile.read(fromUser(args.rallies.value), { hint: "check the --rallies path" })
      return Option.some({ path: fromUser(args.video.value), file })
    })
    const openAtStart = (video: Option.Option<{ readonly path: string; readonly file: RalliesGrammar.RalliesFile }>) =>
      Effect.gen(function*() {
        if (args.demo) return Option.some((yield* openDemo(args.cacheDir)).source.id)
        if (Option.isNone(video)) return Option.none<string>()
        const { file, path } = video.value
        const opened = yield* Videos.openVideo({ path, rallies: file.rallies, id: file.videoId })
        return Option.some(opened.source.id)
      })
    const program = (video: Option.Option<{ readonly path: string; readonly file: RalliesGrammar.RalliesFile }>) =>
      Effect.gen(function*() {
        const server = yield* HttpServer.HttpServer
        const address = server.address
        const base = address._tag === "TcpAddress"
          ? `http://${
            address.hostname === "0.0.0.0" || address.hostname === "::" ? "localhost" : address.hostname
          }:${address.port}/`
          : `unix:${address.path}`
        const opened = yield* openAtStart(video)
        yield* Console.log(`rallycache http-server listening on ${base}`)
        if (Option.isSome(opened)) yield* Console.log(`player: ${base}?video=${encodeURIComponent(opened.value)}`)
        else {
          yield* Console.log(
            `no video opened: register one under ${
              fromUser(Option.getOrElse(args.mediaRoot, () => userDir))
            } from the page, or start with --demo`
          )
        }
        return yield* Effect.never
      })
    return Effect.flatMap(startup, (video) =>
      program(video).pipe(Effect.provide(App.layer({
        port: Option.getOrUndefined(args.port),
        host: Option.getOrUndefined(args.host),
        cacheDir: Option.getOrUndefined(Option.map(args.cacheDir, fromUser)),
        server: {
          mediaRoot: fromUser(Option.getOrElse(args.mediaRoot, () => userDir)),
          runtimeMetrics: args.runtimeMetrics
        }
      }))))
  }
).pipe(Command.withDescription("The rallycache clip service and its player page"))

const argv = argvOf(process.argv)
const main = Command.run(command, { name: "http-server", version: "0.1.0" })(argv).pipe(
  // @effect/cli's own multi-line error report is replaced by one line at the end.
  withOneLineErrors,
  Effect.provide(NodeContext.layer)
)

NodeRuntime.runMain(main, {
  disableErrorReporting: true,
  // A server stopped by Ctrl-C or SIGTERM stopped as asked: exit code 0.
  teardown: teardown({ prefix: "http-server", argv, interrupted: 0 })
})
