/**
 * Sources given as `http://` or `https://` URLs: ffmpeg and ffprobe read them
 * with ranged requests, so runners need no shared disk. The fingerprint comes
 * from the server's answer to a HEAD (a ranged GET of one byte where HEAD is
 * refused, as presigned S3 URLs do): ETag, Last-Modified and length.
 *
 * @internal
 */
import { FetchHttpClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { Errors } from "@rallycache/core"
import { Duration, Effect } from "effect"
import * as NodeCrypto from "node:crypto"
import * as NodePath from "node:path"

/** Whether `path` names an HTTP(S) source rather than a file. @internal */
export const isUrl = (path: string): boolean => /^https?:\/\//i.test(path)

/** A source path as the engine keeps it: URLs as given, files made absolute. @internal */
export const resolveSource = (path: string): string => isUrl(path) ? path : NodePath.resolve(path)

/** The fingerprints `statUrl` makes: `s<bytes>-u<hash of ETag and Last-Modified>`. @internal */
export const urlFingerprint = /^s\d+-u[0-9a-f]{16}$/

/** The URL without its query, for messages: a presigned URL's query carries a signature. @internal */
export const shownUrl = (url: string): string => url.replace(/[?#].*$/, "")

const timeout = Duration.seconds(15)

type StatError = Errors.SourceNotFound | Errors.SourceUnreadable | Errors.NotMediaFile

/** A one-line reason from a fetch failure: the socket error's code (ECONNREFUSED, ENOTFOUND) where a cause names one. */
const reasonOf = (error: unknown): string => {
  let text = error instanceof Error ? error.message : String(error)
  for (let cause: unknown = error; typeof cause === "object" && cause !== null; cause = (cause as { cause?: unknown }).cause) {
    const code = (cause as { code?: unknown }).code
    if (typeof code === "string") {
      text = code
      break
    }
  }
  return `cannot reach the server (${text.replace(/\s+/g, " ")})`
}

/**
 * The fingerprint of the source at `url`, with the typed errors of a bad
 * source: a 404 or 410 is `SourceNotFound`, another refusal or no connection
 * is `SourceUnreadable`, an empty body is `NotMediaFile`.
 *
 * @internal
 */
export const statUrl = (url: string): Effect.Effect<string, StatError> =>
  Effect.gen(function*() {
    const shown = shownUrl(url)
    const client = (yield* HttpClient.HttpClient).pipe(HttpClient.withTracerPropagation(false))
    const send = (request: HttpClientRequest.HttpClientRequest) =>
      client.execute(request).pipe(
        Effect.timeoutFail({
          duration: timeout,
          onTimeout: () =>
            new Errors.SourceUnreadable({
              path: shown,
              reason: `the server did not answer within ${Duration.format(timeout)}`
            })
        }),
        Effect.catchTag("RequestError", "ResponseError", (error) =>
          Effect.fail(new Errors.SourceUnreadable({ path: shown, reason: reasonOf(error.cause ?? error) })))
      )
    let response = yield* send(HttpClientRequest.head(url))
    let length = Number(response.headers["content-length"] ?? NaN)
    // Servers that refuse HEAD (presigned S3 URLs are signed for GET) answer a one-byte ranged GET.
    if ([403, 405, 501].includes(response.status) || !Number.isFinite(length)) {
      response = yield* send(HttpClientRequest.get(url).pipe(HttpClientRequest.setHeader("range", "bytes=0-0")))
      // The body is one byte, or the whole file from a server without ranges: either way not read.
      const total = /\/(\d+)$/.exec(response.headers["content-range"] ?? "")?.[1]
      length = total !== undefined ? Number(total) : Number(response.headers["content-length"] ?? NaN)
    }
    if (response.status === 404 || response.status === 410) {
      return yield* new Errors.SourceNotFound({ path: shown })
    }
    if (response.status >= 400) {
      return yield* new Errors.SourceUnreadable({ path: shown, reason: `the server answered HTTP ${response.status}` })
    }
    if (length === 0) {
      return yield* new Errors.NotMediaFile({ path: shown, detail: "the server sent an empty body" })
    }
    const etag = response.headers["etag"] ?? ""
    const modified = response.headers["last-modified"] ?? ""
    const hash = NodeCrypto.createHash("sha1").update(`${etag}\n${modified}`).digest("hex").slice(0, 16)
    return `s${Number.isFinite(length) ? length : 0}-u${hash}`
  }).pipe(Effect.scoped, Effect.provide(FetchHttpClient.layer))
