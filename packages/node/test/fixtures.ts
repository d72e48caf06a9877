/**
 * Shared helpers of the node package's tests: the generated fixture videos
 * (cached per run under os.tmpdir()/rallycache-fixtures), ffprobe/ffmpeg
 * readers and process helpers. Not a test file.
 */
import { NodeContext } from "@effect/platform-node"
import { Domain, Exporter } from "@rallycache/core"
import { Effect, Layer, type ManagedRuntime } from "effect"
import * as NodeChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FfmpegExporter, FfmpegResolver, SampleVideo } from "../src/index.js"
import { run } from "../src/internal/export/process.js"

export const fixtureDir = NodePath.join(NodeOs.tmpdir(), "rallycache-fixtures")

/** Resolver + platform, for tests. */
export const Live = FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))

/** Exporter + resolver + platform. */
export const exporterLayer = (options: FfmpegExporter.Options = {}) =>
  FfmpegExporter.layerWithFfmpeg(options).pipe(Layer.provideMerge(Live))

/** The standard test video: 320x240, 25 fps, 6 s, keyframe every 1 s, audio, clock. */
export const testVideo = SampleVideo.cached({ dir: fixtureDir, duration: 6, width: 320, height: 240, fps: 25, gop: 1 })

/** A longer one, so an accurate export runs for a while (about 1-2 s). */
export const longVideo = SampleVideo.cached({ dir: fixtureDir, duration: 20, width: 640, height: 360, fps: 25, gop: 1 })

/** Video only. */
export const silentVideo = SampleVideo.cached({
  dir: fixtureDir,
  duration: 4,
  width: 320,
  height: 240,
  fps: 25,
  gop: 1,
  audio: false
})

export const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), `rallycache-${prefix}-`))),
    (dir) => Effect.sync(() => NodeFs.rmSync(dir, { recursive: true, force: true }))
  )

export const ffprobeJson = (path: string, args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const { ffprobe } = yield* FfmpegResolver.Ffmpeg
    const result = yield* run(ffprobe.path, ["-v", "error", "-of", "json", ...args, path], { collectStdout: true })
    if (result.exitCode !== 0) return yield* Effect.dieMessage(`ffprobe failed: ${result.stderrTail.join("\n")}`)
    return JSON.parse(result.stdout) as Record<string, unknown>
  })

/** Duration of a file's first video stream, from its frames' timestamps (edit lists ignored). */
export const videoDuration = (path: string) =>
  Effect.map(
    ffprobeJson(path, ["-select_streams", "v:0", "-show_entries", "stream=duration,nb_frames,avg_frame_rate"]),
    (json) => {
      const stream = (json["streams"] as Array<Record<string, string>>)[0]!
      const [num, den] = stream["avg_frame_rate"]!.split("/").map(Number) as [number, number]
      return Number(stream["nb_frames"]) / (num / den)
    }
  )

/** MD5 of one decoded video frame: the first of `path`, or the first at or after `at` seconds. */
export const frameMd5 = (path: string, at?: number) =>
  Effect.gen(function*() {
    const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
    const filter = at === undefined ? [] : ["-vf", `trim=start=${at}`]
    const result = yield* run(
      ffmpeg.path,
      ["-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", ...filter, "-frames:v", "1", "-f", "md5", "-"],
      { collectStdout: true }
    )
    return result.stdout.trim()
  })

/** PSNR between the video frame `n` (from 0) of `clip` and the first frame of `source` at or after `at`. */
export const framePsnr = (clip: string, n: number, source: string, at: number) =>
  Effect.gen(function*() {
    const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
    const graph = `[0:v]trim=start_frame=${n}:end_frame=${n + 1},setpts=PTS-STARTPTS[a];[1:v]trim=start=${at},setpts=PTS-STARTPTS,trim=end_frame=1[b];[a][b]psnr`
    const result = yield* run(
      ffmpeg.path,
      ["-nostdin", "-hide_banner", "-i", clip, "-i", source, "-lavfi", graph, "-f", "null", "-"],
      { stderrLines: 200 }
    )
    const line = result.stderrTail.find((l) => l.includes("PSNR")) ?? ""
    const match = /average:(inf|[\d.]+)/.exec(line)
    return match === null ? 0 : match[1] === "inf" ? Infinity : Number(match[1])
  })

