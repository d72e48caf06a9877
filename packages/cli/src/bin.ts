#!/usr/bin/env node
/**
 * The `rallycache` executable.
 *
 * Runs under `NodeRuntime.runMain`, so Ctrl-C (SIGINT) or SIGTERM interrupts
 * the program: running ffmpeg processes end, temp files are removed and the
 * index stays intact. A second Ctrl-C exits at once.
 *
 * @since 0.1.0
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as ProcessInfo from "@rallycache/node/ProcessInfo"
import { Effect, Logger } from "effect"
import * as Cli from "./Cli.js"
import { CacheLayer } from "./internal/common.js"
import { exitCodeOfExit } from "./CliErrors.js"
import * as NodeLayer from "./internal/nodeLayer.js"

// Relative paths (the video, --rallies, --out, --cache-dir...) count from the
// folder the user typed the command in, also through `pnpm -C repo rallycache`.
process.chdir(ProcessInfo.userDir())

let interrupts = 0
process.on("SIGINT", () => {
  interrupts++
  if (interrupts > 1) {
    process.stderr.write("\ninterrupted again: exiting now\n")
    process.exit(130)
  }
  process.stderr.write("\nstopping (press Ctrl-C again to exit at once)\n")
})

const program = Cli.run(process.argv).pipe(
  Effect.provideService(CacheLayer, NodeLayer),
  Effect.provide(NodeContext.layer),
  // Logs (an orphan reaped at start-up, a warning) go to stderr: stdout is the
  // command's output, and with --json it must be exactly one JSON object.
  Effect.provide(Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true })))
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  disablePrettyLogger: true,
  teardown: (exit, onExit) => {
    const code = exitCodeOfExit(exit)
    onExit(code)
    // Exit even if a library left a handle open: the work is done.
    process.exit(code)
  }
})
