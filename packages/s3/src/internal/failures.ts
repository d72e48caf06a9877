/**
 * How the object store reports what went wrong: a `CacheIOError` naming the
 * operation and the key, object or table; a warning for what a later run
 * repairs (an object left for the sweep, a touch not saved).
 *
 * @internal
 */
import { Errors } from "@rallycache/core"
import { Effect } from "effect"

/** The message of `error` and of its cause (a `SqlError` says only "Failed to execute statement" itself). */
const reasonOf = (error: unknown): string => {
  if (!(error instanceof Error)) return String(error)
  const cause = error.cause instanceof Error ? error.cause.message : undefined
  return cause === undefined || cause === error.message ? error.message : `${error.message}: ${cause}`
}

export const ioError = (op: string, path: string) => (error: unknown) =>
  new Errors.CacheIOError({ op, path, reason: reasonOf(error) })

export const logFailure = (what: string) => (error: { readonly message: string }) =>
  Effect.logWarning(`rallycache/s3: ${what}: ${error.message}`)
