/**
 * Scenario 3: the whole match. The time until every rally's clip is ready
 * (makespan), five ways:
 *
 * - rallycache at concurrency 2 (the default), 1 and 3: from `openVideo`
 *   and a `preload` of all rallies (at normal priority: low exports run
 *   niced) to the last `ClipReady`;
 * - a sequential loop of raw ffmpeg;
 * - p-queue at concurrency 2 over `child_process`.
 *
 * The raw baselines replay the ffmpeg commands rallycache ran, so all five
 * do the same cuts, each ffmpeg in a session of its own as rallycache's
 * are, and each cut finished as rallycache finishes it (fsync, the same
 * in-process check, rename, fsync of the folder). Each repetition
 * alternates which side goes first. Copy mode (the default) on every rally;
 * accurate mode on the shortest few (each accurate cut takes seconds).
 * Copy and exact clips of this mp4 source are cut in process, with no
 * ffmpeg child: the commands replayed are then those the same cache runs
 * with `inProcess: false` (recorded once, untimed, after an untimed
 * warm-up run), and the goal against p-queue is 0.4x.
 */
import { CacheEvent, RallyCache } from "@rallycache/core"
import { Effect, Fiber, Layer, Stream } from "effect"
import { mkdirSync, rmSync } from "node:fs"
import { join } from "node:path"
import PQueue from "p-queue"
import type { BenchContext, Scenario } from "../lib/context.js"
import { figure, ratioAtMost } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import type { Fixture } from "../lib/fixture.js"
import { runCheckedCut } from "../lib/ffmpeg.js"
import { log } from "../lib/log.js"
import type { RecordedCommand } from "../lib/nodeCache.js"
import { ffmpegInvocation, nodeCacheLayer } from "../lib/nodeCache.js"
import { median, nowMs } from "../lib/stats.js"

type Mode = "copy" | "exact" | "accurate"

let runs = 0

/** Makespan of rallycache exporting `indexes` at `concurrency`, and the ffmpeg commands it ran. */
const throughCache = (
  context: BenchContext,
  fixture: Fixture,
  mode: Mode,
  concurrency: number,
  indexes: ReadonlyArray<number>,
  inProcess = true
): Promise<{ ms: number; commands: Array<ReadonlyArray<string>> }> => {
  const cacheDir = join(context.tmpRoot, `match-${mode}-${concurrency}-${runs++}`)
  const recorder: Array<RecordedCommand> = []
  const videoId = `bench-match-${mode}`
  return Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const services = yield* Layer.build(nodeCacheLayer({ cacheDir, recorder, config: { mode, concurrency }, exporter: { inProcess } }))
        const cache = yield* Effect.provide(RallyCache.RallyCache, services)
        const events = yield* Effect.provide(CacheEvent.CacheEvents, services)
        const subscription = yield* events.subscribe
        const ready = yield* subscription.pipe(
          Stream.filter((event) => event._tag === "ClipReady" && event.clip.videoId === videoId),
          Stream.take(indexes.length),
          Stream.runDrain,
          Effect.fork
        )
        // From opening the video: its one-time probes (the keyframe list of copy mode) count.
        const started = nowMs()
        yield* cache.openVideo({ path: fixture.path, rallies: fixture.rallies, id: videoId, mode })
        // Normal, not low: low exports run niced, which would measure the machine's other load, not the cache.
        yield* cache.preload(videoId, { indexes, priority: "normal" })
        yield* Fiber.join(ready)
        const ms = nowMs() - started
        const commands = recorder
          .map((r) => ffmpegInvocation(r, context.binaries.ffmpeg))
          .filter((c) => c !== undefined && c.args.includes(fixture.path))
          .map((c) => c!.args)
        return { ms, commands }
      })
    )
  ).finally(() => rmSync(cacheDir, { recursive: true, force: true }))
}

const outputsDir = (context: BenchContext, name: string): string => {
  const dir = join(context.tmpRoot, name)
  mkdirSync(dir, { recursive: true })
  return dir
}

const replay = (commands: ReadonlyArray<ReadonlyArray<string>>, dir: string) =>
  commands.map((args, i) => ({ args: [...args.slice(0, -1), join(dir, `${i}.part`)], final: join(dir, "clips", `${i}.mp4`) }))

