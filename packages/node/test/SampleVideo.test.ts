import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FfmpegResolver, SampleVideo } from "../src/index.js"
import { ffprobeJson } from "./fixtures.js"

const Live = FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))

describe("SampleVideo", () => {
  it.live("generates the requested size, rate, keyframe interval and audio; cached reuses it", () =>
    Effect.gen(function*() {
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-sample-"))
      const options = { dir, duration: 3, width: 160, height: 120, fps: 10, gop: 1, audio: true }
      const path = yield* SampleVideo.cached(options)
      const info = yield* ffprobeJson(path, [
        "-show_entries",
        "stream=codec_type,width,height,avg_frame_rate:format=duration"
      ])
      const streams = info["streams"] as Array<Record<string, unknown>>
      expect(streams.map((s) => s["codec_type"]).sort()).toEqual(["audio", "video"])
      const video = streams.find((s) => s["codec_type"] === "video")!
      expect([video["width"], video["height"], video["avg_frame_rate"]]).toEqual([160, 120, "10/1"])
      expect(Number((info["format"] as Record<string, unknown>)["duration"])).toBeCloseTo(3, 0)
      const keyframes = yield* ffprobeJson(path, [
        "-select_streams",
        "v",
        "-skip_frame",
        "nokey",
        "-show_entries",
        "frame=pts_time"
      ])
      const times = (keyframes["frames"] as Array<Record<string, string>>).map((f) => Number(f["pts_time"]))
      expect(times).toEqual([0, 1, 2])
      const mtime = NodeFs.statSync(path).mtimeMs
      expect(yield* SampleVideo.cached(options)).toBe(path)
      expect(NodeFs.statSync(path).mtimeMs).toBe(mtime)
      expect(NodeFs.readdirSync(dir)).toEqual([NodePath.basename(path)])
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(Live)))

  it.live("bad options are a typed error and write nothing", () =>
    Effect.gen(function*() {
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-sample-"))
      const error = yield* Effect.flip(SampleVideo.generate({ duration: 2, width: 321, output: NodePath.join(dir, "x.mp4") }))
      expect(error._tag).toBe("SampleVideoFailed")
      expect(error.message).not.toContain("\n")
      expect(NodeFs.readdirSync(dir)).toEqual([])
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(Live)))

  it("sampleRallies: deterministic, ordered, with gaps, inside the video", () => {
    for (const [duration, count] of [[6, 3], [120, undefined], [600, 40], [10, 1]] as const) {
      const rallies = SampleVideo.sampleRallies(duration, count)
      expect(rallies).toEqual(SampleVideo.sampleRallies(duration, count))
      if (count !== undefined) expect(rallies.length).toBe(count)
      else expect(rallies.length).toBeGreaterThan(2)
      rallies.forEach((r, i) => {
        expect(r.index).toBe(i)
        expect(r.start).toBeGreaterThanOrEqual(0)
        expect(r.end).toBeGreaterThan(r.start)
        expect(r.end).toBeLessThanOrEqual(duration)
        if (i > 0) expect(r.start).toBeGreaterThan(rallies[i - 1]!.end)
      })
    }
    const long = SampleVideo.sampleRallies(600, 40)
    for (const r of long) {
      expect(r.end - r.start).toBeGreaterThanOrEqual(6)
      expect(r.end - r.start).toBeLessThanOrEqual(25)
    }
  })
})
