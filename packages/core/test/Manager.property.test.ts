import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, FastCheck, Fiber, TestClock } from "effect"
import type { Clip } from "../src/Domain.js"
import { ExportFailed } from "../src/Errors.js"
import { MemoryFileSystem } from "../src/MemoryFileSystem.js"
import * as RallyCache from "../src/RallyCache.js"
import type { ClipError } from "../src/RallyCache.js"
import * as TestExporter from "../src/TestExporter.js"

const path = "/videos/match.mp4"
const count = 8
const rallies = Array.from({ length: count }, (_, i) => ({ start: i * 20, end: i * 20 + 10 + i }))

type Op =
  | { readonly _tag: "navigate"; readonly index: number }
  | { readonly _tag: "get"; readonly index: number }
  | { readonly _tag: "wait"; readonly millis: number }
  | { readonly _tag: "fail"; readonly index: number; readonly transient: boolean }
  | { readonly _tag: "corrupt"; readonly index: number }
  | { readonly _tag: "preload"; readonly priority: "high" | "normal" | "low" }

const index = FastCheck.integer({ min: 0, max: count - 1 })
const op: FastCheck.Arbitrary<Op> = FastCheck.oneof(
  FastCheck.record({ _tag: FastCheck.constant("navigate" as const), index }),
  FastCheck.record({ _tag: FastCheck.constant("get" as const), index }),
  FastCheck.record({ _tag: FastCheck.constant("wait" as const), millis: FastCheck.integer({ min: 0, max: 4000 }) }),
  FastCheck.record({ _tag: FastCheck.constant("fail" as const), index, transient: FastCheck.boolean() }),
  FastCheck.record({ _tag: FastCheck.constant("corrupt" as const), index }),
  FastCheck.record({
    _tag: FastCheck.constant("preload" as const),
    priority: FastCheck.constantFrom("high" as const, "normal" as const, "low" as const)
  })
)

const settle = Effect.gen(function*() {
  for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
})

describe("Manager (properties)", () => {
  it.effect.prop(
    "any mix of navigation, requests, failures and corruption: bounded concurrency, one export per key at a time, every request answered",
    [
      // At least one operation, and always a request at the end: an empty list would prove nothing.
      FastCheck.tuple(FastCheck.array(op, { minLength: 1, maxLength: 24 }), index).map(([ops, last]) =>
        [...ops, { _tag: "get" as const, index: last }]
      ),
      FastCheck.integer({ min: 1, max: 3 }),
      FastCheck.boolean()
    ],
    ([ops, concurrency, preemption]) =>
      Effect.gen(function*() {
        const cache = yield* RallyCache.RallyCache
        const control = yield* TestExporter.Control
        const fs = yield* MemoryFileSystem
        const video = yield* cache.openVideo({ path, rallies, id: "v" })
        const id = video.source.id
        const requests: Array<{ readonly index: number; readonly fiber: Fiber.RuntimeFiber<Clip, ClipError> }> = []
        const permanent = new Set<number>()
        const corruptions = new Map<number, number>()
        for (const o of ops) {
          switch (o._tag) {
            case "navigate":
              yield* cache.navigate(id, o.index)
              break
            case "get":
              requests.push({ index: o.index, fiber: yield* Effect.fork(cache.getClip(id, o.index)) })
              break
            case "wait":
              yield* TestClock.adjust(`${o.millis} millis`)
              break
            case "fail":
              if (!o.transient) permanent.add(o.index)
              yield* control.failNext(
                o.index,
                new ExportFailed({ reason: o.transient ? "signal" : "exit", detail: "injected", transient: o.transient })
              )
              break
            case "corrupt": {
              const status = yield* cache.status(id)
              const clipPath = (yield* fs.list).find(([p]) => p.includes(status.rallies[o.index]!.key))
              if (clipPath !== undefined && !clipPath[0].endsWith(".part")) {
                yield* fs.truncate(clipPath[0])
                corruptions.set(o.index, (corruptions.get(o.index) ?? 0) + 1)
              }
              break
            }
            case "preload":
              yield* cache.preload(id, { priority: o.priority })
              break
          }
          yield* settle
          expect((yield* control.counts).active).toBeLessThanOrEqual(concurrency)
        }
        // Drain: every export and retry has time to finish.
        for (let i = 0; i < 30; i++) {
          yield* TestClock.adjust("2 seconds")
          yield* settle
          expect((yield* control.counts).active).toBeLessThanOrEqual(concurrency)
        }
        yield* TestClock.adjust("5 minutes")

        // (`maxActive` is not checked: in suspend mode the preempted export
        // notices its pause a few fiber steps after the new one starts, with
        // no virtual time in between; the checks above sample settled states.)
        const counts = yield* control.counts
        expect(counts.running).toBe(0)
        expect((yield* fs.list).filter(([p]) => p.endsWith(".part"))).toEqual([])

        for (const request of requests) {
          const exit = request.fiber.unsafePoll()
          expect(exit).not.toBeNull()
          if (exit === null) continue
          if (Exit.isSuccess(exit)) {
            expect(exit.value.rallyIndex).toBe(request.index)
            expect(exit.value.start).toBe(rallies[request.index]!.start)
          } else {
            // Only an injected permanent failure may fail a request.
            expect(permanent.has(request.index)).toBe(true)
          }
        }

        // Per rally: runs never overlap (one export per key at a time), and a
        // clip is produced once, plus once per corruption of it.
        const records = yield* control.exports
        // The requests really went through the engine.
        expect(requests.length).toBeGreaterThan(0)
        expect(records.length).toBeGreaterThan(0)
        for (let i = 0; i < count; i++) {
          const runs = records.filter((r) => r.rallyIndex === i).sort((a, b) => a.startedAt - b.startedAt)
          for (let j = 1; j < runs.length; j++) {
            expect(runs[j]!.startedAt).toBeGreaterThanOrEqual(runs[j - 1]!.endedAt!)
          }
          const produced = runs.filter((r) => r.outcome === "succeeded").length
          expect(produced).toBeLessThanOrEqual(1 + (corruptions.get(i) ?? 0))
        }
      }).pipe(
        Effect.provide(
          RallyCache.layerTest({
            sources: { [path]: { duration: 200 } },
            exportTime: "3 seconds",
            progressSteps: 2,
            concurrency,
            preemption,
            maxRetries: 2,
            retryBaseDelay: "100 millis"
          })
        )
      ),
    { timeout: 120_000, fastCheck: { numRuns: 20 } }
  )
})
