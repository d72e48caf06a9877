/**
 * Scenario 6b: the disk index at 1k, 10k and 100k entries.
 *
 * - start-up of FileSystemCacheStore (as users get it: the check of every
 *   clip against the index runs as a background sweep after it) on a folder
 *   holding an index of N entries and their N (small) clip files, against
 *   the floor of reading the same journal, parsing every line and building
 *   a Map, measured in the same run, alternating which goes first; and the
 *   time until the sweep has finished;
 * - heap held per entry (heap delta after a full GC / N);
 * - lookup p99 (the quick validation of the hit path), against 1k.
 *
 * The journal is written directly in the store's documented JSONL format
 * (a header, then one put record per entry); the figures are only kept
 * when the store's start-up report counts all N entries, so a format
 * change fails loudly instead of measuring an empty index.
 */
import { CacheEvent, Config, Metrics } from "@rallycache/core"
import type { Domain } from "@rallycache/core"
import { FileSystemCacheStore } from "@rallycache/node"
import { Effect, Exit, Layer, Option, Scope } from "effect"
import { readFileSync, rmSync } from "node:fs"
import { join } from "node:path"
import type { BenchContext, Scenario } from "../lib/context.js"
import { atMost, figure, ratioAtMost } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import { settledHeapUsed } from "../lib/gc.js"
import { log } from "../lib/log.js"
import { seedFolder } from "../lib/seed.js"
import { median, nowMs, prng, quantile } from "../lib/stats.js"

/** The floor: read the journal, parse each line, build a Map by key. */
const rawLoad = (dir: string): number => {
  const started = nowMs()
  const text = readFileSync(join(dir, "index.jsonl"), "utf8")
  const map = new Map<string, unknown>()
  for (const line of text.split("\n")) {
    if (line.length === 0) continue
    const record = JSON.parse(line) as { o: string; e?: { key: string } }
    if (record.o === "p" && record.e !== undefined) map.set(record.e.key, record.e)
  }
  const ms = nowMs() - started
  if (map.size === 0) throw new Error("raw load found no entries")
  return ms
}

const storeDeps = Layer.mergeAll(Config.CacheConfig.layer(), CacheEvent.CacheEvents.layer(), Metrics.layer)

interface Opened {
  readonly ms: number
  /** From the open until the background sweep of clips/ has finished. */
  readonly sweptMs: number
  /** CPU time (user + system) of the process during the open: unlike wall time, not inflated by a busy machine. */
  readonly cpuMs: number
  readonly heapBytes: number
  readonly lookupP50Us: number
  readonly lookupP99Us: number
}

/** Open the store on `dir` (timed), measure its heap and lookups, close it. */
const openStore = (dir: string, keys: ReadonlyArray<string>, lookups: number, measureHeap: boolean): Promise<Opened> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const context = yield* Layer.buildWithScope(storeDeps, scope)
      const heapBefore = measureHeap ? settledHeapUsed() : 0
      const started = nowMs()
      const cpuBefore = process.cpuUsage()
      const store = yield* FileSystemCacheStore.make({ cacheDir: dir }).pipe(
        Effect.provide(context),
        Scope.extend(scope)
      )
      const ms = nowMs() - started
      const cpu = process.cpuUsage(cpuBefore)
      const cpuMs = (cpu.user + cpu.system) / 1000
      const reconciled = yield* store.reconciled
      const sweptMs = nowMs() - started
      if (reconciled.dropped.length > 0) return yield* Effect.dieMessage(`the sweep dropped ${reconciled.dropped.length} entries`)
      const heapBytes = measureHeap ? settledHeapUsed() - heapBefore : 0
      if (store.startup.entries !== keys.length) {
        yield* Scope.close(scope, Exit.void)
        return yield* Effect.dieMessage(
          `the store loaded ${store.startup.entries} of ${keys.length} seeded entries (dropped ${store.startup.dropped.length}, skipped ${store.startup.skippedLines} lines): the journal format changed`
        )
      }
      const rand = prng(keys.length)
      const samples: Array<number> = new Array(lookups)
      for (let i = 0; i < lookups; i++) {
        const key = keys[Math.floor(rand() * keys.length)]! as Domain.CacheKey
        const t0 = nowMs()
        const found = yield* store.lookup(key)
        samples[i] = (nowMs() - t0) * 1000
        if (Option.isNone(found)) return yield* Effect.dieMessage(`lookup of a seeded key missed`)
      }
      yield* Scope.close(scope, Exit.void)
      return { ms, sweptMs, cpuMs, heapBytes, lookupP50Us: quantile(samples, 0.5), lookupP99Us: quantile(samples, 0.99) }
    })
  )

