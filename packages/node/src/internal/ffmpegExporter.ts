/**
 * The body of the ffmpeg exporter: planning, running and checking one export.
 *
 * @internal
 */
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import type { Domain } from "@rallycache/core"
import { Errors, Exporter } from "@rallycache/core"
import { Context, Duration, Effect, Exit } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import type { Options } from "../FfmpegExporter.js"
import { Ffmpeg } from "../FfmpegResolver.js"
import * as ClipCheck from "./clipCheck.js"
import type { CopyPlan, EncodeSettings } from "./ffmpegArgs.js"
import {
  accurateArgs,
  classifyStderr,
  copyArgs,
  copyPlan,
  parseProgressLine,
  tail
} from "./ffmpegArgs.js"
import type { SourceEntry } from "./ffprobe.js"
import { allKeyframes, probeSource, statSource } from "./ffprobe.js"
import { deprioritize } from "./priority.js"
import { run } from "./process.js"
import * as RunRegistry from "./runRegistry.js"

/** @internal */
export const settingsVersion = (mode: Domain.ExportMode, options: Options = {}): string =>
  mode === "copy"
    ? "copy-kf-v1"
    : `x264-${options.preset ?? "veryfast"}-crf${options.crf ?? 20}-aac${options.audioBitrate ?? "128k"}-v1`

const setprivPath = process.platform === "linux" && NodeFs.existsSync("/usr/bin/setpriv") ? "/usr/bin/setpriv" : undefined

