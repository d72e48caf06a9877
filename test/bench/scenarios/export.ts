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
 * Copy and exact clips of this mp4 source are written in process, with no
 * ffmpeg child: the command replayed is then the one the same cache runs
 * with `inProcess: false`, and a third figure prints the crash-safe floor
 * of the same bytes (read from the source, write, fsync, rename, fsync of
 * the folder: `copyFloor`).
 */
import { RallyCache } from "@rallycache/core"
import { Effect, Layer } from "effect"
import { closeSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs"
import { dirname, join } from "node:path"
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
  readonly split: { readonly before: number; readonly after: number } | undefined
  /** The crash-safe floor of the clip's bytes (see `copyFloor`), median. */
  readonly floorMs: number
  readonly clipBytes: number
  /** Whether rallycache cut it without a child process. */
  readonly inProcess: boolean
}

/**
 * The least a crash-safe export of `bytes` bytes does: read them from the
 * source (pieces of 4 MB, from the middle of the file), write them to a
 * temp file, fsync it, rename it into place and fsync the folder.
 */
export const copyFloor = (source: string, bytes: number, temp: string, final: string): number => {
  const started = nowMs()
  const input = openSync(source, "r")
  const output = openSync(temp, "w")
  const buffer = Buffer.allocUnsafe(Math.min(4 << 20, Math.max(bytes, 1)))
  const from = Math.max(0, Math.floor((statSync(source).size - bytes) / 2))
  for (let done = 0; done < bytes;) {
    const got = readSync(input, buffer, 0, Math.min(buffer.length, bytes - done), from + done)
    if (got <= 0) break
    writeSync(output, buffer, 0, got)
    done += got
  }
  fsyncSync(output)
  closeSync(output)
  closeSync(input)
  mkdirSync(dirname(final), { recursive: true })
  renameSync(temp, final)
  const dir = openSync(dirname(final), "r")
  fsyncSync(dir)
  closeSync(dir)
  const ms = nowMs() - started
  rmSync(final, { force: true })
  return ms
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

          // Rallycache's export, from the miss to the clip; returns the ffmpeg command it ran, if any.
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
            // Where the time went, from the start times of the commands the cache ran.
            const spawned = ran.find((r) => ffmpegInvocation(r, context.binaries.ffmpeg)?.args.includes(fixture.path) === true)
            const split = spawned === undefined ? undefined : { before: spawned.at - started, after: started + ms - spawned.at }
            return { ms, exportCommand, split, bytes: statSync(clip.path).size }
          })

          // The ffmpeg command of the same cut, from a cache that never cuts in process.
          const ffmpegCommand = Effect.gen(function*() {
            const recorded: Array<RecordedCommand> = []
            const other = yield* Layer.build(
              nodeCacheLayer({ cacheDir: `${cacheDir}-ffmpeg`, recorder: recorded, config: { mode }, exporter: { inProcess: false } })
            )
            const otherCache = yield* Effect.provide(RallyCache.RallyCache, other)
            yield* otherCache.openVideo({ path: fixture.path, rallies: fixture.rallies, id: videoId, mode })
            yield* otherCache.getClip(videoId, rallyIndex)
            const command = recorded.map((r) => ffmpegInvocation(r, context.binaries.ffmpeg)).find((c) =>
              c !== undefined && c.args.includes(fixture.path)
            )
            return command ?? (yield* Effect.dieMessage("no ffmpeg export command was recorded"))
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
          const command = warm.exportCommand ?? (yield* ffmpegCommand)
          yield* raw(command.args)
          const floorTemp = join(context.tmpRoot, `export-${mode}-floor.part`)
          const floorFinal = join(context.tmpRoot, `export-${mode}-floor`, "clip.mp4")

          const splits: Array<{ before: number; after: number }> = []
          const floors: Array<number> = []
          const cacheTimes: Array<number> = []
          const rawTimes: Array<number> = []
          const rawWithCheck: Array<number> = []
          for (let r = 0; r < repetitions; r++) {
            // Alternate which side goes first, so drift hits both alike.
            const first = r % 2 === 0
            let rawRun: { ms: number; withCheck: number } | undefined
            if (!first) rawRun = yield* raw(command.args)
            const ours = yield* throughCache
            if (first) rawRun = yield* raw(command.args)
            floors.push(copyFloor(fixture.path, ours.bytes, floorTemp, floorFinal))
            cacheTimes.push(ours.ms)
            if (ours.split !== undefined) splits.push(ours.split)
            rawTimes.push(rawRun!.ms)
            rawWithCheck.push(rawRun!.withCheck)
          }
          log(`export ${mode}: rally ${rallyIndex} (${(rally.end - rally.start).toFixed(1)} s): rallycache ${cacheTimes.map((t) => t.toFixed(0)).join(", ")} ms; ffmpeg ${rawTimes.map((t) => t.toFixed(0)).join(", ")} ms; floor ${floors.map((t) => t.toFixed(0)).join(", ")} ms`)
          return {
            cacheMs: median(cacheTimes),
            rawMs: median(rawTimes),
            rawWithCheckMs: median(rawWithCheck),
            rallySeconds: rally.end - rally.start,
            split: splits.length === 0 ? undefined : {
              before: median(splits.map((x) => x.before)),
              after: median(splits.map((x) => x.after))
            },
            floorMs: median(floors),
            clipBytes: warm.bytes,
            inProcess: warm.exportCommand === undefined
          }
        })
      )
    )
  })

