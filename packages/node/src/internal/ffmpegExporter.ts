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
import type { EncodeSettings } from "./ffmpegArgs.js"
import {
  accurateArgs,
  classifyStderr,
  containerFor,
  copyPlan,
  editListCodecs,
  exactPlan,
  parseProgressLine,
  streamCopyArgs,
  tail,
  truncationOf,
  videoEndOfCopy
} from "./ffmpegArgs.js"
import { trimPresentedEnd } from "./mp4EditList.js"
import type { SourceEntry } from "./ffprobe.js"
import { allKeyframes, probeSource, statSource } from "./ffprobe.js"
import { deprioritize } from "./priority.js"
import { run } from "./process.js"
import * as RunRegistry from "./runRegistry.js"

/** @internal */
export const settingsVersion = (mode: Domain.ExportMode, options: Options = {}): string =>
  mode === "copy"
    ? "copy-kf-v2"
    : mode === "exact"
    ? `exact-elst-v1+x264-${options.preset ?? "veryfast"}-crf${options.crf ?? 20}-aac${options.audioBitrate ?? "128k"}`
    : `x264-${options.preset ?? "veryfast"}-crf${options.crf ?? 20}-aac${options.audioBitrate ?? "128k"}-v2`

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

/**
 * Seconds of audio a stream copy keeps: in mp4, a little more than shown
 * (the edit list ends both streams together); elsewhere, up to the end of
 * the last video frame the copy keeps.
 */
const audioDurationOf = (entry: SourceEntry, container: Domain.Container, present: number, duration: number): number => {
  if (container === "mp4") return duration + 0.25
  const frame = entry.info.keyframeInterval === null ? 0.04 : medianFrameDuration(entry.framePts)
  return videoEndOfCopy(entry.packets ?? [], present, duration, frame)
}

const truncatedSource = (
  path: string,
  truncated: { readonly dataEnd: number; readonly detail: string },
  duration: number
) =>
  new Errors.SourceUnreadable({
    path,
    reason: `the file is truncated: its data ends at ${truncated.dataEnd.toFixed(3)} s of ${
      duration.toFixed(3)
    } s, before this rally ends (ffprobe: ${truncated.detail}); copy it again`
  })

const medianFrameDuration = (framePts: Float64Array | undefined): number => {
  if (framePts === undefined || framePts.length < 2) return 0.04
  const gaps: Array<number> = []
  for (let i = 1; i < framePts.length; i++) gaps.push(framePts[i]! - framePts[i - 1]!)
  gaps.sort((a, b) => a - b)
  return gaps[gaps.length >> 1]!
}

