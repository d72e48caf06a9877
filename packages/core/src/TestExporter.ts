/**
 * An in-memory `Exporter` for tests and demos: exports take virtual time
 * (`Effect.sleep`, so `TestClock` drives them), report progress, honour
 * `paused`, write their clips into the shared `MemoryFileSystem`, and fail
 * on demand through `TestExporter.Control`.
 *
 * @example
 * ```ts
 * import { Errors, MemoryFileSystem, TestExporter } from "@rallycache/core"
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
import { Context, Duration, Effect, Exit, Layer, Option, Stream, SubscriptionRef } from "effect"
import type { ExportMode, Rally } from "./Domain.js"
import { SourceInfo } from "./Domain.js"
import type { ExportError } from "./Errors.js"
import { NotMediaFile, SourceNotFound } from "./Errors.js"
import type { ExportRequest, ExportResult, ExporterShape, VerifyResult } from "./Exporter.js"
import { Exporter } from "./Exporter.js"
import { MemoryFileSystem } from "./MemoryFileSystem.js"

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

interface Failure {
  readonly match: Match
  readonly error: ExportError
  remaining: number
}

const matches = (match: Match, request: ExportRequest): boolean =>
  typeof match === "number"
    ? request.rally.index === match
    : typeof match === "string"
    ? request.outputPath.includes(match) || request.tempPath.includes(match)
    : match(request)

const defaultFingerprint = (path: string): string => `test:${path}`

/**
 * The exporter and its `Control`, writing into the `MemoryFileSystem`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<{ readonly exporter: ExporterShape; readonly control: ControlShape }, never, MemoryFileSystem> =>
  Effect.gen(function*() {
    const fs = yield* MemoryFileSystem
    const sources = new Map<string, SourceSpec>(Object.entries(options.sources ?? {}))
    const failures: Array<Failure> = []
    const corrupt = new Set<string>()
    const records: Array<ExportRecord> = []
    const counts = {
      probes: 0,
      started: 0,
      succeeded: 0,
      failed: 0,
      interrupted: 0,
      running: 0,
      maxRunning: 0,
      active: 0,
      maxActive: 0,
      verifies: 0
    }
    const setActive = (delta: number) =>
      Effect.sync(() => {
        counts.active += delta
        counts.maxActive = Math.max(counts.maxActive, counts.active)
      })
    const steps = Math.max(1, Math.trunc(options.progressSteps ?? 10))
    const bytesPerSecond = options.bytesPerSecond ?? 250_000
    const canPause = options.canPause ?? true
    const exportTime = (rally: Rally, mode: ExportMode): Duration.Duration => {
      const time = options.exportTime
      return Duration.decode(time === undefined ? "3 seconds" : typeof time === "function" ? time(rally, mode) : time)
    }

    const takeFailure = (request: ExportRequest): ExportError | undefined => {
      const i = failures.findIndex((f) => f.remaining > 0 && matches(f.match, request))
      if (i < 0) return undefined
      const failure = failures[i]!
      failure.remaining -= 1
      if (failure.remaining <= 0) failures.splice(i, 1)
      return failure.error
    }

    const waitUntilResumed = (paused: SubscriptionRef.SubscriptionRef<boolean>) =>
      paused.changes.pipe(Stream.filter((p) => !p), Stream.runHead, Effect.asVoid)
    const waitUntilPaused = (paused: SubscriptionRef.SubscriptionRef<boolean>) =>
      paused.changes.pipe(Stream.filter((p) => p), Stream.runHead, Effect.asVoid)

    // Spend `total` of virtual time in `steps` slices, reporting progress
    // after each; a pause stops the clock of this export until resumed.
    const work = (request: ExportRequest, total: Duration.Duration) =>
      Effect.gen(function*() {
        const totalMs = Duration.toMillis(total)
        const slice = totalMs / steps
        let done = 0
        while (done < totalMs) {
          const paused = canPause ? request.paused : undefined
          if (paused !== undefined && (yield* SubscriptionRef.get(paused))) {
            yield* setActive(-1)
            if (request.confirmPaused !== undefined) yield* request.confirmPaused
            yield* waitUntilResumed(paused).pipe(Effect.ensuring(setActive(1)))
          }
          const before = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          const chunk = Math.min(slice, totalMs - done)
          if (paused === undefined) {
            yield* Effect.sleep(Duration.millis(chunk))
          } else {
            yield* Effect.raceFirst(Effect.sleep(Duration.millis(chunk)), waitUntilPaused(paused))
          }
          const after = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          done = Math.min(totalMs, done + (after - before))
          if (request.onProgress !== undefined) yield* request.onProgress(done / totalMs)
        }
      })

    const exporter: ExporterShape = {
      settingsVersion: (mode) => `test-${mode}-v1`,
      canPause,
      probe: (path) =>
        Effect.gen(function*() {
          counts.probes += 1
          const spec = sources.get(path)
          if (spec === undefined) return yield* new SourceNotFound({ path })
          if (spec.probeTime !== undefined) yield* Effect.sleep(spec.probeTime)
          if (spec.notMedia === true) {
            return yield* new NotMediaFile({ path, detail: "Invalid data found when processing input" })
          }
          return new SourceInfo({
            fingerprint: spec.fingerprint ?? defaultFingerprint(path),
            duration: spec.duration,
            keyframeInterval: spec.keyframeInterval ?? 2,
            hasVideo: true,
            hasAudio: true
          })
        }),
      export: (request) =>
        Effect.gen(function*() {
          const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          const spec = sources.get(request.source.path)
          const record: { -readonly [K in keyof ExportRecord]: ExportRecord[K] } = {
            rallyIndex: request.rally.index,
            start: request.rally.start,
            end: request.rally.end,
            mode: request.mode,
            outputPath: request.outputPath,
            sourcePath: request.source.path,
            startedAt: now,
            endedAt: null,
            outcome: "running"
          }
          records.push(record)
          counts.started += 1
          counts.running += 1
          counts.maxRunning = Math.max(counts.maxRunning, counts.running)

          const run = Effect.gen(function*() {
            if (spec === undefined) return yield* new SourceNotFound({ path: request.source.path })
            const injected = takeFailure(request)
            if (injected !== undefined) return yield* Effect.fail(injected)
            yield* fs.write(request.tempPath, { sizeBytes: 0 })
            yield* Effect.acquireUseRelease(
              setActive(1),
              () => work(request, exportTime(request.rally, request.mode)),
              () => setActive(-1)
            )
            const keyframe = spec.keyframeInterval ?? 2
            const clipStart = request.mode === "copy" && keyframe > 0
              ? Math.floor(request.rally.start / keyframe) * keyframe
              : request.rally.start
            const clipEnd = request.rally.end
            const sizeBytes = Math.max(1, Math.round((clipEnd - clipStart) * bytesPerSecond))
            yield* fs.write(request.tempPath, { sizeBytes })
            yield* fs.rename(request.tempPath, request.outputPath)
            const result: ExportResult = { clipStart, clipEnd, sizeBytes }
            return result
          })

          return yield* run.pipe(
            Effect.onExit((exit) =>
              Effect.gen(function*() {
                counts.running -= 1
                record.endedAt = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
                if (Exit.isSuccess(exit)) {
                  counts.succeeded += 1
                  record.outcome = "succeeded"
                  return
                }
                // Like a killed ffmpeg whose part file is cleaned up: nothing stays behind.
                yield* fs.remove(request.tempPath)
                if (Exit.isInterrupted(exit)) {
                  counts.interrupted += 1
                  record.outcome = "interrupted"
                } else {
                  counts.failed += 1
                  record.outcome = "failed"
                }
              })
            )
          )
        }),
      verify: (path) =>
        Effect.gen(function*() {
          counts.verifies += 1
          const file = yield* fs.stat(path)
          const result: VerifyResult = Option.isNone(file)
            ? { _tag: "Invalid", reason: "file not found" }
            : file.value.corrupt || corrupt.has(path)
            ? { _tag: "Invalid", reason: "moov atom not found" }
            : file.value.sizeBytes === 0
            ? { _tag: "Invalid", reason: "empty file" }
            : { _tag: "Valid" }
          return result
        })
    }

    const control: ControlShape = {
      addSource: (path, spec) => Effect.sync(() => void sources.set(path, spec)),
      failNext: (match, error, opts) =>
        Effect.sync(() => void failures.push({ match, error, remaining: Math.max(1, opts?.times ?? 1) })),
      failAlways: (match, error) =>
        Effect.sync(() => void failures.push({ match, error, remaining: Number.POSITIVE_INFINITY })),
      clearFailures: Effect.sync(() => void failures.splice(0, failures.length)),
      markCorrupt: (path) => Effect.sync(() => void corrupt.add(path)),
      counts: Effect.sync(() => ({ ...counts })),
      exports: Effect.sync(() => records.map((r) => ({ ...r })))
    }

    return { exporter, control }
  })

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
