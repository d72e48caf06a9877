/**
 * How the example programs report a failure: one line saying what is wrong,
 * and exit code 2 for bad flags or bad input, 1 for anything else.
 *
 * @since 0.1.0
 */
import { HelpDoc, ValidationError } from "@effect/cli"
import { Errors } from "@rallycache/core"
import { Effect } from "effect"

const ansi = /\u001b\[[0-9;]*m/g

/** @effect/cli's "'abc' is not a integer" names neither the flag nor the article: both added from argv. */
const namedValueError = (text: string, argv: ReadonlyArray<string>): string => {
  const match = /^'(.*)' is not a (\w+)$/.exec(text)
  if (match === null) return text
  const [, value = "", type = ""] = match
  const article = /^[aeiou]/.test(type) ? "an" : "a"
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const flag = arg === value && argv[i - 1]?.startsWith("--") ? argv[i - 1] : arg.endsWith(`=${value}`) ? arg.split("=")[0] : undefined
    if (flag !== undefined && flag.startsWith("--")) return `${flag}: '${value}' is not ${article} ${type}`
  }
  return `'${value}' is not ${article} ${type}`
}

/**
 * A failure as one line: what is wrong and how to fix it.
 *
 * @since 0.1.0
 * @category formatting
 */
export const oneLine = (error: unknown, argv: ReadonlyArray<string> = process.argv): string => {
  const text = ValidationError.isValidationError(error)
    ? namedValueError(HelpDoc.toAnsiText(error.error).replace(ansi, "").replace(/\s+/g, " ").trim(), argv)
    : error instanceof Error
    ? error.message
    : String(error)
  return text.replace(/\s+/g, " ").trim()
}

/**
 * Run `effect` with what it logs (@effect/cli's `--help` and `--version`)
 * stripped of colour codes when stdout is not a terminal, or `NO_COLOR` is
 * set: `--help | cat` and `--help > file` are plain text.
 *
 * @since 0.1.0
 * @category formatting
 */
export const plainUnlessTerminal = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  process.stdout.isTTY === true && process.env["NO_COLOR"] === undefined && process.env["TERM"] !== "dumb"
    ? effect
    : Effect.flatMap(Effect.console, (console) => {
      const plain = (args: ReadonlyArray<unknown>) =>
        args.map((arg) => typeof arg === "string" ? arg.replace(ansi, "") : arg)
      return Effect.withConsole(effect, {
        ...console,
        log: (...args) => console.log(...plain(args)),
        unsafe: { ...console.unsafe, log: (...args) => console.unsafe.log(...plain(args)) }
      })
    })

/**
 * Bad flags and bad input are exit code 2; anything else 1.
 *
 * @since 0.1.0
 * @category formatting
 */
export const exitCodeOf = (error: unknown): number =>
  ValidationError.isValidationError(error) || Errors.isInputError(error) ? 2 : 1

/**
 * The program's arguments without the `--` that `pnpm start -- --flag` passes through.
 *
 * @since 0.1.0
 * @category arguments
 */
export const argvOf = (argv: ReadonlyArray<string>): Array<string> =>
  argv[2] === "--" ? [...argv.slice(0, 2), ...argv.slice(3)] : [...argv]

/**
 * Run `effect` with @effect/cli's own multi-line error report silenced: the
 * program prints its one line (`oneLine`) instead.
 *
 * @since 0.1.0
 * @category formatting
 */
export const withoutCliErrorReport = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(Effect.console, (console) =>
    Effect.withConsole(effect, {
      ...console,
      error: () => Effect.void,
      unsafe: { ...console.unsafe, error: () => {} }
    }))
