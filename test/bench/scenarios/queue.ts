/**
 * Scenario 6a: queue overhead per job, rallycache's ExportQueue against
 * p-queue, at 10k and 100k no-op jobs spread over three priorities, with
 * concurrency 2 on both sides.
 */
import { ExportQueue } from "@rallycache/core"
import type { Domain } from "@rallycache/core"
import { Effect } from "effect"
import PQueue from "p-queue"
import type { BenchContext, Scenario } from "../lib/context.js"
import { atMost, figure, ratioAtMost } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import { settledHeapUsed } from "../lib/gc.js"
import { log } from "../lib/log.js"
import { smoke } from "../lib/smoke.js"
import { median, nowMs } from "../lib/stats.js"

const priorities: ReadonlyArray<Domain.Priority> = ["high", "normal", "low"]
// p-queue runs larger numbers first.
const pqueuePriority: Readonly<Record<Domain.Priority, number>> = { high: 2, normal: 1, low: 0 }

const keyOf = (i: number): Domain.CacheKey => i.toString(16).padStart(32, "0") as Domain.CacheKey
const videoId = "bench-queue" as Domain.VideoId

/** Microseconds per job for `n` no-op jobs through p-queue. */
const pqueueRun = async (n: number): Promise<number> => {
  const queue = new PQueue({ concurrency: 2 })
  const started = nowMs()
  const results: Array<Promise<void>> = new Array(n)
  for (let i = 0; i < n; i++) {
    results[i] = queue.add(async () => {}, { priority: pqueuePriority[priorities[i % 3]!] })
  }
  await Promise.all(results)
  return ((nowMs() - started) * 1000) / n
}

/** Microseconds per job for `n` no-op jobs through ExportQueue. */
const exportQueueRun = (n: number): Promise<number> =>
  Effect.runPromise(
    Effect.scoped(
      Effect.gen(function*() {
        const queue = yield* ExportQueue.make<void, never>({ concurrency: 2 })
        const started = nowMs()
        const waits: Array<Effect.Effect<void, unknown>> = new Array(n)
        for (let i = 0; i < n; i++) {
          waits[i] = yield* queue.submit({
            key: keyOf(i),
            videoId,
            rallyIndex: i,
            priority: priorities[i % 3]!,
            run: () => Effect.void
          })
        }
        for (let i = 0; i < n; i++) yield* waits[i]!
        return ((nowMs() - started) * 1000) / n
      })
    )
  )

/** Alternates the two, and which goes first, so that drift on a noisy machine hits both alike. */
const measure = async (n: number, repetitions: number) => {
  const ours: Array<number> = []
  const theirs: Array<number> = []
  for (let r = 0; r < repetitions; r++) {
    // A collection before each run, so that no run pays for the garbage of the previous one;
    // which side goes first alternates.
    const sides = [async () => theirs.push(await pqueueRun(n)), async () => ours.push(await exportQueueRun(n))]
    for (const side of r % 2 === 0 ? sides : sides.reverse()) {
      settledHeapUsed()
      await side()
    }
    log(`queue ${n}: run ${r + 1}/${repetitions}: ExportQueue ${ours.at(-1)!.toFixed(2)} µs/job, p-queue ${theirs.at(-1)!.toFixed(2)} µs/job`)
  }
  return { ours: median(ours), theirs: median(theirs) }
}

export const queueScenario: Scenario = {
  name: "queue",
  title: "6a. Queue overhead per job (no-op jobs, 3 priorities, concurrency 2) vs p-queue",
  expected: [
    { key: "queue.perJobUs10k", unit: "µs" },
    { key: "queue.perJobUs100k", unit: "µs" },
    { key: "queue.overheadRatioVsPQueue10k", unit: "x" },
    { key: "queue.overheadRatioVsPQueue100k", unit: "x" },
    { key: "queue.perJobGrowth10kTo100k", unit: "x" }
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    // Warm up the JIT on both before anything is timed.
    // The smoke run (see smoke.ts) goes down the same path at a tenth of the counts, once.
    const scale = smoke ? 10 : 1
    await pqueueRun(2_000 / scale)
    await exportQueueRun(2_000 / scale)
    const small = await measure(10_000 / scale, smoke ? 1 : context.quick ? 5 : 9)
    const large = await measure(100_000 / scale, smoke ? 1 : context.quick ? 1 : 3)
    const growth = large.ours / small.ours
    const pqueueGrowth = large.theirs / small.theirs
    return [
      figure({ key: "queue.perJobUs10k", value: small.ours, unit: "µs", baseline: small.theirs, baselineLabel: "p-queue" }),
      figure({ key: "queue.perJobUs100k", value: large.ours, unit: "µs", baseline: large.theirs, baselineLabel: "p-queue" }),
      figure({
        key: "queue.overheadRatioVsPQueue10k",
        value: small.ours / small.theirs,
        unit: "x",
        ratio: small.ours / small.theirs,
        goal: atMost(2, "x")
      }),
      figure({ key: "queue.overheadRatioVsPQueue100k", value: large.ours / large.theirs, unit: "x", ratio: large.ours / large.theirs }),
      figure({
        key: "queue.perJobGrowth10kTo100k",
        value: growth,
        unit: "x",
        baseline: pqueueGrowth,
        baselineLabel: "p-queue",
        ratio: growth,
        goal: ratioAtMost(1.25),
        note: "per-job cost at 100k divided by per-job cost at 10k: 1 is flat (linear total)"
      })
    ]
  }
}