export const storeIndexScenario: Scenario = {
  name: "index",
  title: "6b. Disk index start-up/reconcile, memory per entry and lookup at 1k/10k/100k",
  expected: [
    { key: "index.reconcile1kMs", unit: "ms" },
    { key: "index.reconcile10kMs", unit: "ms" },
    { key: "index.reconcile100kMs", unit: "ms" },
    { key: "index.reconcile10kRatioVsFloor", unit: "x" },
    { key: "index.reconcile100kRatioVsFloor", unit: "x" },
    { key: "index.sweep100kMs", unit: "ms" },
    { key: "index.reconcileCpu10kMs", unit: "ms" },
    { key: "index.reconcileCpu100kMs", unit: "ms" },
    { key: "index.reconcilePerEntryGrowth10kTo100k", unit: "x" },
    { key: "index.bytesPerEntry", unit: "B" },
    { key: "index.lookupP99Us1k", unit: "µs" },
    { key: "index.lookupP99Us10k", unit: "µs" },
    { key: "index.lookupP99Us100k", unit: "µs" }
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const sizes = [1_000, 10_000, 100_000] as const
    const results = new Map<
      number,
      { reconcileMs: number; sweptMs: number; reconcileCpuMs: number; rawMs: number; lookupP99Us: number; heapBytes: number }
    >()
    for (const n of sizes) {
      const dir = join(context.tmpRoot, `index-${n}`)
      const seeded = nowMs()
      const keys = seedFolder(dir, n)
      log(`index ${n}: seeded ${n} entries and files in ${((nowMs() - seeded) / 1000).toFixed(1)} s`)
      // Repetitions alternate store and floor; at 1k a first open warms the code up.
      const repetitions = n === 100_000 ? (context.quick ? 1 : 3) : context.quick ? 3 : 5
      const reconcile: Array<number> = []
      const reconcileCpu: Array<number> = []
      const swept: Array<number> = []
      const raw: Array<number> = []
      let lookupP99Us = Number.NaN
      let heapBytes = Number.NaN
      if (n === sizes[0]) await openStore(dir, keys, 100, false)
      for (let r = 0; r < repetitions; r++) {
        const last = r === repetitions - 1
        if (r % 2 === 0) raw.push(rawLoad(dir))
        const opened = await openStore(dir, keys, last ? 10_000 : 100, last)
        if (r % 2 === 1) raw.push(rawLoad(dir))
        reconcile.push(opened.ms)
        swept.push(opened.sweptMs)
        reconcileCpu.push(opened.cpuMs)
        if (last) {
          lookupP99Us = opened.lookupP99Us
          heapBytes = opened.heapBytes
        }
      }
      results.set(n, { reconcileMs: median(reconcile), sweptMs: median(swept), reconcileCpuMs: median(reconcileCpu), rawMs: median(raw), lookupP99Us, heapBytes })
      log(`index ${n}: start-up ${median(reconcile).toFixed(1)} ms, swept after ${median(swept).toFixed(1)} ms (CPU ${median(reconcileCpu).toFixed(1)} ms; raw parse ${median(raw).toFixed(1)} ms), lookup p99 ${lookupP99Us.toFixed(1)} µs, heap ${(heapBytes / n).toFixed(0)} B/entry`)
      rmSync(dir, { recursive: true, force: true })
    }
    const at = (n: number) => results.get(n)!
    const growth = (at(100_000).reconcileMs / 100_000) / (at(10_000).reconcileMs / 10_000)
    return [
      figure({ key: "index.reconcile1kMs", value: at(1_000).reconcileMs, unit: "ms", baseline: at(1_000).rawMs, baselineLabel: "read+parse+Map" }),
      figure({
        key: "index.reconcile10kMs",
        value: at(10_000).reconcileMs,
        unit: "ms",
        baseline: at(10_000).rawMs,
        baselineLabel: "read+parse+Map",
        goal: atMost(50, "ms")
      }),
      figure({
        key: "index.reconcile100kMs",
        value: at(100_000).reconcileMs,
        unit: "ms",
        baseline: at(100_000).rawMs,
        baselineLabel: "read+parse+Map",
        goal: atMost(500, "ms")
      }),
      figure({
        key: "index.reconcile10kRatioVsFloor",
        value: at(10_000).reconcileMs / at(10_000).rawMs,
        unit: "x",
        ratio: at(10_000).reconcileMs / at(10_000).rawMs,
        goal: ratioAtMost(1.5),
        note: "start-up / read+parse+Map of the same journal, same run"
      }),
      figure({
        key: "index.reconcile100kRatioVsFloor",
        value: at(100_000).reconcileMs / at(100_000).rawMs,
        unit: "x",
        ratio: at(100_000).reconcileMs / at(100_000).rawMs,
        goal: ratioAtMost(1.5)
      }),
      figure({
        key: "index.sweep100kMs",
        value: at(100_000).sweptMs,
        unit: "ms",
        baseline: at(100_000).reconcileMs,
        baselineLabel: "start-up",
        note: "from the open until the background check of every clip has finished (lookups check their own clip meanwhile)"
      }),
      figure({ key: "index.reconcileCpu10kMs", value: at(10_000).reconcileCpuMs, unit: "ms", note: "CPU time (user + system) of the start-up: what it costs on an idle machine" }),
      figure({ key: "index.reconcileCpu100kMs", value: at(100_000).reconcileCpuMs, unit: "ms" }),
      figure({
        key: "index.reconcilePerEntryGrowth10kTo100k",
        value: growth,
        unit: "x",
        ratio: growth,
        goal: ratioAtMost(1.5),
        note: "start-up cost per entry at 100k / at 10k: 1 is linear"
      }),
      figure({
        key: "index.bytesPerEntry",
        value: at(100_000).heapBytes / 100_000,
        unit: "B",
        goal: atMost(400, "B"),
        note: "heap delta after a full GC with the 100k-entry store open, divided by 100k"
      }),
      figure({ key: "index.lookupP99Us1k", value: at(1_000).lookupP99Us, unit: "µs" }),
      figure({ key: "index.lookupP99Us10k", value: at(10_000).lookupP99Us, unit: "µs", baseline: at(1_000).lookupP99Us, baselineLabel: "at 1k" }),
      figure({
        key: "index.lookupP99Us100k",
        value: at(100_000).lookupP99Us,
        unit: "µs",
        baseline: at(1_000).lookupP99Us,
        baselineLabel: "at 1k",
        goal: atMost(200, "µs")
      })
    ]
  }
}
