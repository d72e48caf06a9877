/**
 * Shared helpers of the node package's tests: the generated fixture video
 * (cached per run under os.tmpdir()/rallycache-fixtures) and an ffprobe
 * JSON reader. Not a test file.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FfmpegResolver, SampleVideo } from "../src/index.js"
import { run } from "../src/internal/process.js"

export const fixtureDir = NodePath.join(NodeOs.tmpdir(), "rallycache-fixtures")

/** Resolver + platform, for tests. */
export const Live = FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))

/** The standard test video: 320x240, 25 fps, 6 s, keyframe every 1 s, audio, clock. */
export const testVideo = SampleVideo.cached({ dir: fixtureDir, duration: 6, width: 320, height: 240, fps: 25, gop: 1 })

export const ffprobeJson = (path: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { ffprobe } = yield* FfmpegResolver.Ffmpeg
    const result = yield* run(ffprobe.path, ["-v", "error", "-of", "json", ...args, path], { collectStdout: true })
    if (result.exitCode !== 0) return yield* Effect.dieMessage(`ffprobe failed: ${result.stderrTail.join("\n")}`)
    return JSON.parse(result.stdout) as Record<string, unknown>
  })
