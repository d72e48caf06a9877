import { describe, expect, it } from "@effect/vitest"
import { Domain } from "@rallycache/core"
import { Chunk, Effect, Stream } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { Clip } from "../src/index.js"
import { exporterLayer, tempDir, testVideo, videoDuration } from "./fixtures.js"

const rally = (start: number, end: number) => new Domain.Rally({ index: 0, start, end })

describe("Clip", () => {
  it.live("exportRallyTo writes exactly the output file, in every mode", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("clip")
      const info = yield* Clip.probe(source)
      expect(info.duration).toBeCloseTo(6, 1)
      for (const mode of ["copy", "exact", "accurate"] as const) {
        const output = NodePath.join(dir, `rally-${mode}.mp4`)
        const clip = yield* Clip.exportRallyTo(source, rally(1.5, 3.5), output, { mode })
        expect(clip.path).toBe(output)
        expect(clip.sizeBytes).toBe(NodeFs.statSync(output).size)
        // Cut as asked: copy and exact from the keyframe before the rally (exact hides the lead-in
        // with an edit list, and names the rally's first frame), accurate from the rally's first frame.
        expect(clip.fellBack).toBeUndefined()
        expect(clip.clipStart).toBe(mode === "accurate" ? 1.52 : 1)
        expect(clip.firstFrame).toBe(mode === "copy" ? undefined : 1.52)
        // Frames stored in the file (edit list not applied): the lead-in from the keyframe is there.
        expect(yield* videoDuration(output)).toBeGreaterThanOrEqual(mode === "accurate" ? 1.95 : 2.4)
      }
      expect(NodeFs.readdirSync(dir).sort()).toEqual(["rally-accurate.mp4", "rally-copy.mp4", "rally-exact.mp4"])
      // Overwrites an existing file atomically.
      const again = yield* Clip.exportRallyTo(source, rally(0, 1), NodePath.join(dir, "rally-copy.mp4"))
      expect(again.clipEnd).toBe(1)
      expect(NodeFs.readdirSync(dir).sort()).toEqual(["rally-accurate.mp4", "rally-copy.mp4", "rally-exact.mp4"])
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

  it.live("refuses a directory, a missing folder and the source itself; a failed export leaves nothing", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("clip-bad")
      const asDir = yield* Effect.flip(Clip.exportRallyTo(source, rally(1, 2), dir))
      expect(asDir._tag).toBe("InvalidInput")
      expect(asDir.message).toContain("is a directory")
      const noFolder = yield* Effect.flip(Clip.exportRallyTo(source, rally(1, 2), NodePath.join(dir, "a", "b.mp4")))
      expect(noFolder._tag).toBe("InvalidInput")
      expect(NodeFs.existsSync(NodePath.join(dir, "a"))).toBe(false)
      const onSource = yield* Effect.flip(Clip.exportRallyTo(source, rally(1, 2), source))
      expect(onSource._tag).toBe("InvalidInput")
      const pastEnd = yield* Effect.flip(Clip.exportRallyTo(source, rally(10, 12), NodePath.join(dir, "x.mp4")))
      expect(pastEnd._tag).toBe("InvalidRally")
      const missing = yield* Effect.flip(Clip.exportRallyTo(NodePath.join(dir, "none.mp4"), rally(1, 2), NodePath.join(dir, "y.mp4")))
      expect(missing._tag).toBe("SourceNotFound")
      for (const error of [asDir, noFolder, onSource, pastEnd, missing]) expect(error.message).not.toContain("\n")
      expect(NodeFs.readdirSync(dir)).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

  it.live("exportRallyToStream: progress ratios, then the clip; a failure fails the stream", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("clip-stream")
      const output = NodePath.join(dir, "r.mp4")
      const events = Chunk.toReadonlyArray(
        yield* Stream.runCollect(Clip.exportRallyToStream(source, rally(0.5, 5.5), output, { mode: "accurate" }))
      )
      const last = events.at(-1)
      expect(last?._tag).toBe("Done")
      const ratios = events.flatMap((e) => (e._tag === "Progress" ? [e.ratio] : []))
      expect(ratios.at(-1)).toBe(1)
      expect(ratios.every((r, i) => i === 0 || r >= ratios[i - 1]!)).toBe(true)
      expect(NodeFs.existsSync(output)).toBe(true)
      const failed = yield* Effect.flip(
        Stream.runDrain(Clip.exportRallyToStream(source, rally(9, 10), NodePath.join(dir, "bad.mp4")))
      )
      expect(failed._tag).toBe("InvalidRally")
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)
})
