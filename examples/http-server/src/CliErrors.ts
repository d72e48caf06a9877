/**
 * How the example programs report a failure: one line saying what is wrong,
 * and exit code 2 for bad flags or bad input, 1 for anything else.
 *
 * @since 0.1.0
 */
import { HelpDoc, ValidationError } from "@effect/cli"
import { Errors } from "@rallycache/core"
import { Effect } from "effect"

/**
 * A failure as one line: what is wrong and how to fix it.
 *
 * @since 0.1.0
 * @category formatting
 */
export const oneLine = (error: unknown): string => {
  const text = ValidationError.isValidationError(error)
    ? HelpDoc.toAnsiText(error.error).replace(/\u001b\[[0-9;]*m/g, "")
    : error instanceof Error
    ? error.message
    : String(error)
  return text.replace(/\s+/g, " ").trim()
}

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
