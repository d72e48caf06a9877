/**
 * Shared test fixtures: generated sample videos (cached per machine, as the
 * node package's tests do) and an in-process server on a free port.
 */
import { HttpServer } from "@effect/platform"
import * as NodeContext from "@effect/platform-node/NodeContext"
import type { RallyCache } from "@rallycache/core"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, type Either, Layer, ManagedRuntime } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import type { RegisterVideo } from "../src/Api.js"
import * as App from "../src/App.js"
import * as ViewerClient from "../src/ViewerClient.js"

export const fixtureDir = path.join(os.tmpdir(), "rallycache-fixtures")

/** A sample video (H.264 + AAC mp4), generated once per machine and options. */
export const sampleVideo = (options: SampleVideo.Options): Promise<string> =>
  Effect.runPromise(
    SampleVideo.cached({ ...options, dir: fixtureDir }).pipe(
      Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
    )
  )

/** A media root holding a copy of `video` (named `name`), and a cache folder. */
export const workspace = (video: string, name = "match.mp4") => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "http-server-test-")))
  const mediaRoot = path.join(dir, "media")
  const cacheDir = path.join(dir, "cache")
  fs.mkdirSync(mediaRoot, { recursive: true })
  fs.copyFileSync(video, path.join(mediaRoot, name))
  return { dir, mediaRoot, cacheDir, video: path.join(mediaRoot, name), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) }
}

export type TestServer = Awaited<ReturnType<typeof startServer>>

/** The real service (routes, Node server, default cache layer) in this process. */
export const startServer = async (options: App.Options) => {
  const runtime = ManagedRuntime.make(App.layer({ port: 0, ...options }))
  const server = await runtime.runPromise(HttpServer.HttpServer)
  const address = server.address
  if (address._tag !== "TcpAddress") throw new Error("expected a TCP address")
  const url = `http://127.0.0.1:${address.port}`
  const json = async <T = Record<string, unknown>>(route: string, init?: RequestInit): Promise<{ status: number; body: T }> => {
    const response = await fetch(url + route, init)
    return { status: response.status, body: (await response.json()) as T }
  }
  const post = (route: string, body: unknown) =>
    json(route, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  /** The client derived from `ViewerApi`, as the page uses it. */
  const client = await Effect.runPromise(ViewerClient.make(url).pipe(Effect.provide(ViewerClient.layerFetch)))
  /** One client call, its typed failure as a `Left`. */
  const call = <A, E>(f: (client: ViewerClient.Client) => Effect.Effect<A, E>): Promise<Either.Either<A, E>> =>
    Effect.runPromise(Effect.either(f(client)))
  const register = (payload: RegisterVideo) => Effect.runPromise(client.videos.register({ payload }))
  return { runtime, url, json, post, client, call, register, dispose: () => runtime.dispose() }
}

export type Cache = RallyCache.RallyCacheShape
