/**
 * The body of `TestExporter.make`.
 *
 * @internal
 */
import { Duration, Effect, Exit, Option, Stream, SubscriptionRef } from "effect"
import type { ExportMode, Rally } from "../Domain.js"
import { SourceInfo } from "../Domain.js"
import type { ExportError } from "../Errors.js"
import { NotMediaFile, SourceNotFound } from "../Errors.js"
import type { ExportRequest, ExportResult, ExporterShape, VerifyResult } from "../Exporter.js"
import { MemoryFileSystem } from "../MemoryFileSystem.js"
import type { ControlShape, ExportRecord, Match, Options, SourceSpec } from "../TestExporter.js"

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

/** @internal */
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
