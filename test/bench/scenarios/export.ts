/**
 * Scenario 2: one export through rallycache (`getClip` on a miss: mailbox,
 * queue, key lock, ffmpeg, fsync, output check, rename, index commit)
 * against the identical ffmpeg command run directly, in copy and accurate
 * modes. The command is not re-typed here: the bench records the command
 * line rallycache ran and replays it, so both sides run the same ffmpeg
 * with the same arguments on the same rally.
 */
import { RallyCache } from "@rallycache/core"
import { Effect, Layer } from "effect"
import { rmSync } from "node:fs"
import { join } from "node:path"
import type { BenchContext, Scenario } from "../lib/context.js"
import { figure, ratioAtMost } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import type { RallySpan } from "../lib/fixture.js"
import { runRaw } from "../lib/ffmpeg.js"
import { log } from "../lib/log.js"
import type { RecordedCommand } from "../lib/nodeCache.js"
import { ffmpegInvocation, nodeCacheLayer } from "../lib/nodeCache.js"
import { median, nowMs } from "../lib/stats.js"

/** The rally whose length is closest to `seconds`. */
export const rallyNear = (rallies: ReadonlyArray<RallySpan>, seconds: number): number => {
  let best = 0
  for (let i = 1; i < rallies.length; i++) {
    const d = rallies[i]!.end - rallies[i]!.start
    const b = rallies[best]!.end - rallies[best]!.start
    if (Math.abs(d - seconds) < Math.abs(b - seconds)) best = i
  }
  return best
}

interface ModeResult {
  readonly cacheMs: number
  readonly rawMs: number
  /** The raw ffmpeg plus the same output check rallycache runs (ffprobe). */
  readonly rawWithCheckMs: number
  readonly rallySeconds: number
  /** Medians: before ffmpeg starts; ffmpeg and the fsync of its output; the check, rename and commit after. */
  readonly split: { readonly before: number; readonly ffmpeg: number; readonly after: number }
}

export const measureMode = (
  context: BenchContext,
  mode: "copy" | "accurate",
  rallyIndex: number,
  repetitions: number
): Promise<ModeResult> =>
  context.fixture().then((fixture) => {
    const cacheDir = join(context.tmpRoot, `export-${mode}`)
    const recorder: Array<RecordedCommand> = []
    const rawOut = join(context.tmpRoot, `export-${mode}-raw.mp4`)
    const videoId = `bench-export-${mode}`
    const rally = fixture.rallies[rallyIndex]!
    return Effect.runPromise(
      Effect.scoped(
        Effect.gen(function*() {
          const services = yield* Layer.build(nodeCacheLayer({ cacheDir, recorder, config: { mode } }))
          const cache = yield* Effect.provide(RallyCache.RallyCache, services)
          yield* cache.openVideo({ path: fixture.path, rallies: fixture.rallies, id: videoId, mode })

          // Rallycache's export, from the miss to the clip; returns the ffmpeg and check commands it ran.
          const throughCache = Effect.gen(function*() {
            yield* cache.invalidate(videoId, rallyIndex)
            const from = recorder.length
            const started = nowMs()
            const clip = yield* cache.getClip(videoId, rallyIndex)
            const ms = nowMs() - started
            if (clip.cached) return yield* Effect.dieMessage("the clip was cached: the export was not measured")
            const ran = recorder.slice(from)
            const exportCommand = ran.map((r) => ffmpegInvocation(r, context.binaries.ffmpeg)).find((c) =>
              c !== undefined && c.args.includes(fixture.path)
            )
            const check = ran.find((r) => r.command === context.binaries.ffprobe && r.args.includes("format=duration:stream=codec_type"))
            if (exportCommand === undefined) return yield* Effect.dieMessage("no ffmpeg export command was recorded")
            // Where the time went, from the start times of the commands the cache ran.
            const spawned = ran.find((r) => ffmpegInvocation(r, context.binaries.ffmpeg)?.args.includes(fixture.path) === true)!
            const split = {
              before: spawned.at - started,
              ffmpeg: (check?.at ?? started + ms) - spawned.at,
              after: started + ms - (check?.at ?? started + ms)
            }
            return { ms, exportCommand, check, split }
          })

          const raw = (args: ReadonlyArray<string>, check: RecordedCommand | undefined) =>
            Effect.promise(async () => {
              // The same command, writing to our own file instead of the cache's temp file.
              const replay = [...args.slice(0, -1), rawOut]
              const ran = await runRaw(context.binaries.ffmpeg, replay)
              let checkMs = 0
              if (check !== undefined) {
                const checkArgs = [...check.args.slice(0, -1), rawOut]
                checkMs = (await runRaw(check.command, checkArgs)).ms
              }
              rmSync(rawOut, { force: true })
              return { ms: ran.ms, withCheck: ran.ms + checkMs }
            })

          // Warm-up: first export of the source (probe caches, JIT) on both sides.
          const warm = yield* throughCache
          yield* raw(warm.exportCommand.args, warm.check)

          const splits: Array<{ before: number; ffmpeg: number; after: number }> = []
          const cacheTimes: Array<number> = []
          const rawTimes: Array<number> = []
          const rawWithCheck: Array<number> = []
          for (let r = 0; r < repetitions; r++) {
            // Alternate which side goes first, so drift hits both alike.
            const first = r % 2 === 0
            let rawRun: { ms: number; withCheck: number } | undefined
            if (!first) rawRun = yield* raw(warm.exportCommand.args, warm.check)
            const ours = yield* throughCache
            if (first) rawRun = yield* raw(ours.exportCommand.args, ours.check)
            cacheTimes.push(ours.ms)
            splits.push(ours.split)
            rawTimes.push(rawRun!.ms)
            rawWithCheck.push(rawRun!.withCheck)
          }
          log(`export ${mode}: rally ${rallyIndex} (${(rally.end - rally.start).toFixed(1)} s): rallycache ${cacheTimes.map((t) => t.toFixed(0)).join(", ")} ms; ffmpeg ${rawTimes.map((t) => t.toFixed(0)).join(", ")} ms`)
          return {
            cacheMs: median(cacheTimes),
            rawMs: median(rawTimes),
            rawWithCheckMs: median(rawWithCheck),
            rallySeconds: rally.end - rally.start,
            split: {
              before: median(splits.map((x) => x.before)),
              ffmpeg: median(splits.map((x) => x.ffmpeg)),
              after: median(splits.map((x) => x.after))
            }
          }
        })
      )
    )
  })

