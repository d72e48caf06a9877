/**
 * The body of the ffmpeg exporter: planning, running and checking one export.
 *
 * @internal
 */
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import * as FileSystem from "@effect/platform/FileSystem"
import type { Domain, Exporter } from "@rallycache/core"
import { Errors } from "@rallycache/core"
import { Context, Duration, Effect, Exit } from "effect"
import * as NodePath from "node:path"
import type { Options } from "../../FfmpegExporter.js"
import { Ffmpeg } from "../../FfmpegResolver.js"
import { checkContainer, checkOutput, checkProgress, fsyncDir, fsyncFile } from "./exportCheck.js"
import { dropsPackets } from "./ffmpegCapabilities.js"
import type { Cut } from "./exportPlan.js"
import { planCut, truncatedSource } from "./exportPlan.js"
import { cutInProcess, inProcessEligible } from "./inProcessCut.js"
import { mp4Encryption } from "../media/mp4Encryption.js"
import { mkvProbe } from "../media/mkvProbe.js"
import { mp4Probe } from "../media/mp4Probe.js"
import { freeBytes, ioFailure, isNoSpace, runFfmpeg as runCut, unlessSpaceCameBack } from "./exportRun.js"
import type { EncodeSettings } from "./ffmpegArgs.js"
import { trimPresentedEnd } from "../media/mp4EditList.js"
import type { SourceEntry } from "../media/ffprobe.js"
import { allKeyframes, probeSource, sizeOfFingerprint, statSource } from "../media/ffprobe.js"
import { run } from "./process.js"
import { isUrl, urlFingerprint } from "../media/urlSource.js"

