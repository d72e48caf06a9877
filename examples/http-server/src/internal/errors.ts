/**
 * From the engine's failures to the API's: each core error becomes the API
 * error of the same name (its status declared in `ApiErrors`) with its
 * one-line message, a cluster's `ClusterUnavailable` included (503); bad
 * input becomes a `HttpApiDecodeError` naming the field; anything else is
 * logged and answered as `InternalError`.
 */
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import { Errors } from "@rallycache/core"
import { Cause, Effect, Option, Predicate } from "effect"
import * as ApiErrors from "../ApiErrors.js"

/** One line of sane length, whatever the text. */
export const oneLine = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > 300 ? flat.slice(0, 299) + "…" : flat
}

const byTag = {
  InvalidRally: ApiErrors.InvalidRally,
  OutsideMediaRoot: ApiErrors.OutsideMediaRoot,
  MediaNotFound: ApiErrors.MediaNotFound,
  SourceNotFound: ApiErrors.SourceNotFound,
  UnknownVideo: ApiErrors.UnknownVideo,
  RallyNotFound: ApiErrors.RallyNotFound,
  SourceUnreadable: ApiErrors.SourceUnreadable,
  NotMediaFile: ApiErrors.NotMediaFile,
  UnsupportedSource: ApiErrors.UnsupportedSource,
  ExportCancelled: ApiErrors.ExportCancelled,
  // Matched by its tag: the example does not depend on @rallycache/cluster, whose front serves it.
  ClusterUnavailable: ApiErrors.ClusterUnavailable
} as const

type Mapped = keyof typeof byTag

/** What a failure tagged `Tag` becomes. */
export type ApiErrorOf<Tag> = Tag extends Mapped ? InstanceType<(typeof byTag)[Tag]>
  : Tag extends "InvalidInput" ? HttpApiDecodeError
  : ApiErrors.InternalError

/** A bad request whose one-line message names `field` (`rallies[0].start`, `body`). */
export const badRequest = (field: string, reason: string): HttpApiDecodeError =>
  new HttpApiDecodeError({
    issues: [{ _tag: "Type", path: [field], message: oneLine(reason) }],
    message: oneLine(`${field}: ${reason}`)
  })

/**
 * The API error for an engine failure: the declared error of the same name,
 * a bad request for `InvalidInput`, else (logged) `InternalError`.
 */
export const toApiError = <E extends { readonly _tag: string; readonly message: string }>(
  error: E
): Effect.Effect<never, ApiErrorOf<E["_tag"]>> => {
  const tag = error._tag
  if (tag in byTag) {
    const make = byTag[tag as Mapped]
    return Effect.fail(new make({ message: oneLine(error.message) }) as ApiErrorOf<E["_tag"]>)
  }
  if (error instanceof Errors.InvalidInput) {
    const reason = error.fix === undefined ? error.reason : `${error.reason} (${error.fix})`
    return Effect.fail(badRequest(error.field, reason) as ApiErrorOf<E["_tag"]>)
  }
  return Effect.logError("request failed", error).pipe(
    Effect.zipRight(
      Effect.fail(
        new ApiErrors.InternalError({ message: "internal error (see the server log)" }) as ApiErrorOf<E["_tag"]>
      )
    )
  )
}

/**
 * A cluster front's `RallyCache` (`@rallycache/cluster`) dies with its typed
 * `ClusterUnavailable` where the core API has no place for it: answered as
 * the 503 of the same name, not as an internal error.
 */
const clusterUnavailable = (defect: unknown): Option.Option<Effect.Effect<never, ApiErrors.ClusterUnavailable>> =>
  Predicate.isTagged(defect, "ClusterUnavailable") && defect instanceof Error
    ? Option.some(Effect.fail(new ApiErrors.ClusterUnavailable({ message: oneLine(defect.message) })))
    : Option.none()

/** Map every failure of `effect` with `toApiError` (and a cluster's `ClusterUnavailable` defect to its 503). */
export const mapErrors = <A, E extends { readonly _tag: string; readonly message: string }, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, ApiErrorOf<E["_tag"]> | ApiErrors.ClusterUnavailable, R> =>
  Effect.catchAll(effect, toApiError).pipe(Effect.catchSomeDefect(clusterUnavailable))

const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`
  }
  return out
}

/**
 * A schema failure as one line naming the field of its first issue
 * (`rallies[0].start: ...`, `n: ...`, `body: ...` for the whole body).
 */
export const oneLineDecodeError = (error: HttpApiDecodeError): HttpApiDecodeError => {
  const first = error.issues[0]
  if (first === undefined) return new HttpApiDecodeError({ issues: error.issues, message: oneLine(error.message) })
  const field = first.path.length === 0 ? "body" : formatPath(first.path)
  return new HttpApiDecodeError({ issues: error.issues, message: oneLine(`${field}: ${first.message}`) })
}

/**
 * Rewrite a `HttpApiDecodeError` failure of `effect` (the schemas' own
 * multi-line report) as one line; every other outcome passes through.
 */
export const withOneLineDecodeErrors = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.catchAllCause(effect, (cause) => {
    const failure = Cause.failureOption(cause)
    if (Option.isSome(failure) && failure.value instanceof HttpApiDecodeError) {
      return Effect.fail(oneLineDecodeError(failure.value) as E)
    }
    return Effect.failCause(cause)
  })
