/**
 * Scenario: a long match. A 2-hour source (640x360 30 fps H.264 + AAC,
 * keyframe every 2 s, moov at the end, as a camera writes it) made cheaply
 * by stream-copy-looping a 10 s encoded segment with ffmpeg `-stream_loop`,
 * and a 2-minute source looped from the same segment:
 *
 * - opening the 2-hour source (`probe`: streams, duration and the keyframe
 *   list, read in process), on a fresh exporter each time;
 * - one exact rally (8 s) cut from the 2-hour source / the same rally
 *   (same position in the segment, so the same bytes) cut from the
 *   2-minute one, alternating which goes first, after a full collection
 *   of what the openings left and a few warm-up cuts of each; a cut takes
 *   a few milliseconds, so the medians are of many pairs;
 * - the resident memory one in-process export of a ~100 MB clip (exact, from
 *   the 2-hour source) adds above the process's idle, sampled every 2 ms.
 *
 * Both sources are cached in test/bench/.fixtures.
 */
import { Domain, Exporter } from "@rallycache/core"
import { FfmpegExporter } from "@rallycache/node"
import { Context, Effect, Layer, Schema } from "effect"
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs"
import { join } from "node:path"
import type { BenchContext, Scenario } from "../lib/context.js"
import { atMost, figure, ratioAtMost } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import { runRaw } from "../lib/ffmpeg.js"
import { fixturesDir } from "../lib/fixture.js"
import { settledHeapUsed } from "../lib/gc.js"
import { log } from "../lib/log.js"
import { median, nowMs } from "../lib/stats.js"
import { NodeContext } from "@effect/platform-node"

const segmentSeconds = 10

/** `name` in the fixtures folder, made by `make(temp)` once. */
const cached = async (name: string, make: (temp: string) => Promise<void>): Promise<string> => {
  const path = join(fixturesDir, name)
  if (existsSync(path)) return path
  mkdirSync(fixturesDir, { recursive: true })
  const temp = `${path}.part.mp4`
  await make(temp)
  renameSync(temp, path)
  return path
}

const sources = async (ffmpeg: string) => {
  const segment = await cached("long-segment.mp4", (temp) =>
    runRaw(ffmpeg, [
      "-nostdin", "-y", "-v", "error",
      "-f", "lavfi", "-i", `testsrc2=size=640x360:rate=30:duration=${segmentSeconds}`,
      "-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${segmentSeconds}`,
      "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1500k", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
      "-c:a", "aac", "-b:a", "96k", temp
    ]).then(() => undefined))
  const loop = (seconds: number) => (temp: string) =>
    runRaw(ffmpeg, [
      "-nostdin", "-y", "-v", "error",
      "-stream_loop", String(Math.ceil(seconds / segmentSeconds) - 1), "-i", segment,
      "-map", "0", "-c", "copy", temp
    ]).then(() => undefined)
  const long = await cached("long-2h.mp4", loop(7200))
  const short = await cached("long-2min.mp4", loop(120))
  return { long, short }
}

const videoId = Schema.decodeSync(Domain.VideoId)("bench-long")

const exporterOf = Effect.map(
  Layer.build(FfmpegExporter.layer().pipe(Layer.provideMerge(NodeContext.layer))),
  (context) => Context.get(context, Exporter.Exporter)
)

const exportOnce = (exporter: Exporter.ExporterShape, source: string, rally: { start: number; end: number }, out: string) =>
  Effect.gen(function*() {
    const info = yield* exporter.probe(source)
    const started = nowMs()
    const cpu = process.cpuUsage()
    const result = yield* exporter.export({
      source: new Domain.VideoSource({ id: videoId, path: source, fingerprint: info.fingerprint }),
      rally: new Domain.Rally({ index: 0, ...rally }),
      mode: "exact",
      priority: "high",
      tempPath: `${out}.part`,
      outputPath: out
    })
    const ms = nowMs() - started
    const used = process.cpuUsage(cpu)
    rmSync(out, { force: true })
    return { ms, cpuMs: (used.user + used.system) / 1000, result }
  })

