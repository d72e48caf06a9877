/**
 * Scenario 2: one export through rallycache (`getClip` on a miss: mailbox,
 * queue, key lock, ffmpeg, fsync, output check, rename, index commit)
 * against the identical ffmpeg command run directly, in copy and accurate
 * modes. The command is not re-typed here: the bench records the command
 * line rallycache ran and replays it, so both sides run the same ffmpeg
 * with the same arguments on the same rally, each in a session of its own.
 * A second baseline adds what a crash-safe, checked export cannot skip to
 * the bare cut: fsync of the clip, the same in-process container check,
 * rename and fsync of the folder (see floors.ts for each step alone).
 */
import { RallyCache } from "@rallycache/core"
import { Effect, Layer } from "effect"
import { rmSync } from "node:fs"
import { join } from "node:path"
import type { BenchContext, Scenario } from "../lib/context.js"
import { figure, ratioAtMost } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import type { RallySpan } from "../lib/fixture.js"
import { runCheckedCut } from "../lib/ffmpeg.js"
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
  /** The raw ffmpeg plus fsync, the same in-process check, rename and fsync of the folder. */
  readonly rawWithCheckMs: number
  readonly rallySeconds: number
  /** Medians: before ffmpeg starts (mailbox, queue, key lock); from its start to the clip in the index. */
  readonly split: { readonly before: number; readonly after: number }
}

export const measureMode = (
  context: BenchContext,
  mode: "copy" | "exact" | "accurate",
  rallyIndex: number,
  repetitions: number
): Promise<ModeResult> =>
  context.fixture().then((fixture) => {
    const cacheDir = join(context.tmpRoot, `export-${mode}`)
    const recorder: Array<RecordedCommand> = []
    const rawOut = join(context.tmpRoot, `export-${mode}-raw.part`)
    const rawFinal = join(context.tmpRoot, `export-${mode}-raw`, "clip.mp4")
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
            if (exportCommand === undefined) return yield* Effect.dieMessage("no ffmpeg export command was recorded")
            // Where the time went, from the start times of the commands the cache ran.
            const spawned = ran.find((r) => ffmpegInvocation(r, context.binaries.ffmpeg)?.args.includes(fixture.path) === true)!
            const split = { before: spawned.at - started, after: started + ms - spawned.at }
            return { ms, exportCommand, split }
          })

          const raw = (args: ReadonlyArray<string>) =>
            Effect.promise(async () => {
              // The same command, writing to our own file instead of the cache's temp file.
              const ran = await runCheckedCut(context.binaries.ffmpeg, [...args.slice(0, -1), rawOut], rawFinal)
              rmSync(rawFinal, { force: true })
              return { ms: ran.cutMs, withCheck: ran.ms }
            })

          // Warm-up: first export of the source (probe caches, JIT) on both sides.
          const warm = yield* throughCache
          yield* raw(warm.exportCommand.args)

          const splits: Array<{ before: number; after: number }> = []
          const cacheTimes: Array<number> = []
          const rawTimes: Array<number> = []
          const rawWithCheck: Array<number> = []
          for (let r = 0; r < repetitions; r++) {
            // Alternate which side goes first, so drift hits both alike.
            const first = r % 2 === 0
            let rawRun: { ms: number; withCheck: number } | undefined
            if (!first) rawRun = yield* raw(warm.exportCommand.args)
            const ours = yield* throughCache
            if (first) rawRun = yield* raw(ours.exportCommand.args)
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
    { key: "export.copyRatioVsBareCut", unit: "x" },
    { key: "export.copyRatioVsFfmpegPlusCheck", unit: "x" },
    { key: "export.exactMs", unit: "ms" },
    { key: "export.exactRatioVsCopy", unit: "x" },
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
    // Exact: the same rally as copy, in the same run.
    const exact = await measureMode(context, "exact", copyRally, context.quick ? 7 : 21)
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
        note: `where rallycache's time goes (medians): ${m.split.before.toFixed(1)} ms until ffmpeg starts (mailbox, queue, key lock), ${m.split.after.toFixed(1)} ms from its start to the clip in the index (ffmpeg, fsync, in-process check, rename, fsync, index commit)`
      }),
      ...(mode === "copy"
        ? [
          figure({
            key: "export.copyRatioVsBareCut",
            value: m.cacheMs / m.rawMs,
            unit: "x",
            baseline: m.rawMs,
            baselineUnit: "ms",
            baselineLabel: "bare ffmpeg cut, own session",
            ratio: m.cacheMs / m.rawMs,
            goal: ratioAtMost(1.2)
          })
        ]
        : []),
      figure({
        key: `export.${mode}RatioVsFfmpegPlusCheck`,
        value: m.cacheMs / m.rawWithCheckMs,
        unit: "x",
        baseline: m.rawWithCheckMs,
        baselineUnit: "ms",
        baselineLabel: "ffmpeg + fsync + check + rename",
        ratio: m.cacheMs / m.rawWithCheckMs
      })
    ]
    const exactRows: Array<Figure> = [
      figure({
        key: "export.exactMs",
        value: exact.cacheMs,
        unit: "ms",
        baseline: exact.rawMs,
        baselineLabel: "same ffmpeg command",
        note: `${exact.rallySeconds.toFixed(1)} s rally (the copy one), median; stream copy + edit list`
      }),
      figure({
        key: "export.exactRatioVsCopy",
        value: exact.cacheMs / copy.cacheMs,
        unit: "x",
        baseline: copy.cacheMs,
        baselineUnit: "ms",
        baselineLabel: "copy export of the same rally, same run",
        ratio: exact.cacheMs / copy.cacheMs,
        goal: ratioAtMost(3)
      })
    ]
    return [...rows("copy", copy), ...exactRows, ...rows("accurate", accurate)]
  }
}
