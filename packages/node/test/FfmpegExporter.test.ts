import { describe, expect, it } from "@effect/vitest"
import { Domain, Exporter } from "@rallycache/core"
import * as FileSystem from "@effect/platform/FileSystem"
import { NodeContext, NodeFileSystem } from "@effect/platform-node"
import { Context, Effect, Exit, Fiber, Layer, Schema, SubscriptionRef } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FfmpegExporter, FfmpegResolver } from "../src/index.js"
import { autogroupNice } from "../src/internal/export/priority.js"
import { isAlive } from "../src/internal/export/process.js"
import {
  exporterLayer,
  ffprobeJson,
  framePsnr,
  frameMd5,
  Live,
  longVideo,
  processNice,
  processState,
  processUserTicks,
  silentVideo,
  tempDir,
  testVideo,
  videoDuration,
  waitForPid,
  waitUntil
} from "./fixtures.js"

const videoId = Schema.decodeSync(Domain.VideoId)("test-video")

const makeRequest = (
  path: string,
  fingerprint: string,
  dir: string,
  rally: { start: number; end: number },
  mode: Domain.ExportMode,
  extra: Partial<Exporter.ExportRequest> = {}
): Exporter.ExportRequest => ({
  source: new Domain.VideoSource({ id: videoId, path, fingerprint }),
  rally: new Domain.Rally({ index: 0, ...rally }),
  mode,
  priority: "high",
  tempPath: NodePath.join(dir, "tmp", `${mode}-${rally.start}.part`),
  outputPath: NodePath.join(dir, "clips", `${mode}-${rally.start}.mp4`),
  ...extra
})

/** Export and return the result with the request. */
const exportRally = (
  source: string,
  dir: string,
  rally: { start: number; end: number },
  mode: Domain.ExportMode,
  extra: Partial<Exporter.ExportRequest> = {}
) =>
  Effect.gen(function*() {
    const exporter = yield* Exporter.Exporter
    const info = yield* exporter.probe(source)
    const request = makeRequest(source, info.fingerprint, dir, rally, mode, extra)
    const result = yield* exporter.export(request)
    return { request, result }
  })

/**
 * The set-up of a test that watches one export's ffmpeg: a temp folder
 * (removed with the test's scope), a run folder in it, an exporter that
 * records its ffmpeg there (with `options`, and `ffmpeg` in place of the
 * resolved binaries; copy and exact cuts too run ffmpeg unless `options`
 * say `inProcess: true`), and `start`, which forks an export and returns
 * once its ffmpeg runs.
 */
const setup = (
  name: string,
  options: Omit<FfmpegExporter.Options, "runDir"> = {},
  ffmpeg?: (real: FfmpegResolver.FfmpegShape) => FfmpegResolver.FfmpegShape
) =>
  Effect.gen(function*() {
    const dir = yield* tempDir(name)
    const runDir = NodePath.join(dir, "run")
    const real = yield* Effect.provide(FfmpegResolver.Ffmpeg, Live)
    const layer = FfmpegExporter.layerWithFfmpeg({ inProcess: false, ...options, runDir }).pipe(
      Layer.provide(FfmpegResolver.layerStatic(ffmpeg === undefined ? real : ffmpeg(real))),
      Layer.provide(NodeContext.layer)
    )
    const exporter = Context.get(yield* Layer.build(layer), Exporter.Exporter)
    const request = (
      source: string,
      rally: { start: number; end: number },
      mode: Domain.ExportMode,
      extra: Partial<Exporter.ExportRequest> = {}
    ) => Effect.map(exporter.probe(source), (info) => makeRequest(source, info.fingerprint, dir, rally, mode, extra))
    const start = (
      source: string,
      rally: { start: number; end: number },
      mode: Domain.ExportMode,
      extra: Partial<Exporter.ExportRequest> = {}
    ) =>
      Effect.gen(function*() {
        const req = yield* request(source, rally, mode, extra)
        const fiber = yield* Effect.fork(exporter.export(req))
        const pid = yield* waitForPid(runDir)
        return { request: req, fiber, pid }
      })
    return { dir, runDir, exporter, request, start }
  })

/** Whether this process may mount a tmpfs (root with CAP_SYS_ADMIN), for the full-disk test. */
const canMountTmpfs = (() => {
  if (process.getuid?.() !== 0) return false
  const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-mount-probe-"))
  try {
    const mounted = ChildProcess.spawnSync("mount", ["-t", "tmpfs", "-o", "size=4096", "tmpfs", dir]).status === 0
    if (mounted) ChildProcess.spawnSync("umount", [dir])
    return mounted
  } finally {
    NodeFs.rmdirSync(dir)
  }
})()

/** A tmpfs of `bytes` mounted on a new temp folder for the test's scope: a disk that really fills. */
const smallDisk = (name: string, bytes: number) =>
  Effect.gen(function*() {
    const mount = yield* tempDir(name)
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const mounted = ChildProcess.spawnSync("mount", ["-t", "tmpfs", "-o", `size=${bytes}`, "tmpfs", mount])
        expect(mounted.status, String(mounted.stderr)).toBe(0)
      }),
      () => Effect.sync(() => ChildProcess.spawnSync("umount", [mount]))
    )
    return mount
  })

