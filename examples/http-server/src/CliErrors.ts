/**
 * How the example programs report a failure: one line saying what is wrong,
 * and exit code 2 for bad flags or bad input, 1 for anything else.
 *
 * @since 0.1.0
 */
import { HelpDoc, ValidationError } from "@effect/cli"
import { Errors } from "@rallycache/core"

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
