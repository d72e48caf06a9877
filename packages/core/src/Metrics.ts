/**
 * The `Metrics` service: what the cache does, as Effect `Metric`s (so any
 * Effect metrics exporter, such as `@effect/opentelemetry`, reads them), plus
 * a `snapshot` for the CLI and status pages.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Metric, MetricBoundaries } from "effect"
import type { EvictionReason, ExportMode, Priority } from "./Domain.js"
import type { Cutter } from "./Exporter.js"

/**
 * Queue status per priority.
 *
 * @since 0.1.0
 */
export interface QueueDepth {
  readonly high: number
  readonly normal: number
  readonly low: number
  readonly running: number
}

/**
 * A point-in-time view of this instance's metrics.
 *
 * @since 0.1.0
 */
export interface MetricsSnapshot {
  readonly hits: number
  readonly misses: number
  /** hits / (hits + misses), 0 when there was no request. */
  readonly hitRate: number
  readonly exports: number
  readonly exportFailures: number
  readonly exportRetries: number
  /** Clips cut in another mode than the one requested (e.g. exact to accurate). */
  readonly exportFallbacks?: number | undefined
  /** Clips written by the in-process cutter (no ffmpeg child). */
  readonly inProcessCuts?: number | undefined
  /** Clips the in-process cutter refused, so ffmpeg cut them (see `CacheEvent.InProcessCutRefused`). */
  readonly inProcessRefusals?: number | undefined
  readonly exportMs: { readonly count: number; readonly sum: number; readonly p50: number; readonly p99: number; readonly max: number }
  readonly validations: { readonly valid: number; readonly invalid: number; readonly successRate: number }
  readonly queue: QueueDepth
  readonly cacheBytes: number
  readonly cacheEntries: number
  readonly evictions: Readonly<Record<EvictionReason, number>>
  readonly heapUsedBytes: number
}

/**
 * @since 0.1.0
 */
export interface MetricsShape {
  readonly hit: Effect.Effect<void>
  readonly miss: Effect.Effect<void>
  readonly exportSucceeded: (mode: ExportMode, priority: Priority, millis: number) => Effect.Effect<void>
  readonly exportFailed: (reason: string, willRetry: boolean) => Effect.Effect<void>
  /** A clip requested in mode `from` was cut in mode `to` (see `CacheEvent.ExportFellBack`). */
  readonly exportFellBack: (from: ExportMode, to: ExportMode) => Effect.Effect<void>
  /** What wrote a new clip, and whether the in-process cutter refused it first (see `Exporter.Cutter`). */
  readonly exportCutBy?: ((cutter: Cutter, refused: boolean) => Effect.Effect<void>) | undefined
  readonly validation: (valid: boolean) => Effect.Effect<void>
  readonly queue: (depth: QueueDepth) => Effect.Effect<void>
  readonly usage: (bytes: number, entries: number) => Effect.Effect<void>
  readonly evicted: (reason: EvictionReason) => Effect.Effect<void>
  readonly heapUsed: (bytes: number) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<MetricsSnapshot>
}

/**
 * @since 0.1.0
 */
export class Metrics extends Context.Tag("@rallycache/core/Metrics")<Metrics, MetricsShape>() {}

/**
 * Upper bounds of the export-time histogram, in milliseconds: 5 ms doubling
 * to about 164 s, so a 20 ms stream copy and a minutes-long re-encode each
 * land in a bucket of their own.
 *
 * @since 0.1.0
 */
export const exportMsBoundaries = MetricBoundaries.exponential({ start: 5, factor: 2, count: 16 })

/**
 * How many recent export times `snapshot` keeps for `p50` and `p99`.
 *
 * @since 0.1.0
 */
export const exportSampleSize = 1024

/**
 * The Effect metrics behind every instance, untagged. A metric's identity is
 * its name, type, description and tags, so read them through these values
 * (adding the tags you want), e.g.
 * `Metric.value(series.evictions.pipe(Metric.tagged("reason", "age")))`.
 *
 * @since 0.1.0
 */
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
  /** Tagged `from` and `to` (modes). */
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

/**
 * @since 0.1.0
 */
export interface MakeOptions {
  /**
   * Adds an `instance` tag to every Effect metric, so the exported series of
   * several caches in one process stay apart. Leave it out for a single
   * cache (the usual case): the tag would only add cardinality.
   */
  readonly instance?: string | undefined
}

const evictionReasons: ReadonlyArray<EvictionReason> = ["size", "age", "per-video", "invalid", "manual", "source-changed"]
const modes: ReadonlyArray<ExportMode> = ["copy", "exact", "accurate"]
const priorityList: ReadonlyArray<Priority> = ["high", "normal", "low"]

