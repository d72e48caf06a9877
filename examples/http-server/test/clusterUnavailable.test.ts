/**
 * A cluster front (`examples/cluster`) runs this service over the cluster's
 * `RallyCache`, which dies with `ClusterUnavailable` when no runner answers
 * within `retryFor`. The service answers that with a 503 and its one-line
 * message, not with a 500. The engine here is the real Node one, with
 * `openVideo` and `leaseClip` dying as the cluster's core view does.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { RallyCache } from "@rallycache/core"
import { NodeRallyCache } from "@rallycache/node"
import { Effect, Layer, ManagedRuntime, Schema } from "effect"
import { HttpServer } from "@effect/platform"
import * as App from "../src/App.js"
import { toApiError } from "../src/internal/errors.js"
import * as ApiErrors from "../src/ApiErrors.js"
import { sampleVideo, workspace } from "./fixtures.js"

/** The shape and message of `@rallycache/cluster`'s error (this example does not depend on that package). */
class ClusterUnavailable extends Schema.TaggedError<ClusterUnavailable>()("ClusterUnavailable", {
  request: Schema.String,
  videoId: Schema.String,
  waitedMs: Schema.Number
}) {
  override get message(): string {
    return `no runner answered ${this.request} for video ${JSON.stringify(this.videoId)} within ${this.waitedMs} ms: start a runner, then try again`
  }
}

let ws: ReturnType<typeof workspace>
let runtime: ManagedRuntime.ManagedRuntime<HttpServer.HttpServer, unknown>
let url = ""

beforeAll(async () => {
  ws = workspace(await sampleVideo({ duration: 4, width: 320, height: 240 }))
  const engine = Layer.effect(
    RallyCache.RallyCache,
    Effect.map(RallyCache.RallyCache, (cache): RallyCache.RallyCacheShape => ({
      ...cache,
      openVideo: (input) => Effect.die(new ClusterUnavailable({ request: "OpenVideo", videoId: input.path, waitedMs: 2000 })),
      leaseClip: (videoId) => Effect.die(new ClusterUnavailable({ request: "GetClip", videoId, waitedMs: 2000 }))
    }))
  ).pipe(Layer.provide(NodeRallyCache.layer({ cacheDir: ws.cacheDir })))
  runtime = ManagedRuntime.make(
    App.layerWithEngine(engine, { port: 0, server: { mediaRoot: ws.mediaRoot } }) as Layer.Layer<HttpServer.HttpServer, unknown>
  )
  const server = await runtime.runPromise(HttpServer.HttpServer)
  if (server.address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  url = `http://127.0.0.1:${server.address.port}`
}, 60_000)

afterAll(async () => {
  await runtime?.dispose()
  ws?.cleanup()
})

describe("ClusterUnavailable", () => {
  it("is the API error of the same name, one line", async () => {
    const error = await Effect.runPromise(Effect.flip(toApiError(new ClusterUnavailable({ request: "Navigate", videoId: "v", waitedMs: 5 }))))
    expect(error).toBeInstanceOf(ApiErrors.ClusterUnavailable)
    expect(error.message).toMatch(/^no runner answered Navigate/)
  })

  it("is answered 503 with its one-line message when the cluster's engine dies with it", async () => {
    const response = await fetch(`${url}/api/videos`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ path: "match.mp4", rallies: [{ start: 0.5, end: 2 }] })
    })
    expect(response.status).toBe(503)
    const body = (await response.json()) as { _tag: string; message: string }
    expect(body._tag).toBe("ClusterUnavailable")
    expect(body.message).toMatch(/^no runner answered OpenVideo for video ".*match\.mp4" within 2000 ms: start a runner/)
    expect(body.message).not.toContain("\n")
  })
})
