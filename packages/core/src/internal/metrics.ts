/**
 * The bodies of `Metrics`: the Effect series, an instance's local state and
 * its snapshot, and the registration of every series at zero.
 *
 * @internal
 */
import { Effect, Metric, MetricBoundaries } from "effect"
import { evictionReasons, exportModes, priorities } from "../Domain.js"
import type { EvictionReason, ExportMode } from "../Domain.js"
import type { MakeOptions, MetricsShape, QueueDepth } from "../Metrics.js"

/** @internal */
export const exportMsBoundaries = MetricBoundaries.exponential({ start: 5, factor: 2, count: 16 })

/** @internal */
export const exportSampleSize = 1024

/** @internal */
export const quantile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

/** @internal */
export const series = {
  hits: Metric.counter("rallycache_cache_hits_total", { incremental: true, description: "clip requests served from the cache" }),
  misses: Metric.counter("rallycache_cache_misses_total", { incremental: true, description: "clip requests that needed an export" }),
  hitRate: Metric.gauge("rallycache_cache_hit_rate", { description: "hits / (hits + misses) of the instance" }),
  /** Tagged `mode` and `priority`. */
  exports: Metric.counter("rallycache_exports_total", { incremental: true, description: "clips exported" }),
  /** Tagged `mode`. */
  exportMs: Metric.histogram(
    "rallycache_export_duration_ms",
    exportMsBoundaries,
    "time to export one clip, in milliseconds"
  ),
  /** Tagged `reason`. */
  exportFailures: Metric.counter("rallycache_export_failures_total", { incremental: true, description: "exports that failed for good" }),
  /** Tagged `from` and `to` (exportModes). */
  exportFallbacks: Metric.counter("rallycache_export_fallbacks_total", {
    incremental: true,
    description: "clips cut in another mode than the one requested (e.g. exact to accurate)"
  }),
  /** Tagged `cutter` (`in-process` or `ffmpeg`). */
  exportsByCutter: Metric.counter("rallycache_exports_by_cutter_total", {
    incremental: true,
    description: "clips exported, by what wrote them (the in-process mp4/mov cutter or ffmpeg)"
  }),
  inProcessRefusals: Metric.counter("rallycache_in_process_refusals_total", {
    incremental: true,
    description: "copy and exact clips the in-process cutter refused, cut by ffmpeg instead"
  }),
  /** Tagged `reason`. */
  exportRetries: Metric.counter("rallycache_export_retries_total", {
    incremental: true,
    description: "failed export attempts that are retried"
  }),
  /** Tagged `result` (`valid` or `invalid`). */
  validations: Metric.counter("rallycache_validations_total", { incremental: true, description: "entries validated" }),
  /** Tagged `priority`. */
  queueDepth: Metric.gauge("rallycache_queue_depth", { description: "queued exports" }),
  queueRunning: Metric.gauge("rallycache_queue_running", { description: "exports running" }),
  cacheBytes: Metric.gauge("rallycache_cache_bytes", { description: "bytes of cached clips" }),
  cacheEntries: Metric.gauge("rallycache_cache_entries", { description: "cached clips" }),
  /** Tagged `reason`. */
  evictions: Metric.counter("rallycache_evictions_total", { incremental: true, description: "clips removed from the cache" }),
  heapUsed: Metric.gauge("rallycache_heap_used_bytes", { description: "heap in use" })
}

