/**
 * The engine's manager, unchanged, over S3CacheStore with real ffmpeg: two
 * runners (each its own manager, exporter, Postgres pool and local cache
 * folder) asked for the same rally at once cut it once; a third runner with
 * an empty disk serves it from the bucket without cutting.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { PgClient } from "@effect/sql-pg"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { CacheEvent, Cleanup, Config, Metrics, PreloadPolicy, RallyCache } from "@rallycache/core"
import { FfmpegExporter, FfmpegResolver, SampleVideo } from "@rallycache/node"
import { S3CacheStore } from "@rallycache/s3"
import { Context, Effect, Layer, Redacted, Stream } from "effect"
import { spawnSync } from "node:child_process"
import * as Path from "node:path"
import { countingClient, type Env, startServers, tempDir } from "./support.js"

let env: Env
let stopAll: () => Promise<void>

beforeAll(async () => {
  const servers = await startServers()
  env = servers.env
  stopAll = servers.stop
})

afterAll(() => stopAll?.())

const platform = FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))

/** One runner's engine: the manager over the object store, with ffmpeg. */
const engine = (name: string) =>
  Effect.gen(function*() {
    const cacheDir = yield* tempDir(name)
    const { client } = countingClient(env.s3)
    yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
    const base = Layer.mergeAll(
      Layer.effect(Config.CacheConfig, Config.make({ runnerId: name, preloadAhead: 0, mode: "copy" })),
      CacheEvent.CacheEvents.layer(),
      Metrics.layer,
      PgClient.layer({ url: Redacted.make(env.databaseUrl), maxConnections: 4 })
    )
    const store = S3CacheStore.layer({ bucket: env.s3.bucket, cacheDir, client, prefix: "e2e/", pollInterval: "50 millis" })
    const exporter = FfmpegExporter.layerWithFfmpeg({ runDir: Path.join(cacheDir, "run") }).pipe(Layer.provide(platform))
    const services = Layer.mergeAll(store, exporter, PreloadPolicy.layer).pipe(Layer.provideMerge(base))
    const manager = RallyCache.layer.pipe(Layer.provideMerge(Cleanup.layer.pipe(Layer.provideMerge(services))))
    const context = yield* Layer.build(manager)
    const events = yield* Context.get(context, CacheEvent.CacheEvents).subscribe
    return { cache: Context.get(context, RallyCache.RallyCache), events, cacheDir }
  })

const ffmpegBin = process.env["FFMPEG_PATH"] ?? "ffmpeg"
const decodes = (file: string) =>
  spawnSync(ffmpegBin, ["-nostdin", "-v", "error", "-xerror", "-i", file, "-map", "0", "-c", "copy", "-f", "null", "-"], {
    stdio: "ignore"
  }).status === 0

describe("S3CacheStore under the manager", () => {
  it.live("two runners asking for one rally cut it once; a third serves it from the bucket", () =>
    Effect.gen(function*() {
      const media = yield* tempDir("media")
      const video = yield* SampleVideo.cached({ duration: 8, dir: media, clock: false }).pipe(Effect.provide(platform))
      const a = yield* engine("runner-a")
      const b = yield* engine("runner-b")
      const input = { path: video, id: "match", rallies: [{ start: 1, end: 4 }, { start: 5, end: 7 }] }
      const [va, vb] = yield* Effect.all([a.cache.openVideo(input), b.cache.openVideo(input)])
      expect(va.source.id).toBe(vb.source.id)

      const [ca, cb] = yield* Effect.all([a.cache.getClip("match", 0), b.cache.getClip("match", 0)], {
        concurrency: "unbounded"
      })
      expect(ca.key).toBe(cb.key)
      expect(ca.path.startsWith(a.cacheDir)).toBe(true)
      expect(cb.path.startsWith(b.cacheDir)).toBe(true)
      expect(decodes(ca.path)).toBe(true)
      expect(decodes(cb.path)).toBe(true)

      const readyOf = (events: Stream.Stream<CacheEvent.CacheEvent>) =>
        events.pipe(
          Stream.filter((e) => e._tag === "ClipReady" && e.clip.key === ca.key),
          Stream.take(1),
          Stream.runCollect,
          Effect.timeoutTo({ duration: "1 second", onTimeout: () => 0, onSuccess: (chunk) => chunk.length })
        )
      // Exactly one of the two cut it (ClipReady is published by the runner that exported).
      const cuts = (yield* readyOf(a.events)) + (yield* readyOf(b.events))
      expect(cuts).toBe(1)

      const c = yield* engine("runner-c")
      yield* c.cache.openVideo(input)
      const cc = yield* c.cache.getClip("match", 0)
      expect(cc.path.startsWith(c.cacheDir)).toBe(true)
      expect(decodes(cc.path)).toBe(true)
      // A hit: no job ran on c (a job runs for every miss, even one that ends by downloading).
      const stats = yield* c.cache.stats
      expect(stats.metrics.hits).toBe(1)
      expect(stats.metrics.exports).toBe(0)
    }).pipe(Effect.scoped))
})
