import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Layer, Option, Ref, SubscriptionRef, TestClock } from "effect"
import { Rally, VideoSource } from "../src/Domain.js"
import type { VideoId } from "../src/Domain.js"
import { ExportFailed, SourceNotFound } from "../src/Errors.js"
import { Exporter } from "../src/Exporter.js"
import type { ExportRequest } from "../src/Exporter.js"
import { MemoryFileSystem } from "../src/MemoryFileSystem.js"
import * as TestExporter from "../src/TestExporter.js"

const path = "/videos/match.mp4"
const TestLayer = TestExporter.layer({ sources: { [path]: { duration: 120, keyframeInterval: 2 } }, exportTime: "3 seconds" })
  .pipe(Layer.provideMerge(MemoryFileSystem.layer))

const source = new VideoSource({ id: "match" as VideoId, path, fingerprint: "test:/videos/match.mp4" })
const rally = new Rally({ index: 4, start: 11, end: 20 })

const request = (extra: Partial<ExportRequest> = {}): ExportRequest => ({
  source,
  rally,
  mode: "copy",
  priority: "high",
  tempPath: "/cache/tmp/k.part",
  outputPath: "/cache/clips/k.mp4",
  ...extra
})

describe("TestExporter", () => {
  it.effect("an export takes its virtual time, reports progress and moves the file into place", () =>
    Effect.gen(function*() {
      const exporter = yield* Exporter
      const fs = yield* MemoryFileSystem
      const progress = yield* Ref.make<ReadonlyArray<number>>([])
      const fiber = yield* Effect.fork(
        exporter.export(request({ onProgress: (ratio) => Ref.update(progress, (p) => [...p, ratio]) }))
      )
      yield* Effect.yieldNow()
      yield* TestClock.adjust("2900 millis")
      expect(fiber.unsafePoll()).toBeNull()
      expect(Option.isSome(yield* fs.stat("/cache/tmp/k.part"))).toBe(true)
      expect(Option.isNone(yield* fs.stat("/cache/clips/k.mp4"))).toBe(true)
      yield* TestClock.adjust("100 millis")
      const result = yield* Fiber.join(fiber)
      // copy mode starts at the keyframe at or before 11 s
      expect(result.clipStart).toBe(10)
      expect(result.clipEnd).toBe(20)
      const file = yield* fs.stat("/cache/clips/k.mp4")
      expect(Option.map(file, (f) => f.sizeBytes)).toEqual(Option.some(result.sizeBytes))
      expect(Option.isNone(yield* fs.stat("/cache/tmp/k.part"))).toBe(true)
      const ratios = yield* Ref.get(progress)
      expect(ratios.length).toBe(10)
      expect(ratios.at(-1)).toBe(1)
      expect([...ratios].sort((a, b) => a - b)).toEqual(ratios)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("injected failures fail the matching exports only, and leave no file", () =>
    Effect.gen(function*() {
      const exporter = yield* Exporter
      const control = yield* TestExporter.Control
      const fs = yield* MemoryFileSystem
      const error = new ExportFailed({ reason: "signal", detail: "killed by SIGKILL", transient: true })
      yield* control.failNext(4, error)
      const first = yield* Effect.exit(exporter.export(request()))
      expect(first).toEqual(Exit.fail(error))
      expect(yield* fs.list).toEqual([])
      const other = yield* Effect.fork(exporter.export(request({ rally: new Rally({ index: 5, start: 30, end: 40 }) })))
      const again = yield* Effect.fork(exporter.export(request()))
      yield* TestClock.adjust("3 seconds")
      expect(Exit.isSuccess(yield* Fiber.await(other))).toBe(true)
      expect(Exit.isSuccess(yield* Fiber.await(again))).toBe(true)
      const counts = yield* control.counts
      expect(counts).toMatchObject({ started: 3, failed: 1, succeeded: 2, running: 0, maxRunning: 2 })
    }).pipe(Effect.provide(TestLayer)))

  it.effect("an interrupted export leaves nothing at either path", () =>
    Effect.gen(function*() {
      const exporter = yield* Exporter
      const control = yield* TestExporter.Control
      const fs = yield* MemoryFileSystem
      const fiber = yield* Effect.fork(exporter.export(request()))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      expect((yield* fs.list).length).toBe(1)
      yield* Fiber.interrupt(fiber)
      expect(yield* fs.list).toEqual([])
      expect((yield* control.counts).interrupted).toBe(1)
      expect((yield* control.exports)[0]?.outcome).toBe("interrupted")
    }).pipe(Effect.provide(TestLayer)))

  it.effect("a paused export stops its clock until resumed", () =>
    Effect.gen(function*() {
      const exporter = yield* Exporter
      const control = yield* TestExporter.Control
      const paused = yield* SubscriptionRef.make(false)
      const fiber = yield* Effect.fork(exporter.export(request({ paused })))
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1 second")
      yield* SubscriptionRef.set(paused, true)
      yield* TestClock.adjust("1 minute")
      expect(fiber.unsafePoll()).toBeNull()
      expect(yield* control.counts).toMatchObject({ running: 1, active: 0, maxActive: 1 })
      yield* SubscriptionRef.set(paused, false)
      yield* Effect.yieldNow()
      yield* TestClock.adjust("1900 millis")
      expect(fiber.unsafePoll()).toBeNull()
      yield* TestClock.adjust("100 millis")
      expect(Exit.isSuccess(yield* Fiber.await(fiber))).toBe(true)
    }).pipe(Effect.provide(TestLayer)))

  it.effect("probe knows registered sources; verify finds corrupt clips", () =>
    Effect.gen(function*() {
      const exporter = yield* Exporter
      const control = yield* TestExporter.Control
      const fs = yield* MemoryFileSystem
      const info = yield* exporter.probe(path)
      expect(info.duration).toBe(120)
      expect(info.fingerprint).toBe("test:/videos/match.mp4")
      expect(yield* Effect.flip(exporter.probe("/videos/missing.mp4"))).toEqual(
        new SourceNotFound({ path: "/videos/missing.mp4" })
      )
      yield* control.addSource("/videos/other.mp4", { duration: 30, fingerprint: "fp-2" })
      expect((yield* exporter.probe("/videos/other.mp4")).fingerprint).toBe("fp-2")

      yield* fs.write("/cache/clips/a.mp4", { sizeBytes: 100 })
      expect(yield* exporter.verify("/cache/clips/a.mp4")).toEqual({ _tag: "Valid" })
      expect((yield* exporter.verify("/cache/clips/none.mp4"))._tag).toBe("Invalid")
      yield* fs.truncate("/cache/clips/a.mp4")
      expect((yield* exporter.verify("/cache/clips/a.mp4"))._tag).toBe("Invalid")
      yield* fs.write("/cache/clips/b.mp4", { sizeBytes: 100 })
      yield* control.markCorrupt("/cache/clips/b.mp4")
      expect((yield* exporter.verify("/cache/clips/b.mp4"))._tag).toBe("Invalid")
    }).pipe(Effect.provide(TestLayer)))
})