/** @internal */
export const make = (options: MakeOptions = {}): Effect.Effect<MetricsShape> =>
  Effect.sync(() => {
    const withInstance = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>): Metric.Metric<Type, In, Out> =>
      options.instance === undefined ? metric : Metric.tagged(metric, "instance", options.instance)

    const hitsTotal = withInstance(series.hits)
    const missesTotal = withInstance(series.misses)
    const hitRate = withInstance(series.hitRate)
    const exportsTotal = withInstance(series.exports)
    const exportMsHistogram = withInstance(series.exportMs)
    const failuresTotal = withInstance(series.exportFailures)
    const retriesTotal = withInstance(series.exportRetries)
    const fallbacksTotal = withInstance(series.exportFallbacks)
    const byCutter = withInstance(series.exportsByCutter)
    const refusalsTotal = withInstance(series.inProcessRefusals)
    const validationsTotal = withInstance(series.validations)
    const queueDepth = withInstance(series.queueDepth)
    const queueRunning = withInstance(series.queueRunning)
    const cacheBytes = withInstance(series.cacheBytes)
    const cacheEntries = withInstance(series.cacheEntries)
    const evictionsTotal = withInstance(series.evictions)
    const heapUsed = withInstance(series.heapUsed)

    // Tagged metrics and their update effects are built once: the hot paths
    // only run prepared effects.
    const exportsBy = new Map<string, Effect.Effect<void>>()
    const exportMsBy = new Map<ExportMode, Metric.Metric.Histogram<number>>()
    for (const mode of exportModes) {
      exportMsBy.set(mode, Metric.tagged(exportMsHistogram, "mode", mode))
      for (const priority of priorities) {
        exportsBy.set(
          `${mode}/${priority}`,
          Metric.increment(Metric.tagged(Metric.tagged(exportsTotal, "mode", mode), "priority", priority))
        )
      }
    }
    const depthBy = {
      high: Metric.tagged(queueDepth, "priority", "high"),
      normal: Metric.tagged(queueDepth, "priority", "normal"),
      low: Metric.tagged(queueDepth, "priority", "low")
    }
    const evictedBy = new Map<EvictionReason, Effect.Effect<void>>()
    for (const reason of evictionReasons) evictedBy.set(reason, Metric.increment(Metric.tagged(evictionsTotal, "reason", reason)))
    const validBy = {
      valid: Metric.increment(Metric.tagged(validationsTotal, "result", "valid")),
      invalid: Metric.increment(Metric.tagged(validationsTotal, "result", "invalid"))
    }

    const state = {
      hits: 0,
      misses: 0,
      exports: 0,
      exportFailures: 0,
      exportRetries: 0,
      exportFallbacks: 0,
      inProcessCuts: 0,
      inProcessRefusals: 0,
      exportMsCount: 0,
      exportMsSum: 0,
      exportMsMax: 0,
      // A ring of the most recent export times, for the percentiles.
      samples: new Float64Array(exportSampleSize),
      valid: 0,
      invalid: 0,
      queue: { high: 0, normal: 0, low: 0, running: 0 } as QueueDepth,
      cacheBytes: 0,
      cacheEntries: 0,
      evictions: Object.fromEntries(evictionReasons.map((reason) => [reason, 0])) as Record<EvictionReason, number>,
      heapUsedBytes: 0
    }
    const rate = () => {
      const total = state.hits + state.misses
      return total === 0 ? 0 : state.hits / total
    }
    const incHits = Metric.increment(hitsTotal)
    const incMisses = Metric.increment(missesTotal)
    const updateRate = Effect.suspend(() => Metric.set(hitRate, rate()))

    const shape: MetricsShape = {
      hit: Effect.zipRight(Effect.sync(() => void state.hits++), Effect.zipRight(incHits, updateRate)),
      miss: Effect.zipRight(Effect.sync(() => void state.misses++), Effect.zipRight(incMisses, updateRate)),
      exportSucceeded: (mode, priority, millis) =>
        Effect.suspend(() => {
          const ms = Number.isFinite(millis) && millis > 0 ? millis : 0
          state.exports++
          state.samples[state.exportMsCount % exportSampleSize] = ms
          state.exportMsCount++
          state.exportMsSum += ms
          if (ms > state.exportMsMax) state.exportMsMax = ms
          return Effect.zipRight(
            exportsBy.get(`${mode}/${priority}`) ?? Effect.void,
            Metric.update(exportMsBy.get(mode) ?? exportMsHistogram, ms)
          )
        }),
      exportFailed: (reason, willRetry) =>
        Effect.suspend(() => {
          if (willRetry) state.exportRetries++
          else state.exportFailures++
          return Metric.increment(Metric.tagged(willRetry ? retriesTotal : failuresTotal, "reason", reason))
        }),
      exportFellBack: (from, to) =>
        Effect.suspend(() => {
          state.exportFallbacks++
          return Metric.increment(Metric.tagged(Metric.tagged(fallbacksTotal, "from", from), "to", to))
        }),
      exportCutBy: (cutter, refused) =>
        Effect.suspend(() => {
          if (cutter === "in-process") state.inProcessCuts++
          if (refused) state.inProcessRefusals++
          return Effect.zipRight(
            Metric.increment(Metric.tagged(byCutter, "cutter", cutter)),
            refused ? Metric.increment(refusalsTotal) : Effect.void
          )
        }),
      validation: (valid) =>
        Effect.suspend(() => {
          if (valid) state.valid++
          else state.invalid++
          return valid ? validBy.valid : validBy.invalid
        }),
      queue: (depth) =>
        Effect.suspend(() => {
          state.queue = { high: depth.high, normal: depth.normal, low: depth.low, running: depth.running }
          return Effect.all([
            Metric.set(depthBy.high, depth.high),
            Metric.set(depthBy.normal, depth.normal),
            Metric.set(depthBy.low, depth.low),
            Metric.set(queueRunning, depth.running)
          ], { discard: true })
        }),
      usage: (bytes, entries) =>
        Effect.suspend(() => {
          state.cacheBytes = bytes
          state.cacheEntries = entries
          return Effect.zipRight(Metric.set(cacheBytes, bytes), Metric.set(cacheEntries, entries))
        }),
      evicted: (reason) =>
        Effect.suspend(() => {
          state.evictions[reason]++
          return evictedBy.get(reason) ?? Effect.void
        }),
      heapUsed: (bytes) =>
        Effect.suspend(() => {
          state.heapUsedBytes = bytes
          return Metric.set(heapUsed, bytes)
        }),
      snapshot: Effect.sync(() => {
        const n = Math.min(state.exportMsCount, exportSampleSize)
        const sorted = Array.from(state.samples.subarray(0, n)).sort((a, b) => a - b)
        const checked = state.valid + state.invalid
        return {
          hits: state.hits,
          misses: state.misses,
          hitRate: rate(),
          exports: state.exports,
          exportFailures: state.exportFailures,
          exportRetries: state.exportRetries,
          exportFallbacks: state.exportFallbacks,
          inProcessCuts: state.inProcessCuts,
          inProcessRefusals: state.inProcessRefusals,
          exportMs: {
            count: state.exportMsCount,
            sum: state.exportMsSum,
            p50: quantile(sorted, 0.5),
            p99: quantile(sorted, 0.99),
            max: state.exportMsMax
          },
          validations: { valid: state.valid, invalid: state.invalid, successRate: checked === 0 ? 1 : state.valid / checked },
          queue: state.queue,
          cacheBytes: state.cacheBytes,
          cacheEntries: state.cacheEntries,
          evictions: { ...state.evictions },
          heapUsedBytes: state.heapUsedBytes
        }
      })
    }
    return shape
  })

