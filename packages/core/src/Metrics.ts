/**
 * The `Metrics` service: what the cache does, as Effect `Metric`s (so any
 * Effect metrics exporter, such as `@effect/opentelemetry`, reads them), plus
 * a `snapshot` for the CLI and status pages.
 *
 * @since 0.1.0
 */
import type { MetricBoundaries } from "effect"
import { Context, Effect, Layer } from "effect"
import type { EvictionReason, ExportMode, Priority } from "./Domain.js"
import * as internal from "./internal/metrics.js"
import type * as Protocol from "./Protocol.js"
import type { Cutter } from "./Exporter.js"

/**
 * How many jobs wait per priority and how many hold a worker (declared in
 * `Protocol`).
 *
 * @since 0.1.0
 * @category models
 */
export type QueueDepth = Protocol.QueueDepth

/**
 * A point-in-time view of this instance's metrics (declared in `Protocol`).
 *
 * @since 0.1.0
 * @category models
 */
export type MetricsSnapshot = Protocol.MetricsSnapshot

/**
 * @since 0.1.0
 * @category models
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
 * @category tags
 */
export class Metrics extends Context.Tag("@rallycache/core/Metrics")<Metrics, MetricsShape>() {}

/**
 * Upper bounds of the export-time histogram, in milliseconds: 5 ms doubling
 * to about 164 s, so a 20 ms stream copy and a minutes-long re-encode each
 * land in a bucket of their own.
 *
 * @since 0.1.0
 * @category utils
 */
export const exportMsBoundaries: MetricBoundaries.MetricBoundaries = internal.exportMsBoundaries

/**
 * How many recent export times `snapshot` keeps for `p50` and `p99`.
 *
 * @since 0.1.0
 * @category utils
 */
export const exportSampleSize: number = internal.exportSampleSize

/**
 * The Effect metrics behind every instance, untagged. A metric's identity is
 * its name, type, description and tags, so read them through these values
 * (adding the tags you want), e.g.
 * `Metric.value(series.evictions.pipe(Metric.tagged("reason", "age")))`.
 *
 * @since 0.1.0
 * @category utils
 */
export const series: typeof internal.series = internal.series

/**
 * @since 0.1.0
 * @category models
 */
export interface MakeOptions {
  /**
   * Adds an `instance` tag to every Effect metric, so the exported series of
   * several caches in one process stay apart. Leave it out for a single
   * cache (the usual case): the tag would only add cardinality.
   */
  readonly instance?: string | undefined
}


/**
 * The `q` quantile (0 to 1, nearest rank) of ascending `sorted` values; 0
 * when there are none.
 *
 * @since 0.1.0
 * @category utils
 */
export const quantile: (sorted: ReadonlyArray<number>, q: number) => number = internal.quantile

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
 * @category constructors
 */
export const make: (options?: MakeOptions) => Effect.Effect<MetricsShape> = internal.make

/**
 * Put every `rallycache_*` series (each tag value known in advance) in
 * Effect's metric registry at its current value, zero at start, so an
 * exporter lists them all before any traffic. Failure and retry counters
 * are tagged by free-text reasons, so they are registered without a tag.
 *
 * @since 0.1.0
 * @category constructors
 */
export const register: (options?: MakeOptions) => Effect.Effect<void> = internal.register

/**
 * A fresh metrics instance (see `make`), its series registered (`register`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Metrics> = Layer.effect(Metrics, Effect.zipLeft(make(), register()))

/**
 * A fresh metrics instance whose Effect metrics carry `instance` tags.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: MakeOptions): Layer.Layer<Metrics> =>
  Layer.effect(Metrics, Effect.zipLeft(make(options), register(options)))