export const longSourceScenario: Scenario = {
  name: "long",
  title: "A 2-hour source: opening it, a rally cut from it, the memory of a 100 MB clip",
  expected: [
    { key: "long.openMs", unit: "ms" },
    { key: "long.rallyRatioVsShortSource", unit: "x" },
    { key: "long.bigClipPeakMemoryMB", unit: "MB" }
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const made = nowMs()
    const { long, short } = await sources(context.binaries.ffmpeg)
    log(`long sources ready in ${((nowMs() - made) / 1000).toFixed(1)} s: ${(statSync(long).size / 1e9).toFixed(2)} GB`)
    const out = join(context.tmpRoot, "long-clip.mp4")
    const repetitions = context.quick ? 5 : 15
    // One collection or fsync stall is several cuts long: enough pairs that it cannot set a median.
    const pairs = context.quick ? 21 : 41
    return Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      // Opening: a fresh exporter each time (its probes are cached per exporter).
      const opens: Array<number> = []
      const openCpu: Array<number> = []
      let cutBy = "ffmpeg"
      // Each exporter is closed after its opening, so the cuts below run beside one open source, as a user's do.
      for (let r = 0; r < repetitions; r++) {
        yield* Effect.scoped(Effect.gen(function*() {
          const exporter = yield* exporterOf
          const started = nowMs()
          const cpu = process.cpuUsage()
          yield* exporter.probe(long)
          opens.push(nowMs() - started)
          const used = process.cpuUsage(cpu)
          openCpu.push((used.user + used.system) / 1000)
        }))
      }

      // The same 8 s rally (same place in the looped segment) from both sources, alternating.
      const exporter = yield* exporterOf
      const longRally = { start: 3600 + 3.3, end: 3600 + 11.3 }
      const shortRally = { start: 60 + 3.3, end: 60 + 11.3 }
      const bytes = { long: 0, short: 0 }
      for (let r = 0; r < 3; r++) {
        bytes.long = (yield* exportOnce(exporter, long, longRally, out)).result.sizeBytes
        bytes.short = (yield* exportOnce(exporter, short, shortRally, out)).result.sizeBytes
      }
      // What the openings left is collected here, not during one side's cut.
      settledHeapUsed()
      const fromLong: Array<number> = []
      const fromShort: Array<number> = []
      const cpuLong: Array<number> = []
      const cpuShort: Array<number> = []
      for (let r = 0; r < pairs; r++) {
        const longFirst = r % 2 === 0
        const fromShortOnce = function*() {
          const once = yield* exportOnce(exporter, short, shortRally, out)
          fromShort.push(once.ms)
          cpuShort.push(once.cpuMs)
        }
        if (!longFirst) yield* fromShortOnce()
        const once = yield* exportOnce(exporter, long, longRally, out)
        fromLong.push(once.ms)
        cpuLong.push(once.cpuMs)
        cutBy = once.result.cutBy ?? "ffmpeg"
        if (longFirst) yield* fromShortOnce()
      }

      // Memory: a ~100 MB clip (its length from the source's bytes per second), RSS sampled while it is cut.
      const bytesPerSecond = statSync(long).size / 7200
      const bigRally = { start: 1800.2, end: 1800.2 + Math.round(100e6 / bytesPerSecond) }
      settledHeapUsed()
      const idle = process.memoryUsage().rss
      let peak = idle
      const sampler = setInterval(() => {
        peak = Math.max(peak, process.memoryUsage().rss)
      }, 2)
      const big = yield* exportOnce(exporter, long, bigRally, out).pipe(Effect.ensuring(Effect.sync(() => clearInterval(sampler))))
      peak = Math.max(peak, process.memoryUsage().rss)
      log(`long: open ${opens.map((t) => t.toFixed(0)).join(", ")} ms (CPU ${openCpu.map((t) => t.toFixed(0)).join(", ")} ms); rally (${bytes.long} / ${bytes.short} bytes) from 2 h ${fromLong.map((t) => t.toFixed(0)).join(", ")} ms (CPU ${cpuLong.map((t) => t.toFixed(0)).join(", ")}), from 2 min ${fromShort.map((t) => t.toFixed(0)).join(", ")} ms (CPU ${cpuShort.map((t) => t.toFixed(0)).join(", ")}); ${(big.result.sizeBytes / 1e6).toFixed(0)} MB clip in ${big.ms.toFixed(0)} ms, peak RSS +${((peak - idle) / 1e6).toFixed(1)} MB`)
      return [
        figure({
          key: "long.openMs",
          value: median(opens),
          unit: "ms",
          goal: atMost(100, "ms"),
          note: `probe and keyframe list of the ${(statSync(long).size / 1e9).toFixed(2)} GB 2-hour source (moov at the end), fresh exporter, median; ${
            median(openCpu).toFixed(0)
          } ms of CPU (wall time above it is waiting for a core)`
        }),
        figure({
          key: "long.rallyRatioVsShortSource",
          value: median(fromLong) / median(fromShort),
          unit: "x",
          baseline: median(fromShort),
          baselineUnit: "ms",
          baselineLabel: "the same rally from a 2-minute source",
          ratio: median(fromLong) / median(fromShort),
          goal: ratioAtMost(1.2),
          note: `8 s exact rally, ${median(fromLong).toFixed(1)} ms from the 2-hour source (cut ${cutBy}), median of ${pairs} alternating pairs; CPU ${
            median(cpuLong).toFixed(1)
          } ms from 2 h / ${median(cpuShort).toFixed(1)} ms from 2 min = ${(median(cpuLong) / median(cpuShort)).toFixed(2)}x`
        }),
        figure({
          key: "long.bigClipPeakMemoryMB",
          value: (peak - idle) / 1e6,
          unit: "MB",
          goal: atMost(64, "MB"),
          note: `resident memory above idle while one in-process exact export writes a ${(big.result.sizeBytes / 1e6).toFixed(0)} MB clip (${big.ms.toFixed(0)} ms, cut ${big.result.cutBy ?? "ffmpeg"})`
        })
      ]
    })))
  }
}
