/**
 * How the object store reports what went wrong: a `CacheIOError` naming the
 * operation and the key, object or table; a warning for what a later run
 * repairs (an object left for the sweep, a touch not saved).
 *
 * @internal
 */
import { Errors } from "@rallycache/core"
import { Effect } from "effect"

export const ioError = (op: string, path: string) => (error: unknown) =>
  new Errors.CacheIOError({ op, path, reason: error instanceof Error ? error.message : String(error) })

export const logFailure = (what: string) => (error: { readonly message: string }) =>
  Effect.logWarning(`rallycache/s3: ${what}: ${error.message}`)