const listFiles = (dir: string): Array<string> =>
  NodeFs.existsSync(dir) ? NodeFs.readdirSync(dir, { recursive: true, encoding: "utf8" }) : []

/**
 * node's platform FileSystem that logs the steps that make a clip durable:
 * each fsync (of a file, with its size then, or of a folder) and each rename.
 */
const recordingFs = (log: Array<string>) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (live): FileSystem.FileSystem => ({
      ...live,
      open: (path, options) =>
        Effect.map(live.open(path, options), (file) =>
          Object.create(file, {
            sync: {
              get: () =>
                Effect.tap(file.sync, () =>
                  Effect.sync(() => {
                    const stat = NodeFs.statSync(path)
                    log.push(stat.isDirectory() ? `fsync dir ${path}` : `fsync ${path} ${stat.size}`)
                  }))
            }
          }) as FileSystem.File),
      rename: (from, to) => Effect.tap(live.rename(from, to), () => Effect.sync(() => log.push(`rename ${from} ${to}`)))
    }))
  ).pipe(Layer.provide(NodeFileSystem.layer))

/** Video packets stored in `path` (an edit list hides some from a decoder) and the frames a decoder shows. */
const packetsAndFrames = (path: string) =>
  Effect.map(
    ffprobeJson(path, [
      "-count_packets",
      "-count_frames",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=nb_read_packets,nb_read_frames"
    ]),
    (json) => {
      const stream = (json["streams"] as Array<Record<string, string>>)[0]!
      return { packets: Number(stream["nb_read_packets"]), frames: Number(stream["nb_read_frames"]) }
    }
  )

