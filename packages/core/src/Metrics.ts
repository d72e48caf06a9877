/**
 * The `Metrics` service: what the cache does, as Effect `Metric`s (so any
 * Effect metrics exporter, such as `@effect/opentelemetry`, reads them), plus
 * a `snapshot` for the CLI and status pages.
 *
 * @since 0.1.0
 */
import { Context } from "effect"
import type { Effect } from "effect"
import type { EvictionReason, ExportMode, Priority } from "./Domain.js"

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