const sequential = async (context: BenchContext, commands: ReadonlyArray<ReadonlyArray<string>>): Promise<number> => {
  const dir = outputsDir(context, "match-sequential")
  const started = nowMs()
  for (const cut of replay(commands, dir)) await runCheckedCut(context.binaries.ffmpeg, cut.args, cut.final)
  const ms = nowMs() - started
  rmSync(dir, { recursive: true, force: true })
  return ms
}

const pqueue = async (context: BenchContext, commands: ReadonlyArray<ReadonlyArray<string>>): Promise<number> => {
  const dir = outputsDir(context, "match-pqueue")
  const queue = new PQueue({ concurrency: 2 })
  const started = nowMs()
  await Promise.all(
    replay(commands, dir).map((cut) => queue.add(() => runCheckedCut(context.binaries.ffmpeg, cut.args, cut.final)))
  )
  const ms = nowMs() - started
  rmSync(dir, { recursive: true, force: true })
  return ms
}

interface Makespans {
  readonly cache2: number
  readonly cache1: number
  readonly cache3: number
  readonly sequential: number
  readonly pqueue: number
  readonly rallies: number
  /** Whether rallycache cut them without ffmpeg children. */
  readonly inProcess: boolean
}

const measure = async (context: BenchContext, mode: Mode, indexes: ReadonlyArray<number>, repetitions: number): Promise<Makespans> => {
  const fixture = await context.fixture()
  const samples = { cache2: [] as Array<number>, cache1: [] as Array<number>, cache3: [] as Array<number>, sequential: [] as Array<number>, pqueue: [] as Array<number> }
  // The commands rallycache ran, for the raw baselines to replay: from the first run of each repetition.
  let commands: ReadonlyArray<ReadonlyArray<string>> = []
  let inProcess = false
  const record = (run: { commands: Array<ReadonlyArray<string>> }) => {
    if (run.commands.length < indexes.length) {
      throw new Error(`rallycache ran ${run.commands.length} ffmpeg exports for ${indexes.length} rallies`)
    }
    commands = run.commands.slice(0, indexes.length)
  }
  if (mode !== "accurate") {
    // Untimed warm-up (JIT, the source in the page cache); cut in process, the same cache with ffmpeg
    // records the commands to replay.
    const warm = await throughCache(context, fixture, mode, 2, indexes)
    inProcess = warm.commands.length === 0
    record(inProcess ? await throughCache(context, fixture, mode, 2, indexes, false) : warm)
  }
  const viaCache = async (concurrency: number) => {
    const run = await throughCache(context, fixture, mode, concurrency, indexes)
    if (concurrency === 2 && commands.length === 0) record(run)
    return run.ms
  }
  for (let r = 0; r < repetitions; r++) {
    // Even repetitions: rallycache first; odd ones: the raw baselines first (on the previous run's commands).
    const cacheFirst = r % 2 === 0 || commands.length === 0
    const rawSide = async () => {
      samples.pqueue.push(await pqueue(context, commands))
      samples.sequential.push(await sequential(context, commands))
    }
    if (!cacheFirst) await rawSide()
    samples.cache2.push(await viaCache(2))
    samples.cache1.push(await viaCache(1))
    samples.cache3.push(await viaCache(3))
    if (cacheFirst) await rawSide()
    log(`match ${mode} (${indexes.length} rallies) run ${r + 1}/${repetitions}, ${cacheFirst ? "rallycache" : "raw"} first: rallycache c2 ${samples.cache2.at(-1)!.toFixed(0)} ms, c1 ${samples.cache1.at(-1)!.toFixed(0)} ms, c3 ${samples.cache3.at(-1)!.toFixed(0)} ms; sequential ffmpeg ${samples.sequential.at(-1)!.toFixed(0)} ms, p-queue c2 ${samples.pqueue.at(-1)!.toFixed(0)} ms`)
  }
  return {
    cache2: median(samples.cache2),
    cache1: median(samples.cache1),
    cache3: median(samples.cache3),
    sequential: median(samples.sequential),
    pqueue: median(samples.pqueue),
    rallies: indexes.length,
    inProcess
  }
}

