import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import * as Metrics from "../src/Metrics.js"

describe("Metrics", () => {
  it.effect("keeps a snapshot per instance while both feed the shared Effect metrics", () =>
    Effect.gen(function*() {
      const hits = Metrics.series.hits
      const before = (yield* Metric.value(hits)).count
      const a = yield* Metrics.make()
      const b = yield* Metrics.make()
      yield* a.hit
      yield* a.hit
      yield* a.miss
      yield* b.hit
      const sa = yield* a.snapshot
      const sb = yield* b.snapshot
      expect([sa.hits, sa.misses, sa.hitRate]).toEqual([2, 1, 2 / 3])
      expect([sb.hits, sb.misses, sb.hitRate]).toEqual([1, 0, 1])
      expect((yield* Metric.value(hits)).count - before).toBe(3)
    }))

  it.effect("tags every series with the instance when asked", () =>
    Effect.gen(function*() {
      const m = yield* Metrics.make({ instance: "metrics-test-instance" })
      yield* m.evicted("age")
      yield* m.evicted("age")
      yield* m.evicted("size")
      const tagged = Metrics.series.evictions.pipe(
        Metric.tagged("instance", "metrics-test-instance"),
        Metric.tagged("reason", "age")
      )
      expect((yield* Metric.value(tagged)).count).toBe(2)
      expect((yield* m.snapshot).evictions).toEqual({ size: 1, age: 2, "per-video": 0, invalid: 0, manual: 0, "source-changed": 0 })
    }))

  it.effect("records export times: count, sum, max, percentiles and the histogram", () =>
    Effect.gen(function*() {
      const m = yield* Metrics.make({ instance: "metrics-test-histogram" })
      for (let ms = 1; ms <= 100; ms++) yield* m.exportSucceeded("copy", "high", ms)
      yield* m.exportSucceeded("accurate", "low", 3000)
      const s = yield* m.snapshot
      expect(s.exports).toBe(101)
      expect(s.exportMs.count).toBe(101)
      expect(s.exportMs.sum).toBe(5050 + 3000)
      expect(s.exportMs.max).toBe(3000)
      expect(s.exportMs.p50).toBe(51)
      expect(s.exportMs.p99).toBe(100)
      const histogram = Metrics.series.exportMs.pipe(
        Metric.tagged("instance", "metrics-test-histogram"),
        Metric.tagged("mode", "copy")
      )
      const state = yield* Metric.value(histogram)
      expect(state.count).toBe(100)
      expect(state.max).toBe(100)
    }))

  it.effect("computes the percentiles over the most recent exports only", () =>
    Effect.gen(function*() {
      const m = yield* Metrics.make()
      for (let i = 0; i < Metrics.exportSampleSize; i++) yield* m.exportSucceeded("copy", "low", 1000)
      for (let i = 0; i < Metrics.exportSampleSize; i++) yield* m.exportSucceeded("copy", "low", 10)
      const s = yield* m.snapshot
      expect([s.exportMs.p50, s.exportMs.p99, s.exportMs.max]).toEqual([10, 10, 1000])
    }))

  it.effect("counts retried attempts apart from final failures, and validations", () =>
    Effect.gen(function*() {
      const m = yield* Metrics.make()
      yield* m.exportFailed("signal", true)
      yield* m.exportFailed("signal", true)
      yield* m.exportFailed("exit", false)
      yield* m.validation(true)
      yield* m.validation(true)
      yield* m.validation(true)
      yield* m.validation(false)
      const s = yield* m.snapshot
      expect([s.exportRetries, s.exportFailures]).toEqual([2, 1])
      expect(s.validations).toEqual({ valid: 3, invalid: 1, successRate: 0.75 })
    }))

  it.effect("counts clips by what cut them, and the in-process cutter's refusals", () =>
    Effect.gen(function*() {
      const m = yield* Metrics.make({ instance: "metrics-test-cutter" })
      yield* m.exportCutBy!("in-process", false)
      yield* m.exportCutBy!("in-process", false)
      yield* m.exportCutBy!("ffmpeg", true)
      yield* m.exportCutBy!("ffmpeg", false)
      const s = yield* m.snapshot
      expect([s.inProcessCuts, s.inProcessRefusals]).toEqual([2, 1])
      const by = (cutter: string) =>
        Metric.value(Metrics.series.exportsByCutter.pipe(
          Metric.tagged("instance", "metrics-test-cutter"),
          Metric.tagged("cutter", cutter)
        ))
      expect([(yield* by("in-process")).count, (yield* by("ffmpeg")).count]).toEqual([2, 2])
      const refusals = Metrics.series.inProcessRefusals.pipe(Metric.tagged("instance", "metrics-test-cutter"))
      expect((yield* Metric.value(refusals)).count).toBe(1)
    }))

  it.effect("reports the last queue depth, usage and heap", () =>
    Effect.gen(function*() {
      const m = yield* Metrics.make({ instance: "metrics-test-gauges" })
      const empty = yield* m.snapshot
      expect([empty.hitRate, empty.exportMs.p50, empty.validations.successRate]).toEqual([0, 0, 1])
      yield* m.queue({ high: 1, normal: 2, low: 30, running: 2 })
      yield* m.queue({ high: 0, normal: 2, low: 29, running: 2 })
      yield* m.usage(1234, 5)
      yield* m.heapUsed(99)
      const s = yield* m.snapshot
      expect(s.queue).toEqual({ high: 0, normal: 2, low: 29, running: 2 })
      expect([s.cacheBytes, s.cacheEntries, s.heapUsedBytes]).toEqual([1234, 5, 99])
      const low = Metrics.series.queueDepth.pipe(
        Metric.tagged("instance", "metrics-test-gauges"),
        Metric.tagged("priority", "low")
      )
      expect((yield* Metric.value(low)).value).toBe(29)
    }))

  it.effect("Metrics.layer gives each build its own instance", () =>
    Effect.gen(function*() {
      const one = yield* Effect.provide(Metrics.Metrics.pipe(Effect.tap((m) => m.hit)), Metrics.layer)
      const two = yield* Effect.provide(Metrics.Metrics, Metrics.layer)
      expect((yield* one.snapshot).hits).toBe(1)
      expect((yield* two.snapshot).hits).toBe(0)
    }))
})
