/**
 * The `JsonBody` middleware of `ViewerApi`: a JSON body is read only when
 * its declared `Content-Length` is at most `maxJsonBytes` (a larger one is
 * refused with 413 before any byte is read; one of unknown length, chunked,
 * with 411, since stopping it midway would cut the connection before the
 * answer), and it must parse as JSON (else 400). The text read here is
 * cached by the request, so the builder decodes it without reading again.
 * Node answers a request whose body was left unread with
 * `Connection: close`, so a client still sending is told to stop.
 */
import { HttpIncomingMessage, HttpServerRequest } from "@effect/platform"
import { Effect, Layer, Option } from "effect"
import { maxJsonBytes } from "../Api.js"
import { BodyTooLarge, LengthRequired } from "../ApiErrors.js"
import { JsonBody } from "../ViewerApi.js"
import { badRequest } from "./errors.js"

const check = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const declared = request.headers["content-length"]
  if (declared === undefined) {
    return yield* new LengthRequired({
      message: "the request has no Content-Length (send the JSON body with its length, not chunked)"
    })
  }
  if (!(Number(declared) <= maxJsonBytes)) {
    return yield* new BodyTooLarge({
      message: `the request body is larger than ${maxJsonBytes} bytes (send a JSON body of at most that size)`
    })
  }
  // Node holds the body to its declared length; the limit is a second guard.
  const text = yield* request.text.pipe(
    HttpIncomingMessage.withMaxBodySize(Option.some(maxJsonBytes)),
    Effect.mapError(() => badRequest("body", "cannot be read (send it whole, with its Content-Length)"))
  )
  yield* Effect.try({
    try: () => JSON.parse(text) as unknown,
    catch: () => badRequest("body", "is not valid JSON (send application/json)")
  })
})

/** @internal */
export const layer: Layer.Layer<JsonBody> = Layer.succeed(JsonBody, check)