/**
 * The `q` quantile (0 to 1, nearest rank) of ascending `sorted` values; 0
 * when there are none.
 *
 * @since 0.1.0
 * @category utils
 */
export const quantile = (sorted: ReadonlyArray<number>, q: number): number =>
  sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!

/**
 * A metrics instance.
 *
 * Every update goes to two places:
 *
 * - Effect `Metric`s named `rallycache_*` (counters, gauges, a histogram), for
 *   any Effect metrics exporter. They live in Effect's global registry, keyed
 *   by name and tags, so every instance in a process adds to the same series
 *   unless `instance` is given.
 * - This instance's own state, which `snapshot` reads. Keeping it local (not
 *   reading the registry back) is what makes a snapshot describe this cache
 *   only: two caches in one process, or two tests in one worker, never see
 *   each other's counts. The state is a plain object confined to this
 *   closure and updated inside `Effect.sync`; JavaScript runs one fiber step
 *   at a time, so each update is atomic without a `Ref`, and the hot path
 *   (`hit`) stays a few hundred nanoseconds.
 *
 * Semantics:
 * - `exportFailed(reason, true)` is a failed attempt that will be retried: it
 *   counts in `exportRetries`. `exportFailed(reason, false)` is a final
 *   failure: it counts in `exportFailures`. Cancelled jobs are neither.
 * - `exportMs.count`, `sum` and `max` cover every export; `p50` and `p99`
 *   cover the last `exportSampleSize` exports.
 * - `validations.successRate` is 1 before any validation (nothing failed).
 *
 * Effect metrics: `rallycache_cache_hits_total`, `rallycache_cache_misses_total`,
 * `rallycache_cache_hit_rate`, `rallycache_exports_total{mode,priority}`,
 * `rallycache_export_duration_ms{mode}` (histogram),
 * `rallycache_export_failures_total{reason}`, `rallycache_export_retries_total{reason}`,
 * `rallycache_export_fallbacks_total{from,to}`,
 * `rallycache_validations_total{result}`, `rallycache_queue_depth{priority}`,
 * `rallycache_queue_running`, `rallycache_cache_bytes`, `rallycache_cache_entries`,
 * `rallycache_evictions_total{reason}`, `rallycache_heap_used_bytes`.
 *
 * @since 0.1.0
 */
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
    for (const mode of modes) {
      exportMsBy.set(mode, Metric.tagged(exportMsHistogram, "mode", mode))
      for (const priority of priorityList) {
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
      evictions: { size: 0, age: 0, "per-video": 0, invalid: 0, manual: 0, "source-changed": 0 } as Record<
        EvictionReason,
        number
      >,
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

/**
 * Put every `rallycache_*` series (each tag value known in advance) in
 * Effect's metric registry at its current value, zero at start, so an
 * exporter lists them all before any traffic. Failure and retry counters
 * are tagged by free-text reasons, so they are registered without a tag.
 *
 * @since 0.1.0
 * @category constructors
 */
export const register = (options: MakeOptions = {}): Effect.Effect<void> =>
  Effect.suspend(() => {
    const tag = <Type, In, Out>(metric: Metric.Metric<Type, In, Out>): Metric.Metric<Type, In, Out> =>
      options.instance === undefined ? metric : Metric.tagged(metric, "instance", options.instance)
    const counters: Array<Metric.Metric.Counter<number>> = [
      tag(series.hits),
      tag(series.misses),
      tag(series.exportFailures),
      tag(series.exportRetries),
      ...modes.flatMap((mode) =>
        priorityList.map((priority) =>
          Metric.tagged(Metric.tagged(tag(series.exports), "mode", mode), "priority", priority)
        )
      ),
      Metric.tagged(tag(series.validations), "result", "valid"),
      Metric.tagged(tag(series.validations), "result", "invalid"),
      ...evictionReasons.map((reason) => Metric.tagged(tag(series.evictions), "reason", reason))
    ]
    const gauges: Array<Metric.Metric.Gauge<number>> = [
      tag(series.hitRate),
      ...priorityList.map((priority) => Metric.tagged(tag(series.queueDepth), "priority", priority)),
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
      Effect.forEach(modes, (mode) => Metric.value(Metric.tagged(tag(series.exportMs), "mode", mode)), {
        discard: true
      })
    ], { discard: true })
  })

/**
 * A fresh metrics instance (see `make`), its series registered (`register`).
 *
 * @since 0.1.0
 */
export const layer: Layer.Layer<Metrics> = Layer.effect(Metrics, Effect.zipLeft(make(), register()))

/**
 * A fresh metrics instance whose Effect metrics carry `instance` tags.
 *
 * @since 0.1.0
 */
export const layerWith = (options: MakeOptions): Layer.Layer<Metrics> =>
  Layer.effect(Metrics, Effect.zipLeft(make(options), register(options)))
