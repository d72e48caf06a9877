/**
 * One runner and one client-only front in this process (two `Sharding`s
 * talking over loopback sockets), one Postgres, spans collected in memory:
 * a clip request that exports is one trace from the front to the runner.
 */
import { describe, expect, it } from "@effect/vitest"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base"
import { ClusterRunner, Tracing } from "@rallycache/cluster"
import { RallyCache } from "@rallycache/core"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Context, Effect, Layer } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Postgres from "../../../test/support/postgres.js"

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "rallycache-tracing-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** The span and its ancestors, nearest first. */
const ancestry = (spans: ReadonlyArray<ReadableSpan>, span: ReadableSpan): Array<ReadableSpan> => {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]))
  const out: Array<ReadableSpan> = []
  for (let parent = span.parentSpanContext?.spanId; parent !== undefined;) {
    const next = byId.get(parent)
    if (next === undefined) break
    out.push(next)
    parent = next.parentSpanContext?.spanId
  }
  return out
}

describe("tracing (real Postgres; as root it runs as the postgres user)", () => {
  it.live("a clip export is traced from the front to the runner that did it", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const pg = yield* Postgres.scoped
      const dir = yield* tempDir
      const video = yield* SampleVideo.cached({ duration: 20, dir: Path.join(dir, "media"), clock: false }).pipe(
        Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
      )
      const port = yield* Effect.promise(Postgres.freePort)
      yield* Layer.build(ClusterRunner.layer({
        databaseUrl: pg.url,
        port,
        cache: { cacheDir: Path.join(dir, "cache") }
      }))
      const front = yield* Layer.build(ClusterRunner.layerClient({ databaseUrl: pg.url }))
      const cache = Context.get(front, RallyCache.RallyCache)

      yield* cache.openVideo({ path: video, rallies: [{ start: 2, end: 9 }, { start: 11, end: 18 }], id: "traced" })
      yield* cache.navigate("traced", 1)
      const clip = yield* cache.getClip("traced", 0).pipe(Effect.withSpan("viewer"))
      expect(clip.cached).toBe(false)

      const spans = exporter.getFinishedSpans()
      const viewer = spans.find((s) => s.name === "viewer")!
      const trace = spans.filter((s) => s.spanContext().traceId === viewer.spanContext().traceId)
      const sent = trace.find((s) => s.name === "rallycache.front.GetClip")
      const received = trace.find((s) => s.name === "rallycache.runner.GetClip")
      expect(sent?.attributes["rallycache.video_id"]).toBe("traced")
      expect(received?.attributes).toMatchObject({
        "rallycache.video_id": "traced",
        "rallycache.rally_index": 0,
        "rallycache.runner": `127.0.0.1:${port}`,
        "rallycache.exported": true
      })
      expect(sent?.attributes["rallycache.shard"]).toMatch(/^default:\d+$/)
      // The runner's span descends from the front's (through the cluster's own spans).
      expect(ancestry(spans, received!).map((s) => s.name)).toContain("rallycache.front.GetClip")
      // The engine's export span of the rally was recorded. Its parent is the message that queued the
      // export (the viewer's request may only have joined it): traced back through the runner's
      // handling of that message to the front's request.
      const exports = spans.filter((s) =>
        s.name === "rallycache.export" && s.attributes["rallycache.video"] === "traced" &&
        s.attributes["rallycache.rally"] === 0
      )
      expect(exports.length).toBeGreaterThan(0)
      for (const exported of exports) {
        const names = ancestry(spans, exported).map((s) => s.name)
        expect(names[0]).toMatch(/^rallycache\.message\./)
        expect(names.some((name) => name.startsWith("rallycache.runner."))).toBe(true)
        expect(names.some((name) => name.startsWith("rallycache.front."))).toBe(true)
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(Tracing.layer({ serviceName: "tracing-test", spanProcessors: [new SimpleSpanProcessor(exporter)] }))
    )
  }, 120_000)
})
