/**
 * The check of a written clip before it is committed: its read-back
 * (container, ffprobe or ffmpeg's own progress figures) and the fsyncs.
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect } from "effect"
import * as ClipCheck from "../media/clipCheck.js"
import type { Cut } from "./exportPlan.js"
import { tail } from "./ffmpegOutput.js"
import type { SourceEntry } from "../media/ffprobe.js"
import { run } from "./process.js"

/** @internal */
export interface OutputCheck {
  readonly ok: boolean
  readonly detail: string
  readonly duration: number
}

export const checkOutput = (ffprobePath: string, path: string, entry: SourceEntry, expected: number) =>
  Effect.gen(function*() {
    const result = yield* run(ffprobePath, [
      "-v",
      "error",
      "-show_entries",
      "format=duration:stream=codec_type",
      "-of",
      "json",
      path
    ], { collectStdout: true })
    if (result.exitCode !== 0) {
      return { ok: false, detail: `ffprobe cannot read the clip: ${tail(result.stderrTail, 2)}`, duration: 0 }
    }
    const parsed = JSON.parse(result.stdout) as {
      format?: { duration?: string }
      streams?: Array<{ codec_type?: string }>
    }
    const types = (parsed.streams ?? []).map((s) => s.codec_type)
    const duration = Number(parsed.format?.duration ?? NaN)
    const tolerance = 0.5 + 0.02 * expected
    if (entry.info.hasVideo && !types.includes("video")) {
      return { ok: false, detail: "the clip has no video stream", duration }
    }
    if (entry.info.hasAudio && !types.includes("audio")) {
      return { ok: false, detail: "the clip has no audio stream", duration }
    }
    if (!Number.isFinite(duration) || Math.abs(duration - expected) > tolerance) {
      return {
        ok: false,
        detail: `the clip lasts ${duration.toFixed(3)} s instead of ${expected.toFixed(3)} s`,
        duration
      }
    }
    return { ok: true, detail: "", duration } satisfies OutputCheck
  }).pipe(
    Effect.catchAll((error) =>
      Effect.succeed<OutputCheck>({ ok: false, detail: `cannot run ffprobe: ${error.message}`, duration: 0 })
    )
  )

// The container's duration is what a player shows; an exact clip's
// samples also hold the lead-in its edit list hides (the audio from
// where the demuxer's seek put it, between the keyframe and the rally).
export const checkContainer = (path: string, entry: SourceEntry, cut: Cut) =>
  ClipCheck.inspect(path).pipe(
    Effect.match({
      onFailure: (error): OutputCheck => ({ ok: false, detail: error.detail, duration: 0 }),
      onSuccess: (info): OutputCheck => {
        const presented = Math.max(cut.presented, 0.001)
        const stored = presented + (cut.firstFrame === undefined ? 0 : cut.firstFrame - cut.clipStart)
        const off = (seconds: number, expected: number, upTo = expected) =>
          !Number.isFinite(seconds) || seconds < expected - 0.5 - 0.02 * expected ||
          seconds > upTo + 0.5 + 0.02 * upTo
        for (const [kind, wanted, expected, upTo] of [
          ["video", entry.info.hasVideo, stored, stored],
          ["audio", entry.info.hasAudio, presented, stored]
        ] as const) {
          if (!wanted) continue
          const stream = info.streams.find((s) => s.kind === kind)
          if (stream === undefined || stream.samples === 0) {
            return { ok: false, detail: `the clip has no ${kind} stream`, duration: info.duration }
          }
          if (off(stream.duration, expected, upTo)) {
            const detail = `the clip's ${kind} lasts ${stream.duration.toFixed(3)} s instead of ${expected.toFixed(3)} s`
            return { ok: false, detail, duration: info.duration }
          }
        }
        if (off(info.duration, presented)) {
          const detail = `the clip lasts ${info.duration.toFixed(3)} s instead of ${presented.toFixed(3)} s`
          return { ok: false, detail, duration: info.duration }
        }
        return { ok: true, detail: "", duration: info.duration }
      }
    })
  )

export const checkProgress = (entry: SourceEntry, expected: number, outTime: number, frames: number): OutputCheck => {
  const tolerance = 0.5 + 0.02 * expected
  if (entry.info.hasVideo && frames <= 0) return { ok: false, detail: "ffmpeg wrote no video frame", duration: outTime }
  if (outTime < 0 || Math.abs(outTime - expected) > tolerance) {
    return {
      ok: false,
      detail: `ffmpeg wrote ${outTime.toFixed(3)} s instead of ${expected.toFixed(3)} s`,
      duration: outTime
    }
  }
  return { ok: true, detail: "", duration: outTime }
}

// Both through the platform FileSystem, so that a test can record or fault them.
export const fsyncFile = (path: string) =>
  Effect.scoped(
    Effect.flatMap(FileSystem.FileSystem, (fs) => Effect.flatMap(fs.open(path, { flag: "r+" }), (file) => file.sync))
  )

/** fsync a folder, so that a rename in it survives a power cut; a file system that refuses it is no error. */
export const fsyncDir = (dir: string) =>
  Effect.scoped(
    Effect.flatMap(FileSystem.FileSystem, (fs) => Effect.flatMap(fs.open(dir, { flag: "r" }), (file) => file.sync))
  ).pipe(Effect.ignore)
