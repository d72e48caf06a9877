import { describe, expect, it } from "@effect/vitest"
import { Domain, Exporter } from "@rallycache/core"
import { Effect, Exit, Fiber, Layer, Schema, SubscriptionRef } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FfmpegExporter, FfmpegResolver } from "../src/index.js"
import { autogroupNice } from "../src/internal/priority.js"
import { isAlive } from "../src/internal/process.js"
import * as Temp from "../../../test/support/temp.js"
import {
  exporterLayer,
  firstFramePsnr,
  frameMd5,
  Live,
  longVideo,
  processNice,
  processState,
  silentVideo,
  tempDir,
  testVideo,
  videoDuration,
  waitForPid
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

/** A run folder per test, known before the layer is built. */
const runDirFor = (name: string) => Temp.removeAfterAll(NodePath.join(NodeOs.tmpdir(), `rallycache-run-${name}-${process.pid}`))

const listFiles = (dir: string): Array<string> =>
  NodeFs.existsSync(dir) ? NodeFs.readdirSync(dir, { recursive: true, encoding: "utf8" }) : []

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
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

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
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

  it.live("accurate: starts within one frame of the rally, duration within one frame", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("accurate")
      const frame = 1 / 25
      for (const start of [2.5, 2.05, 1.0, 3.3]) {
        const end = start + 1.2
        const { request, result } = yield* exportRally(source, dir, { start, end }, "accurate")
        expect(result.clipStart).toBe(start)
        // The clip's first frame matches the source frame at the start better than its neighbours.
        const target = Math.ceil(start / frame - 1e-6) * frame
        const scores = [] as Array<number>
        for (const at of [target - frame, target, target + frame]) {
          scores.push(yield* firstFramePsnr(request.outputPath, source, at - 0.001))
        }
        const best = scores.indexOf(Math.max(...scores))
        expect(best).toBe(1)
        expect(scores[1]).toBeGreaterThan(30)
        const duration = yield* videoDuration(request.outputPath)
        expect(Math.abs(duration - (end - start))).toBeLessThanOrEqual(frame + 1e-6)
      }
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

  it.live("verifyOutput \"progress\": checks what ffmpeg reports instead of running ffprobe", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("progress-check")
      for (const mode of ["copy", "accurate"] as const) {
        for (const [start, end] of [[0.3, 2.3], [2.05, 5.9]] as const) {
          const { request, result } = yield* exportRally(source, dir, { start, end }, mode)
          expect(result.clipEnd).toBe(end)
          expect((yield* (yield* Exporter.Exporter).verify(request.outputPath))._tag).toBe("Valid")
        }
      }
    }).pipe(Effect.scoped, Effect.provide(exporterLayer({ verifyOutput: "progress" }))), 60_000)

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
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

  it.live("interrupting a running export ends ffmpeg and leaves no file", () =>
    Effect.gen(function*() {
      const source = yield* longVideo
      const dir = yield* tempDir("interrupt")
      const runDir = runDirFor("interrupt")
      const exporter = yield* Exporter.Exporter
      const info = yield* exporter.probe(source)
      const request = makeRequest(source, info.fingerprint, dir, { start: 0.5, end: 19 }, "accurate")
      const fiber = yield* Effect.fork(exporter.export(request))
      const pid = yield* waitForPid(runDir)
      expect(isAlive(pid)).toBe(true)
      // ffmpeg has started writing (a dynamically linked build takes a while to start).
      for (let i = 0; i < 1000 && !NodeFs.existsSync(request.tempPath); i++) yield* Effect.sleep("10 millis")
      expect(NodeFs.existsSync(request.tempPath)).toBe(true)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(isAlive(pid)).toBe(false)
      expect(() => process.kill(pid, 0)).toThrow()
      expect(NodeFs.existsSync(request.tempPath)).toBe(false)
      expect(NodeFs.existsSync(request.outputPath)).toBe(false)
      expect(listFiles(runDir)).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(exporterLayer({ runDir: runDirFor("interrupt") }))), 60_000)

  it.live("a paused export is stopped (SIGSTOP), resumes and completes; low priority runs niced", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("pause")
      const runDir = runDirFor("pause")
      const exporter = yield* Exporter.Exporter
      expect(exporter.canPause).toBe(true)
      const info = yield* exporter.probe(source)
      const paused = yield* SubscriptionRef.make(true)
      const request = makeRequest(source, info.fingerprint, dir, { start: 0, end: 5 }, "accurate", {
        paused,
        priority: "low"
      })
      const fiber = yield* Effect.fork(exporter.export(request))
      const pid = yield* waitForPid(runDir)
      // Wait until the stop has landed.
      for (let i = 0; i < 200 && processState(pid) !== "T"; i++) yield* Effect.sleep("5 millis")
      expect(processState(pid)).toBe("T")
      expect(processNice(pid)).toBe(10)
      // Its own session's autogroup too, where the kernel schedules by autogroup.
      if (NodeFs.existsSync(`/proc/${pid}/autogroup`)) expect(autogroupNice(pid)).toBe(10)
      yield* Effect.sleep("300 millis")
      expect(processState(pid)).toBe("T")
      expect(fiber.unsafePoll()).toBeNull()
      yield* SubscriptionRef.set(paused, false)
      const result = yield* Fiber.join(fiber)
      expect(result.clipEnd).toBe(5)
      expect(NodeFs.existsSync(request.outputPath)).toBe(true)
      expect((yield* exporter.verify(request.outputPath))._tag).toBe("Valid")
    }).pipe(Effect.scoped, Effect.provide(exporterLayer({ runDir: runDirFor("pause") }))), 60_000)

  it.live("interrupting a paused export ends it too", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("pause-interrupt")
      const runDir = runDirFor("pause-interrupt")
      const exporter = yield* Exporter.Exporter
      const info = yield* exporter.probe(source)
      const paused = yield* SubscriptionRef.make(true)
      const request = makeRequest(source, info.fingerprint, dir, { start: 0, end: 5 }, "accurate", { paused })
      const fiber = yield* Effect.fork(exporter.export(request))
      const pid = yield* waitForPid(runDir)
      for (let i = 0; i < 200 && processState(pid) !== "T"; i++) yield* Effect.sleep("5 millis")
      const started = Date.now()
      yield* Fiber.interrupt(fiber)
      // Ended by SIGTERM (+SIGCONT), well before the 5 s grace.
      expect(Date.now() - started).toBeLessThan(4000)
      expect(isAlive(pid)).toBe(false)
      expect(NodeFs.existsSync(request.tempPath)).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(exporterLayer({ runDir: runDirFor("pause-interrupt"), killGrace: "5 seconds" }))), 60_000)

  it.live("a process that ignores SIGTERM is SIGKILLed after the grace period; a timeout is a transient failure", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir("grace")
      const runDir = NodePath.join(dir, "run")
      const real = yield* FfmpegResolver.Ffmpeg
      const source = yield* testVideo
      // A stand-in "ffmpeg" that ignores SIGTERM and never finishes.
      const stubborn = NodePath.join(dir, "ffmpeg")
      NodeFs.writeFileSync(stubborn, "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 0.05; done\n", { mode: 0o755 })
      const layer = FfmpegExporter.layerWithFfmpeg({ runDir, killGrace: "400 millis" }).pipe(
        Layer.provide(FfmpegResolver.layerStatic({ ffmpeg: { ...real.ffmpeg, path: stubborn }, ffprobe: real.ffprobe }))
      )
      yield* Effect.gen(function*() {
        const exporter = yield* Exporter.Exporter
        const info = yield* exporter.probe(source)
        const request = makeRequest(source, info.fingerprint, dir, { start: 1, end: 2 }, "copy")
        const fiber = yield* Effect.fork(exporter.export(request))
        const pid = yield* waitForPid(runDir)
        yield* Effect.sleep("100 millis")
        const started = Date.now()
        yield* Fiber.interrupt(fiber)
        const took = Date.now() - started
        expect(took).toBeGreaterThanOrEqual(380)
        expect(isAlive(pid)).toBe(false)
        expect(NodeFs.existsSync(request.tempPath)).toBe(false)
      }).pipe(Effect.provide(layer))

      const timed = FfmpegExporter.layerWithFfmpeg({ runDir, killGrace: "200 millis", timeout: "300 millis" }).pipe(
        Layer.provide(FfmpegResolver.layerStatic({ ffmpeg: { ...real.ffmpeg, path: stubborn }, ffprobe: real.ffprobe }))
      )
      const failure = yield* Effect.flip(exportRally(source, dir, { start: 1, end: 2 }, "copy").pipe(Effect.provide(timed)))
      expect(failure._tag).toBe("ExportFailed")
      if (failure._tag === "ExportFailed") {
        expect(failure.reason).toBe("timeout")
        expect(failure.transient).toBe(true)
      }
      expect(listFiles(runDir)).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)

  it.live("ffmpeg killed by a signal is a transient ExportFailed; a non-zero exit keeps stderr", () =>
    Effect.gen(function*() {
      const source = yield* testVideo
      const dir = yield* tempDir("signal")
      const runDir = runDirFor("signal")
      const exporter = yield* Exporter.Exporter
      const info = yield* exporter.probe(source)
      const paused = yield* SubscriptionRef.make(true)
      const request = makeRequest(source, info.fingerprint, dir, { start: 0, end: 5 }, "accurate", { paused })
      const fiber = yield* Effect.fork(exporter.export(request))
      const pid = yield* waitForPid(runDir)
      process.kill(pid, "SIGKILL")
      const error = yield* Effect.flip(Fiber.join(fiber))
      expect(error._tag).toBe("ExportFailed")
      if (error._tag === "ExportFailed") {
        expect(error.reason).toBe("signal")
        expect(error.transient).toBe(true)
        expect(error.message).not.toContain("\n")
      }
      expect(NodeFs.existsSync(request.tempPath)).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(exporterLayer({ runDir: runDirFor("signal") }))), 60_000)

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
      // A rally ending a little past the end is cut at the end of the video.
      const { result } = yield* exportRally(source, work, { start: 5, end: 6.3 }, "copy")
      expect(result.clipEnd).toBeCloseTo(6, 3)
      expect(listFiles(NodePath.join(work, "tmp"))).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

  it.live("a video without audio exports in both modes", () =>
    Effect.gen(function*() {
      const source = yield* silentVideo
      const dir = yield* tempDir("silent")
      for (const mode of ["copy", "accurate"] as const) {
        const { request } = yield* exportRally(source, dir, { start: 1.5, end: 3 }, mode)
        expect((yield* (yield* Exporter.Exporter).verify(request.outputPath))._tag).toBe("Valid")
      }
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

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
    }).pipe(Effect.scoped, Effect.provide(exporterLayer())), 60_000)

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
      const layer = FfmpegExporter.layerWithFfmpeg().pipe(
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
    }), 60_000)

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
      for (let i = 0; i < 500 && !NodeFs.existsSync(part); i++) yield* Effect.sleep("10 millis")
      expect(NodeFs.existsSync(part)).toBe(true)
      expect(isAlive(pid)).toBe(true)
      child.kill("SIGKILL")
      // Linux: setpriv --pdeathsig KILL ends ffmpeg with its parent.
      for (let i = 0; i < 200 && isAlive(pid); i++) yield* Effect.sleep("10 millis")
      expect(isAlive(pid)).toBe(false)
      // The crashed owner could not clean up: the next start does.
      expect(NodeFs.existsSync(NodePath.join(runDir, `${pid}.json`))).toBe(true)
      const reaped = yield* FfmpegExporter.reapStale(runDir)
      expect(reaped.removed).toEqual([part])
      expect(NodeFs.existsSync(part)).toBe(false)
      expect(NodeFs.readdirSync(runDir)).toEqual([])
      expect(NodeFs.existsSync(NodePath.join(dir, "clips", "child.mp4"))).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)

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
      for (let i = 0; i < 100 && isAlive(orphanPid); i++) yield* Effect.sleep("10 millis")
      expect(isAlive(orphanPid)).toBe(false)
      expect(NodeFs.existsSync(part)).toBe(false)
      expect(NodeFs.existsSync(livePart)).toBe(true)
      expect(NodeFs.readdirSync(runDir)).toEqual(["999999.json"])
    }).pipe(Effect.scoped, Effect.provide(Live)))
})
