/**
 * How a rallycache program ends: the one rule the `rallycache` command and
 * the example programs share. A failure is printed as one line saying what is
 * wrong (and, from the error's own message, how to fix it), never a stack
 * trace, and the process exits with
 *
 * - `0` success,
 * - `1` a runtime failure (an export that failed, a defect),
 * - `2` bad usage or bad input (flags, arguments, files, rallies),
 * - `130` interrupted (Ctrl-C, SIGTERM).
 *
 * Needs only `effect`, `@effect/cli` and `@rallycache/core`; import it by its
 * own path (`@rallycache/cli/CliErrors`) to keep a program's start-up light.
 *
 * @since 0.1.0
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Errors from "@rallycache/core/Errors"
import { Cause, Data, Effect, Exit, Option, Predicate } from "effect"

/**
 * The exit codes of a rallycache program.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const ExitCode = {
  success: 0,
  failure: 1,
  usage: 2,
  interrupted: 130
} as const

/**
 * One of the exit codes in `ExitCode`.
 *
 * @since 0.1.0
 * @category exit codes
 */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode]

/**
 * Bad usage found by a program itself (an `--only` out of range, a missing
 * command...): always exit code 2.
 *
 * @since 0.1.0
 * @category errors
 */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/**
 * The end of a run whose message was already printed, with the exit code to
 * end it with.
 *
 * @since 0.1.0
 * @category errors
 */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: number }> {}

const ansi = /\u001b\[[0-9;]*[A-Za-z]/g

/**
 * Text without ANSI escape sequences (colours, bold...).
 *
 * @since 0.1.0
 * @category formatting
 */
export const stripAnsi = (text: string): string => text.replace(ansi, "")

/**
 * Any text on one line, without colour codes, and of a readable length (at
 * most 500 characters).
 *
 * @since 0.1.0
 * @category formatting
 */
export const oneLine = (text: string): string => {
  const flat = stripAnsi(text).replace(/\s+/g, " ").trim()
  return flat.length > 500 ? flat.slice(0, 499) + "…" : flat
}

/**
 * The exit code for a failure: 2 for bad usage or bad input (@effect/cli's
 * `ValidationError`, `UsageError`, the core's input errors), the code a
 * `CliExit` carries, 1 for anything else.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const exitCodeOf = (error: unknown): number => {
  if (error instanceof CliExit) return error.code
  if (ValidationError.isValidationError(error) || error instanceof UsageError || Errors.isInputError(error)) {
    return ExitCode.usage
  }
  return ExitCode.failure
}

/**
 * The first failure (or else the first defect) of a cause, if any.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const firstError = (cause: Cause.Cause<unknown>): Option.Option<unknown> =>
  Option.orElse(Cause.failureOption(cause), () => Cause.dieOption(cause))

/**
 * The exit code for how a program ended: 0 on success, 130 when it was only
 * interrupted (a server that stops on SIGTERM as it should passes
 * `{ interrupted: 0 }`), else `exitCodeOf` its first failure or defect.
 *
 * @since 0.1.0
 * @category exit codes
 */
export const exitCodeOfExit = (
  exit: Exit.Exit<unknown, unknown>,
  options?: { readonly interrupted?: number }
): number => {
  if (Exit.isSuccess(exit)) return ExitCode.success
  if (Cause.isInterruptedOnly(exit.cause)) return options?.interrupted ?? ExitCode.interrupted
  return Option.match(firstError(exit.cause), { onNone: () => ExitCode.failure, onSome: exitCodeOf })
}

/** @effect/cli's "'abc' is not a integer" names neither the flag nor the article: both added from argv. */
const namedValueError = (text: string, argv: ReadonlyArray<string>): string => {
  const match = /^'(.*)' is not a (\w+)$/.exec(text)
  if (match === null) return text
  const [, value = "", type = ""] = match
  const article = /^[aeiou]/.test(type) ? "an" : "a"
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const flag = arg === value && argv[i - 1]?.startsWith("--")
      ? argv[i - 1]
      : arg.endsWith(`=${value}`)
      ? arg.split("=")[0]
      : undefined
    if (flag !== undefined && flag.startsWith("--")) return `${flag}: '${value}' is not ${article} ${type}`
  }
  return `'${value}' is not ${article} ${type}`
}