/** @internal */
export const register = (options: MakeOptions = {}): Effect.Effect<void> =>
  Effect.suspend(() => {
    const tag = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>): Metric.Metric<Type, In, Out> =>
      options.instance === undefined ? metric : Metric.tagged(metric, "instance", options.instance)
    const counters: Array<Metric.Metric.Counter<number>> = [
      tag(series.hits),
      tag(series.misses),
      tag(series.exportFailures),
      tag(series.exportRetries),
      ...exportModes.flatMap((mode) =>
        priorities.map((priority) =>
          Metric.tagged(Metric.tagged(tag(series.exports), "mode", mode), "priority", priority)
        )
      ),
      Metric.tagged(tag(series.validations), "result", "valid"),
      Metric.tagged(tag(series.validations), "result", "invalid"),
      ...evictionReasons.map((reason) => Metric.tagged(tag(series.evictions), "reason", reason))
    ]
    const gauges: Array<Metric.Metric.Gauge<number>> = [
      tag(series.hitRate),
      ...priorities.map((priority) => Metric.tagged(tag(series.queueDepth), "priority", priority)),
      tag(series.queueRunning),
      tag(series.cacheBytes),
      tag(series.cacheEntries),
      tag(series.heapUsed)
    ]
    return Effect.all([
      // Adding zero registers a counter without changing it.
      Effect.forEach(counters, (counter) => Metric.update(counter, 0), { discard: true }),
      // Reading registers a gauge or histogram without changing it.
      Effect.forEach(gauges, (gauge) => Metric.value(gauge), { discard: true }),
      Effect.forEach(exportModes, (mode) => Metric.value(Metric.tagged(tag(series.exportMs), "mode", mode)), {
        discard: true
      })
    ], { discard: true })
  })