const rows = (prefix: string, m: Makespans, mode: Mode): Array<Figure> => {
  const note = `${m.rallies} rallies, ${mode} mode${m.inProcess ? ", cut in process" : ""}`
  const goal = ratioAtMost(m.inProcess ? 0.4 : 1.2)
  return [
    figure({ key: `${prefix}.rallycache2Ms`, value: m.cache2, unit: "ms", baseline: m.sequential, baselineLabel: "sequential ffmpeg", note }),
    figure({ key: `${prefix}.sequentialMs`, value: m.sequential, unit: "ms" }),
    figure({ key: `${prefix}.pqueue2Ms`, value: m.pqueue, unit: "ms", baseline: m.sequential, baselineLabel: "sequential ffmpeg" }),
    figure({ key: `${prefix}.rallycache1Ms`, value: m.cache1, unit: "ms", baseline: m.sequential, baselineLabel: "sequential ffmpeg" }),
    figure({ key: `${prefix}.rallycache3Ms`, value: m.cache3, unit: "ms", baseline: m.sequential, baselineLabel: "sequential ffmpeg" }),
    figure({ key: `${prefix}.makespanRatioVsSequential`, value: m.cache2 / m.sequential, unit: "x", ratio: m.cache2 / m.sequential }),
    figure({
      key: `${prefix}.makespanRatioVsPQueue`,
      value: m.cache2 / m.pqueue,
      unit: "x",
      ratio: m.cache2 / m.pqueue,
      goal,
      note: m.inProcess
        ? "rallycache c2 cutting in process / p-queue c2 running the ffmpeg commands the cache runs with inProcess: false, each finished alike (fsync, check, rename)"
        : "rallycache c2 / p-queue c2 over the same ffmpeg commands, each finished alike (fsync, check, rename): the price of the cache's bookkeeping"
    }),
    ...(mode === "copy"
      ? [figure({
        key: "match.copy.makespanRatioVsPQueue",
        value: m.cache2 / m.pqueue,
        unit: "x",
        ratio: m.cache2 / m.pqueue,
        goal,
        note: note
      })]
      : []),
    figure({ key: `${prefix}.conc1RatioVsConc2`, value: m.cache1 / m.cache2, unit: "x", ratio: m.cache1 / m.cache2 }),
    figure({ key: `${prefix}.conc3RatioVsConc2`, value: m.cache3 / m.cache2, unit: "x", ratio: m.cache3 / m.cache2 })
  ]
}

const keys = (prefix: string) =>
  [
    "rallycache2Ms",
    "sequentialMs",
    "pqueue2Ms",
    "rallycache1Ms",
    "rallycache3Ms",
    "makespanRatioVsSequential",
    "makespanRatioVsPQueue",
    "conc1RatioVsConc2",
    "conc3RatioVsConc2"
  ].map((k) => ({ key: `${prefix}.${k}`, unit: k.endsWith("Ms") ? "ms" : "x" }))

export const matchScenario: Scenario = {
  name: "match",
  title: "3. Whole match makespan: rallycache c1/c2/c3 vs sequential ffmpeg vs p-queue c2",
  expected: [
    ...keys("match"),
    { key: "match.copy.makespanRatioVsPQueue", unit: "x" },
    ...keys("match.exact"),
    { key: "match.exact.makespanRatioVsCopy", unit: "x" },
    ...keys("match.accurate")
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const fixture = await context.fixture()
    const all = fixture.rallies.map((_, i) => i)
    const copy = await measure(context, "copy", all, context.quick ? 1 : 3)
    // Accurate: the shortest rallies, so that five passes stay affordable.
    const byLength = all.slice().sort((a, b) =>
      (fixture.rallies[a]!.end - fixture.rallies[a]!.start) - (fixture.rallies[b]!.end - fixture.rallies[b]!.start)
    )
    const subset = byLength.slice(0, context.quick ? 2 : 4).sort((a, b) => a - b)
    const accurate = await measure(context, "accurate", subset, context.quick ? 1 : 3)
    // Exact: every rally, like copy, in the same run.
    const exact = await measure(context, "exact", all, context.quick ? 1 : 3)
    const exactVsCopy = figure({
      key: "match.exact.makespanRatioVsCopy",
      value: exact.cache2 / copy.cache2,
      unit: "x",
      baseline: copy.cache2,
      baselineUnit: "ms",
      baselineLabel: "copy mode, c2, same run",
      ratio: exact.cache2 / copy.cache2,
      goal: ratioAtMost(3)
    })
    return [
      ...rows("match", copy, "copy"),
      ...rows("match.exact", exact, "exact"),
      exactVsCopy,
      ...rows("match.accurate", accurate, "accurate")
    ]
  }
}