/**
 * A failure as one line: what is wrong and how to fix it. A bad value of a
 * flag is named by the flag found in `argv`; with `program`, a usage error
 * ends with `(see PROGRAM --help)`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const messageOf = (
  error: unknown,
  options?: { readonly argv?: ReadonlyArray<string>; readonly program?: string }
): string => {
  if (ValidationError.isValidationError(error)) {
    const text = namedValueError(oneLine(HelpDoc.toAnsiText(error.error)), options?.argv ?? [])
    const hint = options?.program === undefined || ValidationError.isHelpRequested(error)
      ? ""
      : ` (see ${options.program} --help)`
    return `${text.length > 0 ? text : "invalid command line"}${hint}`
  }
  if (error instanceof Error) {
    const message = oneLine(error.message)
    if (message.length > 0) return message
  }
  if (Predicate.hasProperty(error, "_tag")) return oneLine(`${String(error._tag)} ${JSON.stringify(error)}`)
  return oneLine(String(error))
}

/**
 * The program's arguments (as in `process.argv`) without the `--` that
 * `pnpm start -- --flag` passes through.
 *
 * @since 0.1.0
 * @category arguments
 */
export const argvOf = (argv: ReadonlyArray<string>): Array<string> =>
  argv[2] === "--" ? [...argv.slice(0, 2), ...argv.slice(3)] : [...argv]

/**
 * Whether colour codes belong on `stream`: a terminal, `TERM` not `dumb`,
 * `NO_COLOR` not set.
 *
 * @since 0.1.0
 * @category formatting
 */
export const colorOn = (stream: "stdout" | "stderr"): boolean =>
  process[stream].isTTY === true && process.env["TERM"] !== "dumb" && process.env["NO_COLOR"] === undefined

/**
 * Run `effect` (a `Command.run`) with @effect/cli's own multi-line, coloured
 * error report silenced, so the program prints its one line (`messageOf`)
 * instead; what it logs (`--help`, `--version`) goes to stdout stripped of
 * colour codes unless `colorOn("stdout")`, then through `rewrite` if given.
 *
 * @since 0.1.0
 * @category running
 */
export const withOneLineErrors = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  rewrite: (text: string) => string = (text) => text
): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.console, (console) => {
    const color = colorOn("stdout")
    const plain = (args: ReadonlyArray<unknown>) =>
      args.map((arg) => typeof arg !== "string" ? arg : rewrite(color ? arg : stripAnsi(arg)))
    return Effect.withConsole(effect, {
      ...console,
      log: (...args) => console.log(...plain(args)),
      error: () => Effect.void,
      unsafe: {
        ...console.unsafe,
        log: (...args) => console.unsafe.log(...plain(args)),
        error: () => {}
      }
    })
  })

/**
 * A `teardown` for `NodeRuntime.runMain` that ends a program by this rule: a
 * failure (not a mere interruption) is written to stderr as one line,
 * `prefix: message` with `prefix`, then the process exits with
 * `exitCodeOfExit` (`interrupted` as there). With `fullDefects`, a defect,
 * being a bug, is written with its whole cause instead of one line.
 *
 * @since 0.1.0
 * @category running
 */
export const teardown = (options?: {
  readonly prefix?: string
  readonly argv?: ReadonlyArray<string>
  readonly interrupted?: number
  readonly fullDefects?: boolean
}) =>
<E, A>(exit: Exit.Exit<E, A>, onExit: (code: number) => void): void => {
  if (Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause)) {
    const name = options?.prefix
    const text = Option.isNone(Cause.failureOption(exit.cause)) && options?.fullDefects === true
      ? `${name === undefined ? "" : `${name} `}stopped: ${Cause.pretty(exit.cause)}`
      : `${name === undefined ? "" : `${name}: `}${
        messageOf(Option.getOrElse(firstError(exit.cause), () => "unknown failure"), options)
      }`
    process.stderr.write(`${text}\n`)
  }
  onExit(exitCodeOfExit(exit, options))
}
