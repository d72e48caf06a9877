/**
 * How the CLI turns failures into one line on stderr and an exit code:
 * 0 success, 1 runtime failure, 2 bad usage or bad input, 130 interrupted.
 *
 * @internal
 */
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Errors from "@rallycache/core/Errors"
import { Cause, Data, Option, Predicate } from "effect"

/**
 * Bad usage found by the CLI itself (an `--only` out of range, a missing
 * file...). Always exit code 2.
 *
 * @internal
 */
export class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

/**
 * The end of a run with a given exit code, after its message was printed.
 *
 * @internal
 */
export class CliExit extends Data.TaggedError("CliExit")<{ readonly code: number }> {}

/** Text without ANSI escape sequences. @internal */
export const stripAnsi = (text: string): string => text.replace(/\u001b\[[0-9;]*[A-Za-z]/g, "")

/** Keep any text on one line and of a readable length. */
export const oneLine = (text: string): string => {
  const flat = stripAnsi(text).replace(/\s+/g, " ").trim()
  return flat.length > 500 ? flat.slice(0, 499) + "…" : flat
}

/**
 * The exit code for a failure.
 *
 * @internal
 */
export const exitCodeOf = (error: unknown): number => {
  if (ValidationError.isValidationError(error)) return 2
  if (error instanceof UsageError || Errors.isInputError(error)) return 2
  return 1
}

/**
 * One line saying what is wrong (and, from the error's own message, how to
 * fix it).
 *
 * @internal
 */
export const messageOf = (error: unknown): string => {
  if (ValidationError.isValidationError(error)) {
    const text = oneLine(HelpDoc.toAnsiText(error.error))
    const hint = ValidationError.isHelpRequested(error) ? "" : " (see rallycache --help)"
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
 * The first failure (or defect) of a cause, if any.
 *
 * @internal
 */
export const firstError = (cause: Cause.Cause<unknown>): Option.Option<unknown> =>
  Option.orElse(Cause.failureOption(cause), () => Cause.dieOption(cause))

/**
 * ffmpeg's own last stderr lines carried by a failure, for `--verbose`.
 *
 * @internal
 */
export const ffmpegSaid = (error: unknown): string | undefined =>
  Predicate.hasProperty(error, "stderr") && typeof error.stderr === "string" && error.stderr.length > 0
    ? `ffmpeg said:\n${error.stderr}`
    : undefined

/**
 * Extra detail printed with `--verbose`: ffmpeg's stderr, the full cause.
 *
 * @internal
 */
export const verboseDetail = (cause: Cause.Cause<unknown>): string => {
  const parts: Array<string> = []
  for (const error of Cause.failures(cause)) {
    const said = ffmpegSaid(error)
    if (said !== undefined) parts.push(said)
  }
  parts.push(Cause.pretty(cause, { renderErrorCause: true }))
  return parts.join("\n")
}