/**
 * Wait until `check` returns a value (not `undefined`): polled, so it waits
 * for the event however slow a loaded machine is. The bound only turns a
 * hang into a failure naming `what`; it is far above any expected wait.
 */
export const waitUntil = <A>(what: string, check: () => A | undefined, timeoutMs = 60_000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const value = check()
      if (value !== undefined) return value
      if (Date.now() > deadline) return yield* Effect.dieMessage(`waited ${timeoutMs} ms for ${what}`)
      yield* Effect.sleep("5 millis")
    }
  })

/** The pid recorded in `runDir` by the running export. */
export const waitForPid = (runDir: string) =>
  waitUntil(`an export recorded in ${runDir}`, () => {
    try {
      const name = NodeFs.readdirSync(runDir).find((n) => n.endsWith(".json"))
      return name === undefined ? undefined : Number(name.replace(".json", ""))
    } catch {
      return undefined
    }
  })

/** The fields of /proc/<pid>/stat after the command name (the first is the state), or null when gone. */
const statFields = (pid: number): Array<string> | null => {
  try {
    const stat = NodeFs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")
  } catch {
    return null
  }
}

/** Process state letter from /proc (R, S, T for stopped, Z...), or null when gone. */
export const processState = (pid: number): string | null => statFields(pid)?.[0]?.charAt(0) ?? null

/** CPU time spent in user mode, in clock ticks (field 14), or null when gone. */
export const processUserTicks = (pid: number): number | null => {
  const fields = statFields(pid)
  return fields === null ? null : Number(fields[11])
}

/** Niceness (field 19), or null when gone. */
export const processNice = (pid: number): number | null => {
  const fields = statFields(pid)
  return fields === null ? null : Number(fields[16])
}

/** ffmpeg on PATH with `args` (errors only); its stdout, or a rejection carrying its stderr. */
export const ffmpegText = (args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) =>
    NodeChildProcess.execFile(
      "ffmpeg",
      ["-nostdin", "-hide_banner", "-v", "error", ...args],
      { maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => error === null ? resolve(stdout) : reject(new Error(`${error.message} ${stderr}`))
    )
  )

/**
 * Per-frame hashes of each decoded stream of `maps` (edit lists applied, as a player shows it), no
 * timestamps: one decode of the file, framemd5 numbering the streams in the order of `maps`.
 */
export const streamHashes = async (path: string, maps: ReadonlyArray<string>) => {
  const byStream = maps.map((): Array<string> => [])
  const lines = (await ffmpegText(["-i", path, ...maps.flatMap((map) => ["-map", map]), "-f", "framemd5", "-"]))
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
  for (const line of lines) {
    const fields = line.split(",")
    byStream[Number(fields[0])]!.push(fields.slice(3).join(",").trim())
  }
  return byStream
}

/**
 * Cuts rally `rally` of `source` through the exporter of `runtime` into `dir`/clips (named after the
 * source, the mode and `tag`, ending in `extension`), then verifies the clip: the result and the check.
 */
export const cutAndVerify = (
  runtime: ManagedRuntime.ManagedRuntime<Exporter.Exporter, unknown>,
  options: {
    readonly dir: string
    readonly videoId: Domain.VideoId
    readonly source: string
    readonly rally: { readonly start: number; readonly end: number }
    readonly mode: Domain.ExportMode
    readonly tag: string
    readonly extension: string
  }
) =>
  runtime.runPromise(Effect.gen(function*() {
    const { dir, mode, tag } = options
    const exporter = yield* Exporter.Exporter
    const file = NodePath.basename(options.source)
    const info = yield* exporter.probe(options.source)
    const out = NodePath.join(dir, "clips", `${file}.${mode}.${tag}.${options.extension}`)
    const result = yield* exporter.export({
      source: new Domain.VideoSource({ id: options.videoId, path: options.source, fingerprint: info.fingerprint }),
      rally: new Domain.Rally({ index: 0, ...options.rally }),
      mode,
      priority: "high",
      tempPath: NodePath.join(dir, "tmp", `${file}.${mode}.${tag}.part`),
      outputPath: out
    })
    const verified = yield* exporter.verify(out)
    return { out, result, verified }
  }))
