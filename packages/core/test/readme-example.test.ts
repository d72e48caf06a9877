// The TestClock example of packages/core/README.md, verbatim: if this file
// changes, change the README with it (and the other way round).
import { describe, expect, it } from "@effect/vitest"
import { RallyCache } from "@rallycache/core"
import { Effect, TestClock } from "effect"

const match = "/videos/final.mp4"

describe("README", () => {
  it.effect("navigate, let virtual time pass, then a cache hit", () =>
    Effect.gen(function*() {
      const cache = yield* RallyCache.RallyCache
      const video = yield* cache.openVideo({
        path: match,
        rallies: [{ start: 0, end: 12 }, { start: 20, end: 31 }, { start: 40, end: 52 }]
      })
      const id = video.source.id

      // Rally 0 is queued at high priority, 1 and 2 at normal; two exports run at once.
      yield* cache.navigate(id, 0)
      expect((yield* cache.status(id)).rallies.map((r) => r._tag)).toEqual(["Running", "Running", "Queued"])

      // Each export takes 3 virtual seconds: no real time passes.
      yield* TestClock.adjust("3 seconds")
      const clip = yield* cache.getClip(id, 0)
      expect(clip.cached).toBe(true)
      expect(clip.clipStart).toBe(0)

      // Rally 2 took the freed slot; 3 more seconds and every clip is ready.
      yield* TestClock.adjust("3 seconds")
      expect((yield* cache.status(id)).rallies.map((r) => r._tag)).toEqual(["Cached", "Cached", "Cached"])
      const { metrics } = yield* cache.stats
      expect(metrics.hits).toBe(1)
      expect(metrics.exports).toBe(3)
    }).pipe(
      Effect.provide(RallyCache.layerTest({ sources: { [match]: { duration: 60 } }, exportTime: "3 seconds" }))
    ))
})
