/**
 * One run of ffmpeg for an export: the process (priority, pause, timeout,
 * run registry), its progress, and the failure its exit and stderr mean.
 *
 * @internal
 */
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type * as FileSystem from "@effect/platform/FileSystem"
import { Errors } from "@rallycache/core"
import type { Exporter } from "@rallycache/core"
import type { Context } from "effect"
import { Duration, Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import type { Options } from "../../FfmpegExporter.js"
import type { Binary } from "../../FfmpegResolver.js"
import type { Cut } from "./exportPlan.js"
import { classifyStderr, parseProgressLine, tail, truncationOf } from "./ffmpegOutput.js"
import { deprioritize } from "./priority.js"
import { run } from "./process.js"
import * as RunRegistry from "./runRegistry.js"

const setprivPath = process.platform === "linux" && NodeFs.existsSync("/usr/bin/setpriv") ? "/usr/bin/setpriv" : undefined

const errnoCode = (error: unknown): string | undefined => {
  const text = error instanceof Error ? `${error.message} ${String((error as { cause?: unknown }).cause ?? "")}` : String(error)
  return /ENOSPC/.exec(text)?.[0] ?? /EIO\b/.exec(text)?.[0]
}

/**
 * A full disk: one line without the temp path, and not retried (a retry
 * at once meets the same full disk; the next request for the clip tries
 * again) unless `unlessSpaceCameBack` finds that space came back.
 */
export const noSpace = (stderr = "") =>
  new Errors.ExportFailed({ reason: "no-space", detail: "no space left on device", transient: false, stderr })

/** @internal */
export const isNoSpace = (error: unknown): error is Errors.ExportFailed =>
  error instanceof Errors.ExportFailed && error.reason === "no-space"

/** Bytes an unprivileged writer may still use in `folder`'s file system; `undefined` when unknown. @internal */
export const freeBytes = (folder: string): number | undefined => {
  try {
    const fs = NodeFs.statfsSync(folder)
    return fs.bavail * fs.bsize
  } catch {
    return undefined
  }
}

/**
 * A full disk is worth the retries only when space came back: once the
 * partial clip is removed, the file system has more room than the attempt
 * that filled it had, by a clip (`needBytes`) and by half again. A disk as
 * full as before fails for good, rather than spending every retry on
 * another ffmpeg run that fills it.
 */
export const unlessSpaceCameBack = (
  error: Errors.ExportFailed,
  tempPath: string,
  roomBefore: number | undefined,
  needBytes: number
) =>
  Effect.suspend(() => {
    NodeFs.rmSync(tempPath, { force: true })
    const room = freeBytes(NodePath.dirname(tempPath))
    const cameBack = roomBefore !== undefined && room !== undefined &&
      room >= roomBefore + Math.max(needBytes, roomBefore / 2)
    return Effect.fail(cameBack ? new Errors.ExportFailed({ ...error, transient: true }) : error)
  })

export const ioFailure = (what: string, error: { message: string }) =>
  errnoCode(error) === "ENOSPC"
    ? noSpace()
    : new Errors.ExportFailed({ reason: "io", detail: `${what}: ${error.message}`, transient: true })


/** What a run needs from the exporter it belongs to. @internal */
export interface RunEnv {
  readonly ffmpeg: Binary
  readonly options: Options
  readonly killGrace: Duration.Duration
  readonly lowNice: number
  readonly context: Context.Context<CommandExecutor.CommandExecutor | FileSystem.FileSystem>
}

/** @internal */
export const runFfmpeg = (env: RunEnv, request: Exporter.ExportRequest, cut: Cut) =>
  Effect.gen(function*() {
    const { context, ffmpeg, killGrace, lowNice, options } = env
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
