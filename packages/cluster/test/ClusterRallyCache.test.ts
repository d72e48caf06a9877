/**
 * The client API over the cluster, with a runner and a client-only node in
 * this process and a real Postgres: typed errors come back as answers (not
 * retried), and a video opened through the front is known to every later
 * message.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { ClusterRunner } from "@rallycache/cluster"
import { RallyCache } from "@rallycache/core"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Context, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Postgres from "../../../test/support/postgres.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "rallycache-cluster-client-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("ClusterRallyCache (real Postgres; as root it runs as the postgres user)", () => {
  it.live("answers with the engine's typed errors and serves clips of videos opened through it", () =>
    Effect.gen(function*() {
      const pg = yield* Postgres.scoped
      const dir = yield* tempDir
      const video = yield* SampleVideo.cached({ duration: 12, dir: Path.join(dir, "media"), clock: false }).pipe(
        Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
      )
      const port = yield* Effect.promise(Postgres.freePort)
      yield* Layer.build(ClusterRunner.layer({ databaseUrl: pg.url, port, cache: { cacheDir: Path.join(dir, "cache") } }))
      const front = yield* Layer.build(ClusterRunner.layerClient({ databaseUrl: pg.url, retryFor: "5 seconds" }))
      const cache = Context.get(front, RallyCache.RallyCache)

      const noId = yield* Effect.flip(cache.openVideo({ path: video, rallies: [{ start: 1, end: 5 }] }))
      expect(noId._tag).toBe("InvalidInput")

      const unknown = yield* Effect.flip(cache.getClip("nobody", 0))
      expect(unknown._tag).toBe("UnknownVideo")

      const opened = yield* cache.openVideo({ path: video, rallies: [{ start: 1, end: 5 }, { start: 6, end: 11 }], id: "v" })
      expect(opened.source.id).toBe("v")
      expect(opened.rallies).toHaveLength(2)
      const missing = yield* Effect.flip(cache.getClip("v", 7))
      expect(missing._tag).toBe("RallyNotFound")

      yield* cache.navigate("v", 1)
      const clip = yield* cache.getClip("v", 1)
      expect(clip.videoId).toBe("v")
      expect(Fs.statSync(clip.path).size).toBe(clip.sizeBytes)
      const again = yield* cache.getClip("v", 1)
      expect(again.cached).toBe(true)

      const status = yield* cache.status("v")
      expect(status.current).toBe(1)
      expect(status.rallies[1]?._tag).toBe("Cached")
      expect(yield* cache.invalidate("v", 1)).toBe(1)
      yield* cache.close("v")
      const closed = yield* Effect.flip(cache.status("v"))
      expect(closed._tag).toBe("UnknownVideo")
    }).pipe(Effect.scoped), 120_000)
})
