import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Option, TestClock, Tracer } from "effect"
import * as RallyCache from "../src/RallyCache.js"

interface Recorded {
  readonly name: string
  readonly parent: string | undefined
  readonly attributes: ReadonlyMap<string, unknown>
}

/** The default tracer, keeping every span it starts with its parent's name. */
const recording = (spans: Array<Recorded>) =>
  Layer.unwrapEffect(Effect.map(Effect.tracer, (base) =>
    Layer.setTracer(Tracer.make({
      span: (name, parent, context, links, startTime, kind, options) => {
        const span = base.span(name, parent, context, links, startTime, kind, options)
        spans.push({
          name,
          parent: Option.match(parent, { onNone: () => undefined, onSome: (p) => p._tag === "Span" ? p.name : undefined }),
          attributes: span.attributes
        })
        return span
      },
      context: (f, fiber) => base.context(f, fiber)
    }))))

describe("Tracing", () => {
  it.effect("each message and each export has a span, the export a child of the message that queued it", () => {
    const spans: Array<Recorded> = []
    return Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const video = yield* cache.openVideo({ path: "/videos/match.mp4", rallies: [{ start: 1, end: 5 }], id: "final" })
      yield* Effect.fork(cache.getClip(video.source.id, 0).pipe(Effect.withSpan("front.request")))
      yield* Effect.yieldNow().pipe(Effect.repeatN(20))
      yield* TestClock.adjust("10 seconds")
      yield* Effect.yieldNow().pipe(Effect.repeatN(20))
      expect(spans.map((s) => s.name)).toContain("rallycache.message.OpenVideo")
      expect(spans.map((s) => s.name)).toContain("rallycache.message.Opened")
      const message = spans.find((s) => s.name === "rallycache.message.GetClip")
      expect(message?.parent).toBe("front.request")
      expect(message?.attributes.get("rallycache.video")).toBe("final")
      expect(message?.attributes.get("rallycache.rally")).toBe(0)
      const exported = spans.find((s) => s.name === "rallycache.export")
      expect(exported?.parent).toBe("rallycache.message.GetClip")
      expect(Object.fromEntries(exported?.attributes ?? [])).toMatchObject({
        "rallycache.video": "final",
        "rallycache.rally": 0,
        "rallycache.priority": "high",
        "rallycache.mode": "exact",
        "rallycache.runner": "runner-7"
      })
    }).pipe(
      Effect.provide(RallyCache.layerTest({ runnerId: "runner-7", sources: { "/videos/match.mp4": { duration: 60 } }, exportTime: "1 second" })),
      Effect.provide(recording(spans))
    )
  })
})