describe("FfmpegExporter", () => {
  it.live("probe: duration, keyframe interval, streams; missing, text and empty files are typed errors", () =>
    Effect.gen(function*() {
      const exporter = yield* Exporter.Exporter
      const source = yield* testVideo
      const info = yield* exporter.probe(source)
      expect(info.duration).toBeCloseTo(6, 1)
      expect(info.keyframeInterval).toBe(1)
      expect([info.hasVideo, info.hasAudio]).toEqual([true, true])
      expect(info.fingerprint).toContain(`s${NodeFs.statSync(source).size}-`)
      expect((yield* exporter.probe(yield* silentVideo)).hasAudio).toBe(false)

      const dir = yield* tempDir("probe")
      const missing = yield* Effect.flip(exporter.probe(NodePath.join(dir, "nope.mp4")))
      expect(missing._tag).toBe("SourceNotFound")
      const text = NodePath.join(dir, "notes.mp4")
      NodeFs.writeFileSync(text, "this is not a video\n".repeat(100))
      const notMedia = yield* Effect.flip(exporter.probe(text))
      expect(notMedia._tag).toBe("NotMediaFile")
      expect(notMedia.message).not.toContain("\n")
      const empty = NodePath.join(dir, "empty.mp4")
      NodeFs.writeFileSync(empty, "")
      expect((yield* Effect.flip(exporter.probe(empty)))._tag).toBe("NotMediaFile")
      expect((yield* Effect.flip(exporter.probe(dir)))._tag).toBe("SourceUnreadable")
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())))

  it.live("copy: starts at the keyframe at or before the start (at most one GOP early), reported exactly", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("copy")
      // 2.05 is the case where a plain `-ss` lands a whole GOP too early (ffmpeg's B-frame seek heuristic).
      for (const start of [2.5, 2.05, 2.0, 0.3, 3.96, 4.999]) {
        const end = Math.min(start + 1.5, 6)
        const { request, result } = yield* exportRally(source, dir, { start, end }, "copy")
        expect(result.clipStart).toBeLessThanOrEqual(start + 1e-6)
        expect(start - result.clipStart).toBeLessThanOrEqual(1 + 1e-6)
        expect(result.clipStart).toBe(Math.floor(start + 1e-6))
        // The clip's first frame is bit-identical to the source frame at clipStart.
        expect(yield* frameMd5(request.outputPath)).toBe(yield* frameMd5(source, result.clipStart))
        const duration = yield* videoDuration(request.outputPath)
        expect(Math.abs(duration - (result.clipEnd - result.clipStart))).toBeLessThanOrEqual(0.2)
        expect(result.sizeBytes).toBe(NodeFs.statSync(request.outputPath).size)
        expect(NodeFs.existsSync(request.tempPath)).toBe(false)
      }
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())))

  it.live("exact: a stream copy from the keyframe before the rally, its edit list showing the rally's first frame", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("exact")
      for (const start of [2.5, 2.05, 0.3, 3.96]) {
        const end = start + 1.5
        const { request, result } = yield* exportRally(source, dir, { start, end }, "exact")
        // Cut as asked, not re-encoded behind the caller's back.
        expect(result.fellBack).toBeUndefined()
        expect(result.container).toBeUndefined()
        // From the keyframe at or before the start (keyframes every second), as a copy would.
        expect(result.clipStart).toBe(Math.floor(start + 1e-6))
        const firstFrame = Math.ceil(start * 25 - 1e-6) / 25
        expect(result.firstFrame).toBeCloseTo(firstFrame, 3)
        expect(result.leadIn).toBeCloseTo(firstFrame - result.clipStart, 3)
        // The frame a player shows first is bit-identical to the source's first frame of the rally.
        expect(yield* frameMd5(request.outputPath)).toBe(yield* frameMd5(source, firstFrame - 0.001))
        // The lead-in from the keyframe is stored, and hidden by the edit list (as may be a frame or two
        // past the end, for B-frame reordering): a stream copy.
        const { frames, packets } = yield* packetsAndFrames(request.outputPath)
        expect(packets - frames).toBeGreaterThanOrEqual(Math.round((firstFrame - result.clipStart) * 25))
        expect(Math.abs(frames / 25 - (end - firstFrame))).toBeLessThanOrEqual(1 / 25 + 1e-6)
        expect((yield* (yield* Exporter.Exporter).verify(request.outputPath))._tag).toBe("Valid")
      }
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())))

  it.live("durability: the clip is written, fsynced, renamed into place, then its folder is fsynced", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const layer = FfmpegExporter.layerWithFfmpeg().pipe(Layer.provide(recordingFs(log)), Layer.provideMerge(Live))
      const source = yield* testVideo
      const dir = yield* tempDir("durable")
      for (const mode of ["copy", "exact", "accurate"] as const) {
        log.length = 0
        const { request, result } = yield* exportRally(source, dir, { start: 1.5, end: 3 }, mode).pipe(
          Effect.provide(layer)
        )
        const mine = log.filter((line) => line.includes(request.tempPath) || line.includes(NodePath.dirname(request.outputPath)))
        expect(mine, mode).toEqual([
          `fsync ${request.tempPath} ${result.sizeBytes}`,
          `rename ${request.tempPath} ${request.outputPath}`,
          `fsync dir ${NodePath.dirname(request.outputPath)}`
        ])
      }
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("a truncated source: rallies in its data are cut, later ones are a one-line SourceUnreadable (no broken clip)", () =>
    Effect.gen(function*() {
      const full = yield* testVideo
      const dir = yield* tempDir("truncated")
      const source = NodePath.join(dir, "truncated.mp4")
      const bytes = NodeFs.readFileSync(full)
      NodeFs.writeFileSync(source, bytes.subarray(0, Math.floor(bytes.length / 2)))
      const refused = (error: { readonly _tag: string; readonly message: string }) => {
        expect(error._tag).toBe("SourceUnreadable")
        expect(error.message).toContain("truncated")
        expect(error.message).not.toContain("\n")
      }
      // Copy: the keyframe pass finds where the data ends; a rally past it is refused before ffmpeg runs.
      const whole = yield* exportRally(source, dir, { start: 0.5, end: 1.5 }, "copy")
      expect(NodeFs.existsSync(whole.request.outputPath)).toBe(true)
      refused(yield* Effect.flip(exportRally(source, dir, { start: 2, end: 4.5 }, "copy")))
      // Accurate, opened with ffprobe or in process: the packet list (read in every mode, for the rally's
      // first frame) refuses it before ffmpeg runs.
      const accurate = yield* Effect.flip(
        exportRally(source, dir, { start: 2, end: 4.5 }, "accurate").pipe(
          Effect.provide(exporterLayer({ inProcess: false }))
        )
      )
      const accurateInProcess = yield* Effect.flip(
        exportRally(source, dir, { start: 2, end: 4.5 }, "accurate").pipe(Effect.provide(exporterLayer()))
      )
      refused(accurateInProcess)
      refused(accurate)
      expect(accurate.message).toContain("before this rally ends")
      expect(listFiles(NodePath.join(dir, "clips"))).toEqual([NodePath.basename(whole.request.outputPath)])
      expect(listFiles(NodePath.join(dir, "tmp"))).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

  it.live("accurate: starts at the rally's first frame, shown once, duration within one frame", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("accurate")
      const frame = 1 / 25
      // 2.05 and 3.33 fall between two frames: a re-encode started there used to show the first frame twice.
      for (const start of [2.5, 2.05, 1.0, 3.33]) {
        const end = start + 1.2
        const { request, result } = yield* exportRally(source, dir, { start, end }, "accurate")
        const target = Math.ceil(start / frame - 1e-6) * frame
        expect(result.clipStart).toBeCloseTo(target, 5)
        expect(result.firstFrame).toBeCloseTo(target, 5)
        // The clip's first two frames match the source frames at and after the start better than their neighbours.
        for (const n of [0, 1]) {
          const at = target + n * frame
          const scores = [] as Array<number>
          for (const t of [at - frame, at, at + frame]) {
            scores.push(yield* framePsnr(request.outputPath, n, source, t - 0.001))
          }
          expect(scores.indexOf(Math.max(...scores))).toBe(1)
          expect(scores[1]).toBeGreaterThan(30)
        }
        const duration = yield* videoDuration(request.outputPath)
        expect(Math.abs(duration - (end - target))).toBeLessThanOrEqual(frame + 1e-6)
      }
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())))

  it.live("verifyOutput \"progress\": checks what ffmpeg reports instead of running ffprobe", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("progress-check")
      for (const mode of ["copy", "accurate"] as const) {
        for (const [start, end] of [[0.3, 2.3], [2.05, 5.9]] as const) {
          const { request, result } = yield* exportRally(source, dir, { start, end }, mode)
          // A re-encode ends where its last frame ends (with its audio): within a frame after the rally's end.
          if (mode === "copy") expect(result.clipEnd).toBe(end)
          else expect(result.clipEnd - end).toSatisfy((late: number) => late >= 0 && late < 0.04 + 1e-6)
          expect((yield* (yield* Exporter.Exporter).verify(request.outputPath))._tag).toBe("Valid")
        }
      }
    }).pipe(Effect.scoped, Effect.provide(exporterLayer({ verifyOutput: "progress" }))))

  it.live("progress reaches 1 and never goes back", () =>
    Effect.gen(function*() {
      const source = yield* longVideo
      const dir = yield* tempDir("progress")
      const seen: Array<number> = []
      yield* exportRally(source, dir, { start: 1, end: 9 }, "accurate", {
        onProgress: (ratio) => Effect.sync(() => seen.push(ratio))
      })
      expect(seen.at(-1)).toBe(1)
      expect(seen.length).toBeGreaterThan(1)
      expect(seen.every((r, i) => i === 0 || r >= seen[i - 1]!)).toBe(true)
      expect(seen.every((r) => r >= 0 && r <= 1)).toBe(true)
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())))

  it.live("interrupting a running export ends ffmpeg and leaves no file", () =>
    Effect.gen(function*() {
      const { runDir, start } = yield* setup("interrupt")
      const { fiber, pid, request } = yield* start(yield* longVideo, { start: 0.5, end: 19 }, "accurate")
      expect(isAlive(pid)).toBe(true)
      // ffmpeg creates its output once it has read the input's header.
      yield* waitUntil("ffmpeg's part file", () => NodeFs.existsSync(request.tempPath) || undefined)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(isAlive(pid)).toBe(false)
      expect(() => process.kill(pid, 0)).toThrow()
      expect(NodeFs.existsSync(request.tempPath)).toBe(false)
      expect(NodeFs.existsSync(request.outputPath)).toBe(false)
      expect(listFiles(runDir)).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("a paused export is stopped (SIGSTOP), resumes and completes; low priority runs niced", () =>
    Effect.gen(function*() {
      const { exporter, request: requestOf, start } = yield* setup("pause")
      expect(exporter.canPause).toBe(true)
      const paused = yield* SubscriptionRef.make(true)
      const { fiber, pid, request } = yield* start(yield* testVideo, { start: 0, end: 5 }, "accurate", {
        paused,
        priority: "low"
      })
      yield* waitUntil("the stop to land", () => processState(pid) === "T" || undefined)
      expect(processNice(pid)).toBe(10)
      // Its own session's autogroup too, where the kernel schedules by autogroup.
      if (NodeFs.existsSync(`/proc/${pid}/autogroup`)) expect(autogroupNice(pid)).toBe(10)
      // Stays stopped while paused: a whole other export of the same exporter runs start to finish
      // meanwhile, and the paused one gains no CPU time and does not finish.
      const ticks = processUserTicks(pid)
      yield* exporter.export(yield* requestOf(yield* testVideo, { start: 1, end: 2 }, "copy"))
      expect(processState(pid)).toBe("T")
      expect(processUserTicks(pid)).toBe(ticks)
      expect(fiber.unsafePoll()).toBeNull()
      yield* SubscriptionRef.set(paused, false)
      const result = yield* Fiber.join(fiber)
      expect(result.clipEnd).toBe(5)
      expect(NodeFs.existsSync(request.outputPath)).toBe(true)
      expect((yield* exporter.verify(request.outputPath))._tag).toBe("Valid")
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("interrupting a paused export kills it where it stands (never continued), without waiting for the grace period", () =>
    Effect.gen(function*() {
      // A grace far longer than the test's timeout: the test ends only if the kill did not wait for it.
      const { start } = yield* setup("pause-interrupt", { killGrace: "1 hour" })
      const paused = yield* SubscriptionRef.make(true)
      const { fiber, pid, request } = yield* start(yield* testVideo, { start: 0, end: 5 }, "accurate", { paused })
      yield* waitUntil("the stop to land", () => processState(pid) === "T" || undefined)
      // A stopped encode that is continued (to act on SIGTERM) runs its own code again, beside the
      // exports that hold the slots: its user-mode CPU time grows. A SIGKILLed one only runs the
      // kernel's exit (it may show as R meanwhile), so its user time stays where the stop left it.
      const stoppedAt = processUserTicks(pid)
      let userTicks = stoppedAt ?? 0
      const sampler = setInterval(() => {
        userTicks = Math.max(userTicks, processUserTicks(pid) ?? 0)
      }, 1)
      yield* Fiber.interrupt(fiber)
      clearInterval(sampler)
      expect(stoppedAt).not.toBeNull()
      // The kernel credits the time of the last partial tick when the process exits, so the count
      // may step by one after the kill; a continued encode would run on for many ticks. The stand-in
      // that ignores SIGTERM (next test) is the sharp check of "never continued".
      expect(userTicks).toBeLessThanOrEqual((stoppedAt ?? 0) + 1)
      expect(isAlive(pid)).toBe(false)
      expect(NodeFs.existsSync(request.tempPath)).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("a paused export that would ignore SIGTERM is still killed where it stands: it never runs again", () =>
    Effect.gen(function*() {
      // A stand-in "ffmpeg" that ignores SIGTERM and ticks into a log while it runs. Continued to act
      // on SIGTERM, it would tick again, and the interrupt would wait out the hour's grace.
      const scripts = yield* tempDir("pause-kill-bin")
      const ticks = NodePath.join(scripts, "ticks")
      const stubborn = NodePath.join(scripts, "ffmpeg")
      NodeFs.writeFileSync(stubborn, `#!/bin/sh\ntrap '' TERM\nwhile :; do echo t >> "${ticks}"; sleep 0.01; done\n`, {
        mode: 0o755
      })
      const tickCount = () => NodeFs.existsSync(ticks) ? NodeFs.readFileSync(ticks, "utf8").length : 0
      const { start } = yield* setup(
        "pause-kill",
        { killGrace: "1 hour" },
        (real) => ({ ...real, ffmpeg: { ...real.ffmpeg, path: stubborn } })
      )
      const paused = yield* SubscriptionRef.make(false)
      const { fiber, pid, request } = yield* start(yield* testVideo, { start: 1, end: 2 }, "copy", { paused })
      yield* waitUntil("the stand-in to tick", () => tickCount() > 0 || undefined)
      yield* SubscriptionRef.set(paused, true)
      yield* waitUntil("the stop to land", () => processState(pid) === "T" || undefined)
      const atStop = tickCount()
      yield* Fiber.interrupt(fiber)
      expect(isAlive(pid)).toBe(false)
      expect(tickCount()).toBe(atStop)
      expect(NodeFs.existsSync(request.tempPath)).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("a process that ignores SIGTERM is SIGKILLed after the grace period; a timeout is a transient failure", () =>
    Effect.gen(function*() {
      // A stand-in "ffmpeg" that ignores SIGTERM, says so, and never finishes.
      const scripts = yield* tempDir("grace-bin")
      const stubborn = NodePath.join(scripts, "ffmpeg")
      const ready = NodePath.join(scripts, "trapped")
      NodeFs.writeFileSync(stubborn, `#!/bin/sh\ntrap '' TERM\n: > "${ready}"\nwhile :; do sleep 0.05; done\n`, {
        mode: 0o755
      })
      const withStubborn = (real: FfmpegResolver.FfmpegShape) => ({ ...real, ffmpeg: { ...real.ffmpeg, path: stubborn } })
      const source = yield* testVideo
      const { runDir, start } = yield* setup("grace", { killGrace: "400 millis" }, withStubborn)
      const { fiber, pid, request } = yield* start(source, { start: 1, end: 2 }, "copy")
      yield* waitUntil("the stand-in to ignore SIGTERM", () => NodeFs.existsSync(ready) || undefined)
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      const took = Date.now() - started
      expect(took).toBeGreaterThanOrEqual(380)
      expect(isAlive(pid)).toBe(false)
      expect(NodeFs.existsSync(request.tempPath)).toBe(false)
      expect(listFiles(runDir)).toEqual([])

      const timed = yield* setup("grace-timeout", { killGrace: "200 millis", timeout: "300 millis" }, withStubborn)
      const failure = yield* Effect.flip(Effect.flatMap(
        timed.request(source, { start: 1, end: 2 }, "copy"),
        timed.exporter.export
      ))
      expect(failure._tag).toBe("ExportFailed")
      if (failure._tag === "ExportFailed") {
        expect(failure.reason).toBe("timeout")
        expect(failure.transient).toBe(true)
      }
      expect(listFiles(timed.runDir)).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("ffmpeg killed by a signal is a transient ExportFailed", () =>
    Effect.gen(function*() {
      const { start } = yield* setup("signal")
      const paused = yield* SubscriptionRef.make(true)
      const { fiber, pid, request } = yield* start(yield* testVideo, { start: 0, end: 5 }, "accurate", { paused })
      process.kill(pid, "SIGKILL")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("ExportFailed")
      if (error._tag === "ExportFailed") {
        expect(error.reason).toBe("signal")
        expect(error.transient).toBe(true)
        expect(error.message).not.toContain("\n")
      }
      expect(NodeFs.existsSync(request.tempPath)).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("a disk that fills while ffmpeg writes the trailer (exit 0, no index): one line, no space left, not retried", () =>
    Effect.gen(function*() {
      // What ffmpeg 5.1 does when the disk fills at the end: the clip is cut short (no moov), the
      // trailer error goes to stderr, and the exit code is 0.
      const scripts = yield* tempDir("nospace-bin")
      const full = NodePath.join(scripts, "ffmpeg")
      NodeFs.writeFileSync(
        full,
        `#!/bin/sh\nfor out; do :; done\nhead -c 4096 /dev/zero > "$out"\n` +
          `echo "Error writing trailer of $out: No space left on device" >&2\n` +
          `echo "Error closing file $out: No space left on device" >&2\nexit 0\n`,
        { mode: 0o755 }
      )
      const { exporter, request } = yield* setup("nospace", {}, (real) => ({
        ...real,
        ffmpeg: { ...real.ffmpeg, path: full }
      }))
      const req = yield* request(yield* testVideo, { start: 1, end: 3 }, "copy")
      const error = yield* Effect.flip(exporter.export(req))
      expect(error._tag).toBe("ExportFailed")
      if (error._tag === "ExportFailed") {
        expect(error.reason).toBe("no-space")
        expect(error.detail).toBe("no space left on device")
        expect(error.transient).toBe(false)
        expect(error.message).not.toContain("\n")
        expect(error.message).not.toContain(req.tempPath)
        expect(error.message).not.toMatch(/moov|ffprobe/)
      }
      expect(NodeFs.existsSync(req.tempPath)).toBe(false)
      expect(NodeFs.existsSync(req.outputPath)).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live.skipIf(!canMountTmpfs)("a really full disk (a small tmpfs): no space left on device, one line, not retried", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      // The clip's size on a disk with room.
      const roomy = yield* setup("nospace-roomy")
      const { result } = yield* Effect.flatMap(
        roomy.request(source, { start: 0.5, end: 5.5 }, "copy"),
        (req) => Effect.map(roomy.exporter.export(req), (result) => ({ result }))
      )
      // A disk a few pages smaller than the clip: ffmpeg fills it while writing.
      const mount = yield* smallDisk("nospace-mnt", (Math.floor(result.sizeBytes / 4096) - 4) * 4096)
      const { exporter, request } = yield* setup("nospace-full")
      const req = yield* Effect.map(request(source, { start: 0.5, end: 5.5 }, "copy"), (r) => ({
        ...r,
        tempPath: NodePath.join(mount, "tmp", "clip.part"),
        outputPath: NodePath.join(mount, "clips", "clip.mp4")
      }))
      const error = yield* Effect.flip(exporter.export(req))
      expect(error._tag).toBe("ExportFailed")
      if (error._tag === "ExportFailed") {
        expect([error.reason, error.detail, error.transient]).toEqual(["no-space", "no space left on device", false])
        expect(error.message).not.toContain(mount)
      }
      expect(listFiles(mount).filter((name) => name.endsWith(".part") || name.endsWith(".mp4"))).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live.skipIf(!canMountTmpfs)("a full disk is retried only when space came back meanwhile", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const mount = yield* smallDisk("nospace-back", 8 << 20)
      // Another program's 6 MiB on the 8 MiB disk; the "ffmpeg" fills the rest and fails, and when
      // `free` exists that program deletes its file meanwhile.
      const ballast = NodePath.join(mount, "ballast")
      NodeFs.writeFileSync(ballast, Buffer.alloc(6 << 20))
      const scripts = yield* tempDir("nospace-back-bin")
      const flag = NodePath.join(scripts, "free")
      const fake = NodePath.join(scripts, "ffmpeg")
      NodeFs.writeFileSync(
        fake,
        `#!/bin/sh\nfor out; do :; done\nhead -c ${8 << 20} /dev/zero > "$out" 2>/dev/null\n` +
          `if [ -f "${flag}" ]; then rm -f "${ballast}"; fi\n` +
          `echo "Error writing trailer of $out: No space left on device" >&2\nexit 1\n`,
        { mode: 0o755 }
      )
      const onMount = (setupName: string, ffmpeg?: (real: FfmpegResolver.FfmpegShape) => FfmpegResolver.FfmpegShape) =>
        Effect.gen(function*() {
          const { exporter, request } = yield* setup(setupName, {}, ffmpeg)
          const req = yield* Effect.map(request(source, { start: 1, end: 3 }, "copy"), (r) => ({
            ...r,
            tempPath: NodePath.join(mount, "tmp", "clip.part"),
            outputPath: NodePath.join(mount, "clips", "clip.mp4")
          }))
          return { exporter, req }
        })
      const faked = yield* onMount("nospace-back-fake", (real) => ({ ...real, ffmpeg: { ...real.ffmpeg, path: fake } }))

      // Still full after the attempt: permanent.
      const stillFull = yield* Effect.flip(faked.exporter.export(faked.req))
      expect(stillFull._tag === "ExportFailed" ? [stillFull.reason, stillFull.transient] : stillFull._tag)
        .toEqual(["no-space", false])
      expect(NodeFs.existsSync(faked.req.tempPath)).toBe(false)

      // The other program freed its 6 MiB meanwhile: the same one line, and worth a retry.
      NodeFs.writeFileSync(flag, "")
      const cameBack = yield* Effect.flip(faked.exporter.export(faked.req))
      expect(cameBack._tag === "ExportFailed" ? [cameBack.reason, cameBack.transient] : cameBack._tag)
        .toEqual(["no-space", true])
      expect(cameBack.message).toMatch(/^export failed \(no-space\): no space left on device \(/)
      expect(NodeFs.existsSync(faked.req.tempPath)).toBe(false)
      expect(NodeFs.existsSync(ballast)).toBe(false)

      // And the retry would succeed: the real ffmpeg cuts the clip there now.
      const real = yield* onMount("nospace-back-real")
      const done = yield* real.exporter.export(real.req)
      expect(done.sizeBytes).toBeGreaterThan(0)
      expect(NodeFs.statSync(real.req.outputPath).size).toBe(done.sizeBytes)
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("bad input: missing source, text file, rally past the end are typed errors and write nothing", () =>
    Effect.gen(function*() {
      const exporter = yield* Exporter.Exporter
      const source = yield* testVideo
      const dir = yield* tempDir("bad")
      const work = NodePath.join(dir, "work")
      const missing = makeRequest(NodePath.join(dir, "gone.mp4"), "s1-m1-i1-d1", work, { start: 0, end: 1 }, "copy")
      expect((yield* Effect.flip(exporter.export(missing)))._tag).toBe("SourceNotFound")
      const text = NodePath.join(dir, "text.mp4")
      NodeFs.writeFileSync(text, "hello\n")
      const notMedia = makeRequest(text, "x", work, { start: 0, end: 1 }, "copy")
      expect((yield* Effect.flip(exporter.export(notMedia)))._tag).toBe("NotMediaFile")
      for (const [start, end] of [[7, 9], [5, 8], [6, 7]] as const) {
        const error = yield* Effect.flip(exportRally(source, work, { start, end }, "copy"))
        expect(error._tag).toBe("InvalidRally")
        expect(error.message).not.toContain("\n")
      }
      // A rally ending a little past the end is cut at the end of the source: its container's duration, which
      // the AAC track's last frame makes up to one audio frame (1024 / 48000 s) longer than the 6 s picture.
      const { result } = yield* exportRally(source, work, { start: 5, end: 6.3 }, "copy")
      const info = yield* exporter.probe(source)
      expect(result.clipEnd).toBeCloseTo(info.duration, 3)
      expect(result.clipEnd).toBeGreaterThanOrEqual(6 - 1e-3)
      expect(result.clipEnd).toBeLessThanOrEqual(6 + 1024 / 48000 + 1e-3)
      expect(listFiles(NodePath.join(work, "tmp"))).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())))

  it.live("a video without audio exports in both modes", () =>
    Effect.gen(function*() {
      const source = yield* silentVideo
      const dir = yield* tempDir("silent")
      for (const mode of ["copy", "accurate"] as const) {
        const { request } = yield* exportRally(source, dir, { start: 1.5, end: 3 }, mode)
        expect((yield* (yield* Exporter.Exporter).verify(request.outputPath))._tag).toBe("Valid")
      }
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())))

  it.live("verify: a clip cut to half its size is Invalid, a whole one Valid, a missing one Invalid", () =>
    Effect.gen(function*() {
      const exporter = yield* Exporter.Exporter
      const source = yield* testVideo
      const dir = yield* tempDir("verify")
      for (const mode of ["copy", "accurate"] as const) {
        const { request } = yield* exportRally(source, dir, { start: 0.5, end: 5.5 }, mode)
        expect(yield* exporter.verify(request.outputPath)).toEqual({ _tag: "Valid" })
        const truncated = NodePath.join(dir, `truncated-${mode}.mp4`)
        const bytes = NodeFs.readFileSync(request.outputPath)
        NodeFs.writeFileSync(truncated, bytes.subarray(0, Math.floor(bytes.length / 2)))
        const result = yield* exporter.verify(truncated)
        expect(result._tag).toBe("Invalid")
      }
      expect((yield* exporter.verify(NodePath.join(dir, "none.mp4")))._tag).toBe("Invalid")
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())))

  it.live("the default in-process check fails a clip that ffmpeg wrote short; nothing is left behind", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("short-clip")
      const real = yield* FfmpegResolver.Ffmpeg
      const source = yield* testVideo
      // A stand-in "ffmpeg": the real one, then its output (the last argument) cut to half.
      const halving = NodePath.join(dir, "ffmpeg")
      NodeFs.writeFileSync(
        halving,
        `#!/bin/sh\n"${real.ffmpeg.path}" "$@" || exit $?\nfor out; do :; done\nsize=$(wc -c < "$out")\ntruncate -s $((size / 2)) "$out"\n`,
        { mode: 0o755 }
      )
      const layer = FfmpegExporter.layerWithFfmpeg({ inProcess: false }).pipe(
        Layer.provide(FfmpegResolver.layerStatic({ ffmpeg: { ...real.ffmpeg, path: halving }, ffprobe: real.ffprobe }))
      )
      const failure = yield* Effect.flip(exportRally(source, dir, { start: 1, end: 4 }, "copy").pipe(Effect.provide(layer)))
      expect(failure._tag).toBe("ExportFailed")
      if (failure._tag === "ExportFailed") {
        expect(failure.reason).toBe("verify")
        expect(failure.detail).toMatch(/file ends/)
      }
      expect(listFiles(NodePath.join(dir, "clips"))).toEqual([])
      expect(listFiles(NodePath.join(dir, "tmp"))).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)

  it.live("settingsVersion changes with the encoder settings", () =>
    Effect.gen(function*() {
      const a = yield* Effect.provide(Exporter.Exporter, exporterLayer({ crf: 20 }))
      const b = yield* Effect.provide(Exporter.Exporter, exporterLayer({ crf: 23 }))
      const c = yield* Effect.provide(Exporter.Exporter, exporterLayer({ preset: "medium" }))
      expect(a.settingsVersion("accurate")).not.toBe(b.settingsVersion("accurate"))
      expect(a.settingsVersion("accurate")).not.toBe(c.settingsVersion("accurate"))
      expect(a.settingsVersion("copy")).toBe(b.settingsVersion("copy"))
      expect(a.settingsVersion("copy")).not.toBe(a.settingsVersion("accurate"))
    }))

  it.live("when the owning process is SIGKILLed, its ffmpeg dies with it and reapStale clears the leftovers", () =>
    Effect.gen(function*() {
      const source = yield* longVideo
      const dir = yield* tempDir("crash")
      const runDir = NodePath.join(dir, "run")
      const child = ChildProcess.spawn(
        process.execPath,
        ["--import", "tsx", NodePath.join(import.meta.dirname, "fixtures", "ffmpeg-export-child.ts"), source, runDir, dir],
        { stdio: "ignore" }
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const pid = yield* waitForPid(runDir)
      const part = NodePath.join(dir, "tmp", "child.part")
      yield* waitUntil("the child's part file", () => NodeFs.existsSync(part) || undefined)
      expect(isAlive(pid)).toBe(true)
      child.kill("SIGKILL")
      // Linux: setpriv --pdeathsig KILL ends ffmpeg with its parent.
      yield* waitUntil("ffmpeg to die with its parent", () => !isAlive(pid) || undefined)
      // The crashed owner could not clean up: the next start does.
      expect(NodeFs.existsSync(NodePath.join(runDir, `${pid}.json`))).toBe(true)
      const reaped = yield* FfmpegExporter.reapStale(runDir)
      expect(reaped.removed).toEqual([part])
      expect(NodeFs.existsSync(part)).toBe(false)
      expect(NodeFs.readdirSync(runDir)).toEqual([])
      expect(NodeFs.existsSync(NodePath.join(dir, "clips", "child.mp4"))).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(Live)))

  it.live("reapStale kills an ffmpeg recorded by a dead owner and removes its part file; live owners are kept", () =>
    Effect.gen(function*() {
      const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
      const dir = yield* tempDir("reap")
      const runDir = NodePath.join(dir, "run")
      NodeFs.mkdirSync(runDir)
      // An orphan: started through a shell that exits at once, like an export of a crashed process.
      const orphanPid = Number(
        ChildProcess.execFileSync("sh", [
          "-c",
          `"${ffmpeg.path}" -nostdin -v error -re -f lavfi -i testsrc2=size=64x64 -f null - >/dev/null 2>&1 & echo $!`
        ], { encoding: "utf8" }).trim()
      )
      expect(isAlive(orphanPid)).toBe(true)
      const deadOwner = ChildProcess.spawnSync("true").pid
      const part = NodePath.join(dir, "x.part")
      NodeFs.writeFileSync(part, "partial")
      NodeFs.writeFileSync(
        NodePath.join(runDir, `${orphanPid}.json`),
        JSON.stringify({ pid: orphanPid, owner: deadOwner, tempPath: part, startedAt: Date.now() })
      )
      // Another live process's export: not ours to touch.
      const livePart = NodePath.join(dir, "live.part")
      NodeFs.writeFileSync(livePart, "partial")
      NodeFs.writeFileSync(
        NodePath.join(runDir, "999999.json"),
        JSON.stringify({ pid: 999999, owner: process.ppid, tempPath: livePart, startedAt: Date.now() })
      )
      const result = yield* FfmpegExporter.reapStale(runDir)
      expect(result.killed).toEqual([orphanPid])
      expect(result.removed).toEqual([part])
      yield* waitUntil("the orphan to die", () => !isAlive(orphanPid) || undefined)
      expect(NodeFs.existsSync(part)).toBe(false)
      expect(NodeFs.existsSync(livePart)).toBe(true)
      expect(NodeFs.readdirSync(runDir)).toEqual(["999999.json"])
    }).pipe(Effect.scoped, Effect.provide(Live)))
})