export const exportScenario: Scenario = {
  name: "export",
  title: "2. One export through rallycache vs the identical ffmpeg command run directly",
  expected: [
    { key: "export.copyMs", unit: "ms" },
    { key: "export.copyRatio", unit: "x" },
    { key: "export.copyRatioVsFfmpegPlusCheck", unit: "x" },
    { key: "export.accurateMs", unit: "ms" },
    { key: "export.accurateRatio", unit: "x" },
    { key: "export.accurateRatioVsFfmpegPlusCheck", unit: "x" }
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const fixture = await context.fixture()
    const copyRally = rallyNear(fixture.rallies, 10)
    const accurateRally = context.quick ? rallyNear(fixture.rallies, 6) : copyRally
    const copy = await measureMode(context, "copy", copyRally, context.quick ? 7 : 21)
    const accurate = await measureMode(context, "accurate", accurateRally, context.quick ? 2 : 5)
    context.exportDurations = {
      copyMs: copy.cacheMs,
      accurateMs: accurate.cacheMs,
      accurateMsPerClipSecond: accurate.cacheMs / accurate.rallySeconds,
      rallySeconds: accurate.rallySeconds,
      source: "export scenario"
    }
    const rows = (mode: "copy" | "accurate", m: ModeResult): Array<Figure> => [
      figure({
        key: `export.${mode}Ms`,
        value: m.cacheMs,
        unit: "ms",
        baseline: m.rawMs,
        baselineLabel: "same ffmpeg command",
        note: `${m.rallySeconds.toFixed(1)} s rally, median`
      }),
      figure({
        key: `export.${mode}Ratio`,
        value: m.cacheMs / m.rawMs,
        unit: "x",
        ratio: m.cacheMs / m.rawMs,
        goal: ratioAtMost(1.05),
        note: `where rallycache's time goes (medians): ${m.split.before.toFixed(1)} ms until ffmpeg starts (mailbox, queue, key lock), ${m.split.ffmpeg.toFixed(1)} ms ffmpeg + fsync of the clip, ${m.split.after.toFixed(1)} ms output check (ffprobe) + rename + fsync + index commit`
      }),
      figure({
        key: `export.${mode}RatioVsFfmpegPlusCheck`,
        value: m.cacheMs / m.rawWithCheckMs,
        unit: "x",
        baseline: m.rawWithCheckMs,
        baselineUnit: "ms",
        baselineLabel: "ffmpeg + the same ffprobe check",
        ratio: m.cacheMs / m.rawWithCheckMs
      })
    ]
    return [...rows("copy", copy), ...rows("accurate", accurate)]
  }
}