/** @internal */
export const settingsVersion = (mode: Domain.ExportMode, options: Options = {}): string =>
  mode === "copy"
    ? "copy-kf-v2"
    : mode === "exact"
    ? `exact-elst-v2+x264-${options.preset ?? "veryfast"}-crf${options.crf ?? 20}-aac${options.audioBitrate ?? "128k"}`
    : `x264-${options.preset ?? "veryfast"}-crf${options.crf ?? 20}-aac${options.audioBitrate ?? "128k"}-v3`


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
        // An mp4/mov or Matroska/WebM file is opened in process where its streams are named and its packet
        // list modelled; else (and for a URL) ffprobe.
        const local = options.inProcess === false || isUrl(path)
          ? undefined
          : yield* Effect.sync(() => mkvProbe(path, fingerprint) ?? mp4Probe(path, fingerprint))
        // mp4Probe names no encrypted sample entry; ffprobe names their original codec and ffmpeg would cut ciphertext.
        const encrypted = local !== undefined || isUrl(path) ? undefined : yield* Effect.sync(() => mp4Encryption(path))
        if (encrypted !== undefined) {
          return yield* new Errors.UnsupportedSource({
            path,
            reason: `the video is encrypted (DRM: ${encrypted}) and rallycache cannot cut encrypted video`
          })
        }
        const entry = local ?? (yield* probeSource(ffprobe.path, path, fingerprint))
        if (sources.size >= maxSources) {
          const oldest = sources.keys().next()
          if (oldest.done !== true) sources.delete(oldest.value)
        }
        sources.set(cacheKey, entry)
        return entry
      })

    const runEnv = { ffmpeg, options, killGrace, lowNice, context }
    const runFfmpeg = (request: Exporter.ExportRequest, cut: Cut) => runCut(runEnv, request, cut)

    const exportClip = (request: Exporter.ExportRequest) =>
      Effect.gen(function*() {
        const path = request.source.path
        const rally = request.rally
        const entry = yield* probeEntry(path)
        const info = entry.info
        const fingerprint = request.source.fingerprint
        if (
          (/^s\d+-m\d+-i\d+-d\d+$/.test(fingerprint) || urlFingerprint.test(fingerprint)) &&
          fingerprint !== info.fingerprint
        ) {
          return yield* new Errors.SourceUnreadable({
            path,
            reason: `the ${isUrl(path) ? "resource" : "file"} changed since it was opened (open the video again)`
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

        // Every keyframe and frame time (one pass per source, kept on the entry): every mode
        // starts at the rally's first frame, and a timestamp-searched source seeks by keyframe. An
        // accurate cut of a URL seeked by index goes without: the pass would read the whole resource.
        const keyframes = request.mode !== "accurate" || !entry.layout.seekByIndex || !isUrl(path)
          ? yield* allKeyframes(ffprobe.path, entry)
          : []
        // A file cut short: its index (and duration) promise data that is not
        // there, and a stream copy would mux the partial last packet into a
        // clip whose own index is consistent. Refused for good, not retried.
        if (entry.truncated !== undefined && end > entry.truncated.dataEnd) {
          return yield* truncatedSource(path, entry.truncated, info.duration)
        }
        const planned = planCut(request, entry, keyframes, end, settings)
        const accurate = planned.accurate
        let cut = planned.cut
        let fellBack = planned.fellBack

        yield* fs.makeDirectory(NodePath.dirname(request.tempPath), { recursive: true }).pipe(
          Effect.mapError((error) => ioFailure("cannot create the temp folder", error))
        )

        // What the file system had for this attempt: a full disk is retried only if space came back.
        const roomBefore = freeBytes(NodePath.dirname(request.tempPath))
        // What a clip of the rally may take: twice the source's bytes for its length (a re-encode can be
        // larger than the source).
        const needBytes = 2 * sizeOfFingerprint(info.fingerprint) * (end - rally.start) / Math.max(info.duration, 0.001)

        return yield* Effect.gen(function*() {
          // ffmpeg's stream copy, its presented end trimmed (mp4/mov), falling back to accurate when its
          // edit list is not the one the exact mode needs.
          const viaFfmpeg = Effect.gen(function*() {
            // Open GOP: the leading pictures are dropped by the noise bitstream filter; a build without its
            // drop expression would keep them, and they decode with errors.
            if (cut.dropLeading && cut.mode !== "accurate" && !(ffmpeg.capabilities?.noiseDrop ?? (yield* dropsPackets(ffmpeg.path)))) {
              fellBack = {
                to: "accurate",
                reason: "open GOP: this ffmpeg cannot drop the leading pictures (its noise bitstream filter has no drop expression; ffmpeg 5 or later has)"
              }
              cut = accurate
            }
            let run = yield* runFfmpeg(request, cut)
            if ((cut.container === "mp4" || cut.container === "mov") && cut.mode !== "accurate") {
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
                run = yield* runFfmpeg(request, cut)
              }
            }
            return run
          })

          // A copy or exact cut of an mp4/mov source is written in process where the cutter models the
          // source; ffmpeg cuts what it refuses.
          let cutBy: Exporter.Cutter = "ffmpeg"
          let refused: string | undefined
          let inProcessRun: Effect.Effect.Success<typeof viaFfmpeg> | undefined
          if (options.inProcess !== false && inProcessEligible(entry, cut)) {
            const outcome = yield* cutInProcess(entry, request, cut)
            if (outcome._tag === "Cut") {
              cutBy = "in-process"
              inProcessRun = { outTime: cut.presented, videoFrames: outcome.result.videoFrames, reported: 0, stderr: "" }
            } else {
              refused = outcome.reason
            }
          }
          let progress = inProcessRun ?? (yield* viaFfmpeg)

          const checkClip = (checked: typeof cut, run: typeof progress) => {
            const expected = Math.max(checked.presented, 0.001)
            // The read-back check does not need the data on disk, so it overlaps the fsync.
            return Effect.all([
              fsyncFile(request.tempPath).pipe(Effect.mapError((error) => ioFailure("cannot fsync the clip", error))),
              verifyOutput === "container"
                ? checkContainer(request.tempPath, entry, checked)
                : verifyOutput === "ffprobe"
                ? checkOutput(ffprobe.path, request.tempPath, entry, expected)
                : Effect.succeed(checkProgress(entry, expected, run.outTime, run.videoFrames))
            ], { concurrency: 2 }).pipe(Effect.map(([, check]) => check))
          }
          let check = yield* checkClip(cut, progress)
          if (!check.ok && cutBy === "in-process") {
            refused = `its clip failed the check (${check.detail})`
            cutBy = "ffmpeg"
            progress = yield* viaFfmpeg
            check = yield* checkClip(cut, progress)
          }
          // A stream copy that an ffmpeg build muxes wrongly (older builds lay out the two inputs' edit lists
          // differently) is re-encoded rather than retried into the same result.
          if (!check.ok && cut.mode !== "accurate") {
            fellBack = { to: "accurate", reason: `the ${cut.mode} cut failed its check (${check.detail})` }
            cut = accurate
            progress = yield* runFfmpeg(request, cut)
            check = yield* checkClip(cut, progress)
          }
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
            ...(fellBack === undefined ? {} : { fellBack }),
            cutBy,
            ...(refused === undefined || cutBy !== "ffmpeg" ? {} : { inProcessRefused: refused })
          } satisfies Exporter.ExportResult
        }).pipe(Effect.catchIf(isNoSpace, (error) => unlessSpaceCameBack(error, request.tempPath, roomBefore, needBytes)))
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