/** The crash-safe floor of the clip's bytes beside the bare cut: how far below ffmpeg an export can go. */
const floorRow = (mode: "copy" | "exact", m: ModeResult): Figure =>
  figure({
    key: `export.${mode}FloorRatioVsBareCut`,
    value: m.floorMs / m.rawMs,
    unit: "x",
    baseline: m.rawMs,
    baselineUnit: "ms",
    baselineLabel: "bare ffmpeg cut, own session",
    ratio: m.floorMs / m.rawMs,
    note: `read + write + fsync + rename + fsync of the clip's ${(m.clipBytes / 1e6).toFixed(1)} MB: ${
      m.floorMs.toFixed(1)
    } ms, median`
  })

export const exportScenario: Scenario = {
  name: "export",
  title: "2. One export through rallycache vs the identical ffmpeg command run directly",
  expected: [
    { key: "export.copyMs", unit: "ms" },
    { key: "export.copyRatio", unit: "x" },
    { key: "export.copyRatioVsBareCut", unit: "x" },
    { key: "export.copyRatioVsFfmpegPlusCheck", unit: "x" },
    { key: "export.copyFloorRatioVsBareCut", unit: "x" },
    { key: "export.exactMs", unit: "ms" },
    { key: "export.exactRatioVsBareCut", unit: "x" },
    { key: "export.exactFloorRatioVsBareCut", unit: "x" },
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
        note: m.split === undefined
          ? `cut in process (no ffmpeg child): the ratio is to the ffmpeg command the same cache runs with inProcess: false`
          : `where rallycache's time goes (medians): ${m.split.before.toFixed(1)} ms until ffmpeg starts (mailbox, queue, key lock), ${m.split.after.toFixed(1)} ms from its start to the clip in the index (ffmpeg, fsync, in-process check, rename, fsync, index commit)`
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
            goal: ratioAtMost(m.inProcess ? 0.4 : 1.2)
          }),
          floorRow("copy", m)
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
        note: `${exact.rallySeconds.toFixed(1)} s rally (the copy one), median; stream copy + edit list${
          exact.inProcess ? ", cut in process" : ""
        }`
      }),
      figure({
        key: "export.exactRatioVsBareCut",
        value: exact.cacheMs / exact.rawMs,
        unit: "x",
        baseline: exact.rawMs,
        baselineUnit: "ms",
        baselineLabel: "bare ffmpeg cut, own session",
        ratio: exact.cacheMs / exact.rawMs,
        goal: ratioAtMost(exact.inProcess ? 0.4 : 1.2)
      }),
      floorRow("exact", exact),
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
