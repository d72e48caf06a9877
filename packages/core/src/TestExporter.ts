/**
 * An in-memory `Exporter` for tests and demos: exports take virtual time
 * (`Effect.sleep`, so `TestClock` drives them), report progress, honour
 * `paused`, write their clips into the shared `MemoryFileSystem`, and fail
 * on demand through `TestExporter.Control`.
 *
 * @example
 * ```ts
 * import { Errors, MemoryFileSystem } from "@rallycache/core"
 * import { TestExporter } from "@rallycache/core/testing"
 * import { Effect, Layer } from "effect"
 *
 * const layer = TestExporter.layer({
 *   sources: { "/videos/final.mp4": { duration: 600 } },
 *   exportTime: "3 seconds"
 * }).pipe(Layer.provideMerge(MemoryFileSystem.MemoryFileSystem.layer))
 *
 * const program = Effect.gen(function*() {
 *   const control = yield* TestExporter.Control
 *   // the next export of rally 4 fails like a killed ffmpeg, then retries succeed
 *   yield* control.failNext(4, new Errors.ExportFailed({ reason: "signal", detail: "SIGKILL", transient: true }))
 * })
 * ```
 *
 * @since 0.1.0
 */
import type { Duration } from "effect"
import { Context, Effect, Layer } from "effect"
import type { ExportMode, Rally } from "./Domain.js"
import type { ExportError } from "./Errors.js"
import type { ExportRequest, ExporterShape } from "./Exporter.js"
import { Exporter } from "./Exporter.js"
import * as internal from "./internal/testExporter.js"
import type { MemoryFileSystem } from "./MemoryFileSystem.js"

/**
 * A source video the test exporter knows.
 *
 * @since 0.1.0
 * @category models
 */
export interface SourceSpec {
  /** Duration in seconds. */
  readonly duration: number
  /** Default: derived from the path. */
  readonly fingerprint?: string | undefined
  /** Seconds between keyframes: copy-mode clips start at the keyframe at or before the rally (default 2). */
  readonly keyframeInterval?: number | undefined
  /** Virtual time a probe takes (default 0). */
  readonly probeTime?: Duration.DurationInput | undefined
  /** When `true`, probing fails with `NotMediaFile`. */
  readonly notMedia?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Sources known from the start, by path. More can be added with `Control.addSource`. */
  readonly sources?: Readonly<Record<string, SourceSpec>> | undefined
  /** Virtual time of one export: fixed, or per rally and mode (default 3 seconds). */
  readonly exportTime?: Duration.DurationInput | ((rally: Rally, mode: ExportMode) => Duration.DurationInput) | undefined
  /** Progress reports per export (default 10). */
  readonly progressSteps?: number | undefined
  /** Size of a clip per second of rally (default 250 kB, about 2 Mbit/s). */
  readonly bytesPerSecond?: number | undefined
  /** Whether `paused` is honoured (default true). */
  readonly canPause?: boolean | undefined
}

/**
 * Which exports an injected failure applies to: a rally index, a cache key
 * (matched against the output path, which the stores derive from the key),
 * or any predicate on the request.
 *
 * @since 0.1.0
 * @category models
 */
export type Match = number | string | ((request: ExportRequest) => boolean)

/**
 * One export the test exporter performed (or is performing).
 *
 * @since 0.1.0
 * @category models
 */
export interface ExportRecord {
  readonly rallyIndex: number
  readonly start: number
  readonly end: number
  readonly mode: ExportMode
  readonly outputPath: string
  readonly sourcePath: string
  readonly startedAt: number
  readonly endedAt: number | null
  readonly outcome: "running" | "succeeded" | "failed" | "interrupted"
}

/**
 * Counters of the test exporter.
 *
 * @since 0.1.0
 * @category models
 */
export interface Counts {
  readonly probes: number
  readonly started: number
  readonly succeeded: number
  readonly failed: number
  readonly interrupted: number
  /** Exports started and not ended, paused ones included. */
  readonly running: number
  /** Most exports that were ever running at once, paused ones included. */
  readonly maxRunning: number
  /** Exports working now: running and not paused (what would hold a CPU). */
  readonly active: number
  /** Most exports that were ever working at once. */
  readonly maxActive: number
  readonly verifies: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ControlShape {
  readonly addSource: (path: string, spec: SourceSpec) => Effect.Effect<void>
  /** The next `times` (default 1) exports that `match` fail with `error`, without writing anything. */
  readonly failNext: (match: Match, error: ExportError, options?: { readonly times?: number }) => Effect.Effect<void>
  /** Every export that `match` fails with `error` until `clearFailures`. */
  readonly failAlways: (match: Match, error: ExportError) => Effect.Effect<void>
  readonly clearFailures: Effect.Effect<void>
  /** `verify` of `path` reports the clip as invalid (the file itself is left alone). */
  readonly markCorrupt: (path: string) => Effect.Effect<void>
  readonly counts: Effect.Effect<Counts>
  /** Every export so far, oldest first. */
  readonly exports: Effect.Effect<ReadonlyArray<ExportRecord>>
}

/**
 * Controls the `TestExporter` of the same layer.
 *
 * @since 0.1.0
 * @category tags
 */
export class Control extends Context.Tag("@rallycache/core/TestExporter/Control")<Control, ControlShape>() {}

/**
 * The exporter and its `Control`, writing into the `MemoryFileSystem`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<{ readonly exporter: ExporterShape; readonly control: ControlShape }, never, MemoryFileSystem> => internal.make(options)

/**
 * `Exporter` and `Control`, writing into the `MemoryFileSystem` it requires.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Exporter | Control, never, MemoryFileSystem> =>
  Layer.effectContext(
    Effect.map(make(options), ({ control, exporter }) => Context.make(Exporter, exporter).pipe(Context.add(Control, control)))
  )
