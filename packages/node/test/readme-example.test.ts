// The examples of packages/node/README.md, run for real (ffmpeg, files): the
// README's programs with a temporary folder instead of a fixed one, and
// expectations instead of console output. If one changes, change the other.
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Domain, RallyCache as Core } from "@rallycache/core"
import { Chunk, Effect, Layer, Stream } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Clip, FfmpegExporter, FfmpegResolver, NodeRallyCache, SampleVideo } from "../src/index.js"
import { fixtureDir, tempDir } from "./fixtures.js"

describe("README (node)", () => {
  it.live("the default layer: a sample match, navigate, getClip exports then hits", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("readme")
      const program = Effect.gen(function*() {
        const cache = yield* Core.RallyCache
        const match = yield* SampleVideo.cached({ duration: 30, dir: fixtureDir })
        const video = yield* cache.openVideo({ path: match, rallies: SampleVideo.sampleRallies(30, 4) })

        yield* cache.navigate(video.source.id, 0) // 0 high, 1 and 2 normal, 3 low
        const clip = yield* cache.getClip(video.source.id, 0)
        const again = yield* cache.getClip(video.source.id, 0)
        return { clip, again }
      })
      const cacheDir = NodePath.join(dir, "cache")
      const { again, clip } = yield* program.pipe(
        Effect.provide(NodeRallyCache.layer({ cacheDir, maxBytes: 200 * 1024 * 1024 }))
      )
      expect(clip.path.startsWith(NodePath.join(cacheDir, "clips"))).toBe(true)
      expect(NodeFs.statSync(clip.path).size).toBe(clip.sizeBytes)
      expect(again.cached).toBe(true)
      // Copy mode: the clip starts at the keyframe (every second here) at or before the rally.
      expect(clip.clipStart).toBeLessThanOrEqual(clip.start)
      expect(clip.start - clip.clipStart).toBeLessThan(1.01)
      // Closing the layer left no partial file and no pid record.
      expect(NodeFs.readdirSync(NodePath.join(cacheDir, "tmp"))).toEqual([])
      expect(NodeFs.readdirSync(NodePath.join(cacheDir, "run"))).toEqual([])
    }).pipe(Effect.scoped), 120_000)

  it.live("the Clip API: exportRallyTo and exportRallyToStream", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("readme-clip")
      const ClipLive = FfmpegExporter.layer().pipe(Layer.provideMerge(NodeContext.layer))
      const match = yield* SampleVideo.cached({ duration: 30, dir: fixtureDir }).pipe(
        Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
      )
      const exported = yield* Effect.gen(function*() {
        const info = yield* Clip.probe(match)
        expect(info.keyframeInterval).toBe(1)
        const clip = yield* Clip.exportRallyTo(match, new Domain.Rally({ index: 0, start: 12.5, end: 21 }), NodePath.join(dir, "rally-0.mp4"), {
          mode: "accurate"
        })
        const events = yield* Clip.exportRallyToStream(
          match,
          new Domain.Rally({ index: 1, start: 22.4, end: 28 }),
          NodePath.join(dir, "rally-1.mp4"),
          { mode: "accurate" }
        ).pipe(Stream.runCollect, Effect.map(Chunk.toReadonlyArray))
        return { clip, events }
      }).pipe(Effect.provide(ClipLive))
      // Accurate clips start at the rally's first frame: at or after 12.5 s in a 25 fps video.
      expect(exported.clip.clipStart).toBeCloseTo(12.52, 6)
      const last = exported.events.at(-1)
      expect(last?._tag).toBe("Done")
      expect(exported.events.slice(0, -1).every((e) => e._tag === "Progress")).toBe(true)
      expect(NodeFs.readdirSync(dir).filter((name) => name.endsWith(".mp4")).sort()).toEqual(["rally-0.mp4", "rally-1.mp4"])
      expect(NodeFs.readdirSync(dir).filter((name) => name.endsWith(".part"))).toEqual([])
    }).pipe(Effect.scoped), 120_000)
})