/** One ffmpeg run and what its clip covers. */
interface Cut {
  readonly mode: Domain.ExportMode
  readonly args: ReadonlyArray<string>
  readonly clipStart: number
  readonly clipEnd: number
  /** Seconds a player presents. */
  readonly presented: number
  readonly firstFrame: number | undefined
  readonly container: Domain.Container
}

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

    // The container's duration is what a player shows; an exact clip's
    // samples also hold the lead-in its edit list hides (the audio from
    // where the demuxer's seek put it, between the keyframe and the rally).
    const checkContainer = (path: string, entry: SourceEntry, cut: Cut) =>
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

    const runFfmpeg = (request: Exporter.ExportRequest, cut: Cut) =>
      Effect.gen(function*() {
        const path = request.source.path
        const low = request.priority === "low" && lowNice > 0
        // A stream copy ends within a second, so an orphan of a crashed owner is short-lived and reapStale
        // covers it; starting setpriv first would cost a second exec on every one.
        const prefix = setprivPath !== undefined && cut.mode === "accurate" ? [setprivPath, "--pdeathsig", "KILL", "--"] : []
        const [command, ...commandArgs] = [...prefix, ffmpeg.path, ...cut.args] as [string, ...Array<string>]

        const expected = Math.max(cut.presented, 0.001)
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
          confirmPaused: request.confirmPaused,
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

        // ffmpeg exits 0 when it reads into the end of a truncated file.
        const truncation = truncationOf(result.stderrTail)
        if (truncation !== undefined) {
          return yield* new Errors.SourceUnreadable({
            path,
            reason: `the file is truncated (ffmpeg: ${truncation}); copy it again`
          })
        }
        return { outTime, videoFrames, reported, stderr }
      })

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

        const layout = entry.layout
        const container = containerFor(layout)
        // Every keyframe (one ffprobe pass per source); accurate mode needs
        // them only where seeking is a timestamp search.
        const keyframes = request.mode !== "accurate" || !layout.seekByIndex
          ? yield* allKeyframes(ffprobe.path, entry)
          : []
        // A file cut short: its index (and duration) promise data that is not
        // there, and a stream copy would mux the partial last packet into a
        // clip whose own index is consistent. Refused for good, not retried.
        if (entry.truncated !== undefined && end > entry.truncated.dataEnd) {
          return yield* truncatedSource(path, entry.truncated, info.duration)
        }
        const preSeek = layout.seekByIndex
          ? undefined
          : copyPlan(keyframes, rally.start, end, info.duration, false).seek
        const accurate: Cut = {
          mode: "accurate",
          args: accurateArgs(path, rally.start, end, settings, request.tempPath, preSeek),
          clipStart: rally.start,
          clipEnd: end,
          presented: end - rally.start,
          firstFrame: undefined,
          container: "mp4"
        }
        let cut: Cut = accurate
        let fellBack: { to: Domain.ExportMode; reason: string } | undefined
        if (request.mode === "copy") {
          const plan = copyPlan(keyframes, rally.start, end, info.duration, layout.seekByIndex)
          cut = {
            mode: "copy",
            args: streamCopyArgs(
              path,
              {
                videoSeek: plan.seek,
                present: plan.clipStart,
                duration: plan.clipEnd - plan.clipStart,
                audioDuration: audioDurationOf(entry, container, plan.clipStart, plan.clipEnd - plan.clipStart)
              },
              layout,
              container,
              request.tempPath
            ),
            clipStart: plan.clipStart,
            clipEnd: plan.clipEnd,
            presented: plan.clipEnd - plan.clipStart,
            firstFrame: undefined,
            container
          }
        } else if (request.mode === "exact") {
          const usable = container === "mp4" && editListCodecs.has(layout.video)
          const plan = usable
            ? exactPlan(keyframes, entry.framePts ?? [], rally.start, end, info.duration, layout.seekByIndex)
            : null
          if (plan === null) {
            fellBack = {
              to: "accurate",
              reason: usable
                ? "no video frame starts inside the rally"
                : container === "mp4"
                ? `edit lists are not honoured by ffmpeg's ${layout.video} decoder`
                : `its streams (${[layout.video, ...layout.audio].join(", ")}) do not fit mp4, whose edit list the exact mode needs`
            }
          } else {
            cut = {
              mode: "exact",
              args: streamCopyArgs(
                path,
                { ...plan, audioDuration: audioDurationOf(entry, "mp4", plan.present, plan.duration) },
                layout,
                "mp4",
                request.tempPath
              ),
              clipStart: plan.clipStart,
              clipEnd: plan.clipEnd,
              presented: plan.duration,
              firstFrame: plan.firstFrame,
              container: "mp4"
            }
          }
        }

        yield* fs.makeDirectory(NodePath.dirname(request.tempPath), { recursive: true }).pipe(
          Effect.mapError((error) => ioFailure("cannot create the temp folder", error))
        )

        let progress = yield* runFfmpeg(request, cut)
        if (cut.container === "mp4" && cut.mode !== "accurate") {
          const presented = cut.presented
          const patched = yield* Effect.try(() => trimPresentedEnd(request.tempPath, presented)).pipe(
            Effect.map((patch) => {
              const video = patch.tracks.find((track) => track.handler === "vide")
              if (video === undefined) return "the clip has no video track"
              if (video.edits !== 1) return `the video track has ${video.edits} edits instead of 1`
              if (video.mediaStart < 0) return "the video track's edit starts before its media"
              return null
            }),
            Effect.catchAll((error) => Effect.succeed(`cannot read its edit list: ${String(error.error)}`))
          )
          if (patched !== null) {
            fellBack = { to: "accurate", reason: `the ${cut.mode} cut failed its check (${patched})` }
            cut = accurate
            progress = yield* runFfmpeg(request, cut)
          }
        }

        const expected = Math.max(cut.presented, 0.001)
        // The read-back check does not need the data on disk, so it overlaps the fsync.
        const [, check] = yield* Effect.all([
          fsyncFile(request.tempPath).pipe(Effect.mapError((error) => ioFailure("cannot fsync the clip", error))),
          verifyOutput === "container"
            ? checkContainer(request.tempPath, entry, cut)
            : verifyOutput === "ffprobe"
            ? checkOutput(request.tempPath, entry, expected)
            : Effect.succeed(checkProgress(entry, expected, progress.outTime, progress.videoFrames))
        ], { concurrency: 2 })
        if (!check.ok) {
          return yield* new Errors.ExportFailed({
            reason: "verify",
            detail: check.detail,
            transient: true,
            stderr: progress.stderr
          })
        }
        const stat = yield* fs.stat(request.tempPath).pipe(
          Effect.mapError((error) => ioFailure("cannot stat the clip", error))
        )
        yield* fs.makeDirectory(NodePath.dirname(request.outputPath), { recursive: true }).pipe(
          Effect.zipRight(fs.rename(request.tempPath, request.outputPath)),
          Effect.mapError((error) => ioFailure("cannot move the clip into place", error))
        )
        yield* fsyncDir(NodePath.dirname(request.outputPath))
        if (request.onProgress !== undefined && progress.reported < 1) yield* request.onProgress(1)
        return {
          clipStart: cut.clipStart,
          clipEnd: cut.clipEnd,
          sizeBytes: Number(stat.size),
          ...(cut.firstFrame === undefined
            ? {}
            : { firstFrame: cut.firstFrame, leadIn: Math.max(0, cut.firstFrame - cut.clipStart) }),
          ...(cut.container === "mp4" ? {} : { container: cut.container }),
          ...(fellBack === undefined ? {} : { fellBack })
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

