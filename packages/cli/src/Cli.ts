/**
 * The `rallycache` command tree, and `run`, which turns any failure into
 * one line on stderr and an exit code by the rule of `CliErrors`.
 *
 * @since 0.1.0
 */
import { Command } from "@effect/cli"
import type { CliApp } from "@effect/cli"
import type { CommandExecutor } from "@effect/platform"
import { Cause, Effect, HashMap, Logger, LogLevel, Option } from "effect"
import { createRequire } from "node:module"
import * as CacheCommand from "./commands/cache.js"
import * as Demo from "./commands/demo.js"
import * as Doctor from "./commands/doctor.js"
import * as Export from "./commands/export.js"
import * as Get from "./commands/get.js"
import * as Watch from "./commands/watch.js"
import type { CacheLayer } from "./internal/common.js"
import { CliExit, exitCodeOf, firstError, messageOf, oneLine, UsageError, withOneLineErrors } from "./CliErrors.js"
import { verboseDetail } from "./internal/verbose.js"
import * as Output from "./internal/output.js"

/**
 * The version printed by `--version`: the package's own, read from its
 * `package.json` (by the package's name, so the compiled modules and the
 * bundled bin find the same file).
 *
 * @since 0.1.0
 * @category utils
 */
export const version: string = (createRequire(import.meta.url)("@rallycache/cli/package.json") as { version: string })
  .version

const commands = "export, get, watch, cache, doctor or demo"

/**
 * The root command.
 *
 * @since 0.1.0
 * @category utils
 */
export const root = Command.make(
  "rallycache",
  {},
  () =>
    Effect.fail(
      new UsageError({ message: `missing command: use ${commands} (rallycache --help lists them; try rallycache demo)` })
    )
).pipe(
  Command.withDescription(
    "Cut a match video into rally clips in the background, in the order a viewer needs them, through a bounded on-disk cache"
  ),
  Command.withSubcommands([
    Export.command,
    Get.command,
    Watch.command,
    CacheCommand.command,
    Doctor.command,
    Demo.command
  ])
)

const cli = Command.run(root, { name: "rallycache", version })

/**
 * The usage line of a subcommand's help names the whole command a user
 * types (`$ rallycache cache stats ...`); @effect/cli writes only the
 * subcommand's own name (`$ stats ...`).
 */
const fullUsage = (argv: ReadonlyArray<string>) => {
  const path: Array<string> = []
  const [first, second] = argv.slice(2)
  if (first !== undefined && HashMap.has(Command.getSubcommands(root), first)) {
    path.push(first)
    if (first === "cache" && second !== undefined && HashMap.has(Command.getSubcommands(CacheCommand.command), second)) {
      path.push(second)
    }
  }
  const last = path[path.length - 1]
  return (text: string): string =>
    last === undefined ? text : text.replace(
      new RegExp(`^((?:\\u001b\\[[0-9;]*m)*)\\$ ${last}(?=\\s|\\u001b|$)`, "m"),
      `$1$ rallycache ${path.join(" ")}`
    )
}

/**
 * Library logs go to stderr, one line each, so stdout only ever holds the
 * result (`--json` stays parseable): warnings and errors always, info and
 * causes with `--verbose`.
 */
const stderrLogger = (verbose: boolean) =>
  Logger.make(({ cause, logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map((m) => typeof m === "string" ? m : String(m))
      .join(" ")
    process.stderr.write(`${logLevel.label.toLowerCase()}: ${oneLine(text)}\n`)
    if (verbose && !Cause.isEmpty(cause)) process.stderr.write(Cause.pretty(cause) + "\n")
  })

/**
 * Run the CLI on `argv` (as in `process.argv`). Fails only with `CliExit`
 * (after printing the error) or by interruption.
 *
 * @since 0.1.0
 * @category utils
 */
export const run = (
  argv: ReadonlyArray<string>
): Effect.Effect<void, CliExit, CacheLayer | CliApp.CliApp.Environment | CommandExecutor.CommandExecutor> => {
  const verbose = argv.includes("--verbose")
  // @effect/cli's own multi-line parse errors give way to one line of the CLI's.
  return withOneLineErrors(cli(argv), fullUsage(argv)).pipe(
    Effect.catchAllCause((cause) => {
      if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause as Cause.Cause<never>)
      const error = Option.getOrElse(firstError(cause), () => "unknown failure")
      if (error instanceof CliExit) return Effect.fail(error)
      return Effect.gen(function*() {
        yield* Output.stderr(messageOf(error, { argv, program: "rallycache" }))
        if (verbose) yield* Output.stderr(verboseDetail(cause))
        return yield* new CliExit({ code: exitCodeOf(error) })
      })
    }),
    Effect.onInterrupt(() => Output.stderr("interrupted: running exports were stopped and their temp files removed")),
    Effect.provide(Logger.replace(Logger.defaultLogger, stderrLogger(verbose))),
    Logger.withMinimumLogLevel(verbose ? LogLevel.Info : LogLevel.Warning)
  )
}
