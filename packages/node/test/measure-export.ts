/**
 * Not a test: measures one export through FfmpegExporter against the identical
 * ffmpeg command run by hand (child_process, same arguments, no verification),
 * in the same run, interleaved, and prints medians and ratios.
 *
 *   cd /work/main/packages/node && npx tsx test/measure-export.ts [--runs-copy 15] [--runs-accurate 3]
 *
 * Source: a 5-minute 1280x720 30 fps H.264 + AAC video with a keyframe every
 * 2 s (generated once into os.tmpdir()/rallycache-fixtures).
 */
import { NodeContext } from "@effect/platform-node"
import { Domain, Exporter } from "@rallycache/core"
import { Effect, Layer, Schema } from "effect"
import * as ChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FfmpegExporter, FfmpegResolver, SampleVideo } from "../src/index.js"
import { accurateArgs, streamCopyArgs } from "../src/internal/export/ffmpegArgs.js"
import { copyPlan, parseKeyframes } from "../src/internal/export/keyframePlan.js"

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const runsCopy = arg("--runs-copy", 15)
const runsAccurate = arg("--runs-accurate", 3)

const median = (xs: Array<number>) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]!
}

const byHand = (ffmpeg: string, args: Array<string>) =>
  new Promise<number>((resolve, reject) => {
    const t0 = performance.now()
    const child = ChildProcess.spawn(ffmpeg, args, { stdio: ["ignore", "pipe", "pipe"] })
    child.stdout.resume()
    child.stderr.resume()
    child.on("error", reject)
    child.on("exit", (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`exit ${code}`))))
  })

const Live = FfmpegExporter.layerWithFfmpeg({}).pipe(
  Layer.provideMerge(FfmpegResolver.layer),
  Layer.provideMerge(NodeContext.layer)
)

const program = Effect.gen(function*() {
  const { ffmpeg, ffprobe } = yield* FfmpegResolver.Ffmpeg
  const exporter = yield* Exporter.Exporter
  const light = yield* FfmpegExporter.make({ verifyOutput: "progress" })
  const t0 = performance.now()
  const source = yield* SampleVideo.cached({
    dir: NodePath.join(NodeOs.tmpdir(), "rallycache-fixtures"),
    duration: 300,
    width: 1280,
    height: 720,
    fps: 30,
    gop: 2
  })
  const fixtureMs = performance.now() - t0
  const p0 = performance.now()
  const info = yield* exporter.probe(source)
  const probeMs = performance.now() - p0
  const work = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-measure-"))
  const keyframes = parseKeyframes(
    ChildProcess.execFileSync(ffprobe.path, [
      "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,dts_time,flags", "-of", "csv=p=0", source
    ], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 }),
    0
  )
  const id = Schema.decodeSync(Domain.VideoId)("measure")
  const rows: Array<{ mode: string; lib: number; light: number; hand: number }> = []
  for (const mode of ["copy", "accurate"] as const) {
    const runs = mode === "copy" ? runsCopy : runsAccurate
    const lib: Array<number> = []
    const lightTimes: Array<number> = []
    const hand: Array<number> = []
    // Warm-up: first copy export also reads the source's keyframe index (once per source).
    const w0 = performance.now()
    yield* exporter.export({
      source: new Domain.VideoSource({ id, path: source, fingerprint: info.fingerprint }),
      rally: new Domain.Rally({ index: 0, start: 5.3, end: 15.3 }),
      mode,
      priority: "high",
      tempPath: NodePath.join(work, "warm.part"),
      outputPath: NodePath.join(work, "warm.mp4")
    })
    const warmMs = performance.now() - w0
    for (let i = 0; i < runs; i++) {
      const start = 20 + ((i * 37.3) % 250)
      const rally = new Domain.Rally({ index: i, start, end: start + 10 })
      const out = NodePath.join(work, `${mode}-${i}.mp4`)
      const handArgs = mode === "copy"
        ? (() => {
          const plan = copyPlan(keyframes, rally.start, rally.end, info.duration)
          const duration = plan.clipEnd - plan.clipStart
          const cut = { videoSeek: plan.seek, present: plan.clipStart, duration, audioDuration: duration + 1 }
          return streamCopyArgs(source, cut, { video: "h264", videoTag: "avc1", audio: ["aac"], seekByIndex: true, videoDelay: true, mov: true }, "mp4", NodePath.join(work, `hand-${i}.mp4`))
        })()
        : accurateArgs(source, rally.start, rally.end, { preset: "veryfast", crf: 20, audioBitrate: "128k" }, NodePath.join(work, `hand-${i}.mp4`))
      const runWith = (which: Exporter.ExporterShape, into: Array<number>, tag: string) => Effect.gen(function*() {
        const s = performance.now()
        yield* which.export({
          source: new Domain.VideoSource({ id, path: source, fingerprint: info.fingerprint }),
          rally,
          mode,
          priority: "high",
          tempPath: NodePath.join(work, `${mode}-${i}-${tag}.part`),
          outputPath: `${out}.${tag}.mp4`
        })
        into.push(performance.now() - s)
      })
      const runLib = Effect.zipRight(runWith(exporter, lib, "a"), runWith(light, lightTimes, "b"))
      const runHand = Effect.promise(() => byHand(ffmpeg.path, handArgs)).pipe(Effect.map((ms) => hand.push(ms)))
      // Alternate the order so neither side always runs on a warmer cache.
      if (i % 2 === 0) {
        yield* runLib
        yield* runHand
      } else {
        yield* runHand
        yield* runLib
      }
    }
    console.log(`${mode}: warm-up export ${warmMs.toFixed(1)} ms (includes the keyframe index read for copy)`)
    rows.push({ mode, lib: median(lib), light: median(lightTimes), hand: median(hand) })
  }
  NodeFs.rmSync(work, { recursive: true, force: true })
  console.log(`ffmpeg: ${ffmpeg.path} (${ffmpeg.source}) ${ffmpeg.version}`)
  console.log(`fixture ${fixtureMs.toFixed(0)} ms (cached after the first run), probe ${probeMs.toFixed(1)} ms (once per source)`)
  console.log(`10 s rally from a 5-minute 1280x720 30 fps video (gop 2 s), medians of ${runsCopy} copy / ${runsAccurate} accurate runs`)
  console.log("mode      by hand      exporter(ffprobe check)  ratio    exporter(progress check)  ratio")
  for (const row of rows) {
    console.log(
      `${row.mode.padEnd(9)} ${row.hand.toFixed(1).padStart(9)} ms ${row.lib.toFixed(1).padStart(14)} ms ${(row.lib / row.hand).toFixed(3).padStart(12)} ${row.light.toFixed(1).padStart(16)} ms ${(row.light / row.hand).toFixed(3).padStart(16)}`
    )
  }
})

Effect.runPromise(program.pipe(Effect.provide(Live))).catch((error) => {
  console.error(error)
  process.exit(1)
})