const errnoCode = (error: unknown): string | undefined => {
  const text = error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? "")}` : String(error)
  return /ENOSPC/.exec(text)?.[0] ?? /EIO\b/.exec(text)?.[0]
}

/**
 * A full disk: one line without the temp path, and not retried (a retry
 * at once meets the same full disk; the next request for the clip tries
 * again).
 */
const noSpace = (stderr = "") =>
  new Errors.ExportFailed({ reason: "no-space", detail: "no space left on device", transient: false, stderr })

const ioFailure = (what: string, error: { message: string }) =>
  errnoCode(error) === "ENOSPC"
    ? noSpace()
    : new Errors.ExportFailed({ reason: "io", detail: `${what}: ${error.message}`, transient: true })

interface OutputCheck {
  readonly ok: boolean
  readonly detail: string
  readonly duration: number
}

/** @internal */
export const make = (
  options: Options = {}
): Effect.Effect<
  Exporter.ExporterShape,
  never,
  Ffmpeg | CommandExecutor.CommandExecutor | FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const { ffmpeg, ffprobe } = yield* Ffmpeg
    const fs = yield* FileSystem.FileSystem
    // Only these two: the whole context would also carry the layer's Scope and
    // attach per-export finalizers to the layer's lifetime.
    const context = Context.make(CommandExecutor.CommandExecutor, yield* CommandExecutor.CommandExecutor).pipe(
      Context.add(FileSystem.FileSystem, fs)
    )
    const settings: EncodeSettings = {
      preset: options.preset ?? "veryfast",
      crf: options.crf ?? 20,
      audioBitrate: options.audioBitrate ?? "128k"
    }
    const killGrace = Duration.decode(options.killGrace ?? Duration.seconds(2))
    const lowNice = options.lowPriorityNice ?? 10
    const endSlack = options.endSlack ?? 0.5
    const verifyOutput = options.verifyOutput ?? "container"

    // Probes per (path, fingerprint); bounded, oldest first out.
    const sources = new Map<string, SourceEntry>()
    const maxSources = 64

    const probeEntry = (path: string) =>
      Effect.gen(function*() {
        const fingerprint = yield* statSource(path)
        const cacheKey = `${path}\u0000${fingerprint}`
        const known = sources.get(cacheKey)
        if (known !== undefined) return known
        const entry = yield* probeSource(ffprobe.path, path, fingerprint)
        if (sources.size >= maxSources) {
          const oldest = sources.keys().next()
          if (oldest.done !== true) sources.delete(oldest.value)
        }
        sources.set(cacheKey, entry)
        return entry
      })

    const checkOutput = (path: string, entry: SourceEntry, expected: number) =>
      Effect.gen(function*() {
        const result = yield* run(ffprobe.path, [
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

    const checkContainer = (path: string, entry: SourceEntry, expected: number) =>
      ClipCheck.check(path, { duration: expected, video: entry.info.hasVideo, audio: entry.info.hasAudio }).pipe(
        Effect.match({
          onFailure: (error): OutputCheck => ({ ok: false, detail: error.detail, duration: 0 }),
          onSuccess: (info): OutputCheck => ({ ok: true, detail: "", duration: info.duration })
        })
      )

    const checkProgress = (entry: SourceEntry, expected: number, outTime: number, frames: number): OutputCheck => {
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

    const fsyncFile = (path: string) =>
      Effect.scoped(Effect.flatMap(fs.open(path, { flag: "r+" }), (file) => file.sync))

    const fsyncDir = (dir: string) =>
      Effect.try(() => {
        const fd = NodeFs.openSync(dir, "r")
        try {
          NodeFs.fsyncSync(fd)
        } finally {
          NodeFs.closeSync(fd)
        }
      }).pipe(Effect.ignore)

    const exportClip = (request: Exporter.ExportRequest) =>
      Effect.gen(function*() {
        const path = request.source.path
        const rally = request.rally
        const entry = yield* probeEntry(path)
        const info = entry.info
        if (/^s\d+-m\d+-i\d+-d\d+$/.test(request.source.fingerprint) && request.source.fingerprint !== info.fingerprint) {
          return yield* new Errors.SourceUnreadable({
            path,
            reason: "the file changed since it was opened (open the video again)"
          })
        }
        if (rally.start >= info.duration) {
          return yield* new Errors.InvalidRally({
            index: rally.index,
            reason: `it starts at ${rally.start} s, at or after the end of the video (${info.duration.toFixed(3)} s)`
          })
        }
        if (rally.end > info.duration + endSlack) {
          return yield* new Errors.InvalidRally({
            index: rally.index,
            reason: `it ends at ${rally.end} s, after the end of the video (${info.duration.toFixed(3)} s)`
          })
        }
        const end = Math.min(rally.end, info.duration)

        let plan: CopyPlan
        let args: Array<string>
        if (request.mode === "copy") {
          if (info.hasVideo) {
            const keyframes = yield* allKeyframes(ffprobe.path, entry)
            plan = copyPlan(keyframes, rally.start, end, info.duration)
          } else {
            plan = { seek: rally.start, duration: end - rally.start, clipStart: rally.start, clipEnd: end }
          }
          args = copyArgs(path, plan, request.tempPath)
        } else {
          plan = { seek: rally.start, duration: end - rally.start, clipStart: rally.start, clipEnd: end }
          args = accurateArgs(path, rally.start, end, settings, request.tempPath)
        }

        yield* fs.makeDirectory(NodePath.dirname(request.tempPath), { recursive: true }).pipe(
          Effect.mapError((error) => ioFailure("cannot create the temp folder", error))
        )

        const low = request.priority === "low" && lowNice > 0
        // A copy cut ends within a second, so an orphan of a crashed owner is short-lived and reapStale
        // covers it; starting setpriv first would cost a second exec on every one.
        const prefix = setprivPath !== undefined && request.mode !== "copy" ? [setprivPath, "--pdeathsig", "KILL", "--"] : []
        const [command, ...commandArgs] = [...prefix, ffmpeg.path, ...args] as [string, ...Array<string>]

        const expected = Math.max(plan.clipEnd - plan.clipStart, 0.001)
        const onProgress = request.onProgress
        let reported = 0
        // What ffmpeg itself says it wrote (the last -progress block).
        let outTime = -1
        let videoFrames = 0
        const onStdoutLine = (line: string) => {
          if (line.startsWith("frame=")) videoFrames = Number(line.slice(6)) || 0
          const parsed = parseProgressLine(line)
          if (parsed === null) return Effect.void
          if (parsed !== "end") outTime = parsed
          if (onProgress === undefined) return Effect.void
          const ratio = parsed === "end" ? 1 : Math.min(0.999, parsed / expected)
          if (ratio < reported + 0.01 && parsed !== "end") return Effect.void
          reported = ratio
          return onProgress(ratio)
        }

        let running = run(command, commandArgs, {
          onStdoutLine,
          killGrace,
          paused: request.paused,
          onStart: (pid) =>
            Effect.gen(function*() {
              if (low) yield* Effect.sync(() => deprioritize(pid, lowNice))
              if (options.runDir !== undefined) {
                yield* RunRegistry.record(options.runDir, pid, request.tempPath).pipe(Effect.provide(context))
              }
            })
        }).pipe(
          Effect.mapError((error) =>
            new Errors.ExportFailed({
              reason: "exit",
              detail: `cannot start ffmpeg (${ffmpeg.path}): ${error.message}`,
              transient: !(error._tag === "SystemError" && error.reason === "NotFound")
            })
          )
        )
        if (options.timeout !== undefined) {
          const timeout = options.timeout
          running = running.pipe(
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () =>
                new Errors.ExportFailed({
                  reason: "timeout",
                  detail: `ffmpeg ran longer than ${Duration.format(Duration.decode(timeout))}`,
                  transient: true
                })
            })
          )
        }
        const result = yield* running
        const stderr = tail(result.stderrTail)
        if (result.signal !== null) {
          return yield* new Errors.ExportFailed({
            reason: "signal",
            detail: `ffmpeg was killed by ${result.signal}`,
            transient: true,
            stderr
          })
        }
        const failure = classifyStderr(result.stderrTail, path)
        // ffmpeg exits 0 when only its trailer write fails (the disk filled at the end): the clip has no index.
        if (result.exitCode !== 0 || failure._tag === "NoSpace") {
          const last = result.stderrTail.at(-1) ?? "no message"
          switch (failure._tag) {
            case "NoSpace":
              return yield* noSpace(stderr)
            case "Io":
              return yield* new Errors.ExportFailed({ reason: "io", detail: last, transient: true, stderr })
            case "SourceMissing":
              return yield* new Errors.SourceNotFound({ path })
            case "SourceUnreadable":
              return yield* new Errors.SourceUnreadable({ path, reason: last })
            case "NotMedia":
              return yield* new Errors.NotMediaFile({ path, detail: last })
            case "Exit":
              return yield* new Errors.ExportFailed({
                reason: "exit",
                detail: `ffmpeg exited with code ${result.exitCode}: ${last}`,
                transient: false,
                stderr
              })
          }
        }

        // The read-back check does not need the data on disk, so it overlaps the fsync.
        const [, check] = yield* Effect.all([
          fsyncFile(request.tempPath).pipe(Effect.mapError((error) => ioFailure("cannot fsync the clip", error))),
          verifyOutput === "container"
            ? checkContainer(request.tempPath, entry, expected)
            : verifyOutput === "ffprobe"
            ? checkOutput(request.tempPath, entry, expected)
            : Effect.succeed(checkProgress(entry, expected, outTime, videoFrames))
        ], { concurrency: 2 })
        if (!check.ok) {
          return yield* new Errors.ExportFailed({ reason: "verify", detail: check.detail, transient: true, stderr })
        }
        const stat = yield* fs.stat(request.tempPath).pipe(
          Effect.mapError((error) => ioFailure("cannot stat the clip", error))
        )
        yield* fs.makeDirectory(NodePath.dirname(request.outputPath), { recursive: true }).pipe(
          Effect.zipRight(fs.rename(request.tempPath, request.outputPath)),
          Effect.mapError((error) => ioFailure("cannot move the clip into place", error))
        )
        yield* fsyncDir(NodePath.dirname(request.outputPath))
        if (onProgress !== undefined && reported < 1) yield* onProgress(1)
        return {
          clipStart: plan.clipStart,
          clipEnd: plan.clipEnd,
          sizeBytes: Number(stat.size)
        } satisfies Exporter.ExportResult
      }).pipe(
        Effect.onExit((exit) =>
          Exit.isSuccess(exit) ? Effect.void : fs.remove(request.tempPath, { force: true }).pipe(Effect.ignore)
        ),
        Effect.provide(context)
      )

    const verify = (path: string): Effect.Effect<Exporter.VerifyResult> =>
      Effect.gen(function*() {
        const exists = yield* fs.exists(path).pipe(Effect.orElseSucceed(() => false))
        if (!exists) return { _tag: "Invalid", reason: "the file is missing" } as const
        const result = yield* run(ffmpeg.path, [
          "-nostdin",
          "-hide_banner",
          "-v",
          "error",
          "-xerror",
          "-i",
          path,
          "-map",
          "0",
          "-c",
          "copy",
          "-f",
          "null",
          "-"
        ])
        if (result.exitCode === 0 && result.stderrTail.length === 0) return { _tag: "Valid" } as const
        const reason = (result.stderrTail.at(-1) ?? `ffmpeg exited with ${result.exitCode ?? result.signal}`)
          .replace(path, "clip")
        return { _tag: "Invalid", reason } as const
      }).pipe(
        Effect.catchAll((error) => Effect.succeed({ _tag: "Invalid", reason: `cannot run ffmpeg: ${error.message}` } as const)),
        Effect.provide(context)
      )

    return {
      settingsVersion: (mode) => settingsVersion(mode, options),
      probe: (path) => Effect.map(probeEntry(path), (entry) => entry.info).pipe(Effect.provide(context)),
      export: exportClip,
      verify,
      canPause: true
    } satisfies Exporter.ExporterShape
  })

