/**
 * Scenario: the cost of the cluster. Runner processes of `examples/cluster`
 * over one throwaway Postgres, and a client-only node (`ClusterRallyCache`)
 * in this process as the front:
 *
 * - a cached clip through the front (one `GetClip` message to the runner)
 *   against the same `getClip` on an engine in this process;
 * - copy exports per second with 1 and with 3 runners against one engine in
 *   this process. On 2 cores no speed-up is expected: the point is the
 *   overhead.
 */
import { ClusterRunner } from "@rallycache/cluster"
import { RallyCache } from "@rallycache/core"
import { NodeRallyCache } from "@rallycache/node"
import { Context, Effect, Layer } from "effect"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { Cluster } from "../../../examples/cluster/test/support.js"
import { bundleExample } from "../../support/bundle.js"
import type { BenchContext, Scenario } from "../lib/context.js"
import { figure } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import type { Fixture } from "../lib/fixture.js"
import { log } from "../lib/log.js"
import { median, nowMs, quantile } from "../lib/stats.js"

interface Workload {
  readonly videos: ReadonlyArray<{ readonly id: string; readonly rallies: ReadonlyArray<{ start: number; end: number }> }>
  readonly exports: number
}

/** `videoCount` ids over the fixture, each with its rallies shifted so that every clip is a new key. */
const workload = (fixture: Fixture, tag: string, videoCount: number, ralliesPerVideo: number): Workload => {
  const rallies = fixture.rallies.slice(0, ralliesPerVideo)
  const videos = Array.from({ length: videoCount }, (_, v) => ({
    id: `${tag}-${v}`,
    rallies: rallies.map(({ end, start }) => ({ start: start + v * 0.04, end: end + v * 0.04 }))
  }))
  return { videos, exports: videoCount * rallies.length }
}

/** Open every video, then ask for every clip at once: exports per second. */
const exportRate = (cache: RallyCache.RallyCacheShape, fixture: Fixture, load: Workload) =>
  Effect.gen(function*() {
    for (const video of load.videos) {
      yield* cache.openVideo({ path: fixture.path, rallies: video.rallies, id: video.id, mode: "copy" })
    }
    const started = nowMs()
    yield* Effect.forEach(
      load.videos.flatMap((video) => video.rallies.map((_, index) => ({ id: video.id, index }))),
      ({ id, index }) => cache.getClip(id, index),
      { concurrency: "unbounded", discard: true }
    )
    return load.exports / ((nowMs() - started) / 1000)
  })

/** Latency of a cached clip, in microseconds. */
const hitLatency = (cache: RallyCache.RallyCacheShape, videoId: string, samples: number) =>
  Effect.gen(function*() {
    yield* cache.getClip(videoId, 0)
    const out: Array<number> = []
    for (let i = 0; i < samples; i++) {
      const started = nowMs()
      const clip = yield* cache.getClip(videoId, 0)
      out.push((nowMs() - started) * 1000)
      if (!clip.cached) return yield* Effect.dieMessage("the clip was not cached")
    }
    return out
  })

const local = (context: BenchContext, fixture: Fixture, load: Workload, samples: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const services = yield* Layer.build(NodeRallyCache.layer({ cacheDir: join(context.tmpRoot, "cluster-local") }))
    const cache = Context.get(services, RallyCache.RallyCache)
    const rate = yield* exportRate(cache, fixture, load)
    const hits = yield* hitLatency(cache, load.videos[0]!.id, samples)
    return { rate, hits }
  })))

const clustered = async (fixture: Fixture, runners: number, load: Workload, samples: number) => {
  const cluster = await Cluster.start()
  try {
    await Promise.all(Array.from({ length: runners }, () => cluster.startRunner()))
    return await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const front = yield* Layer.build(ClusterRunner.layerClient({ databaseUrl: cluster.databaseUrl }))
      const cache = Context.get(front, RallyCache.RallyCache)
      const rate = yield* exportRate(cache, fixture, load)
      const hits = samples > 0 ? yield* hitLatency(cache, load.videos[0]!.id, samples) : []
      return { rate, hits }
    })))
  } finally {
    await cluster.stop()
  }
}

export const clusterScenario: Scenario = {
  name: "cluster",
  title: "Cluster: cached clip through a client-only front, exports/s with 1 and 3 runners (vs one process)",
  expected: [
    { key: "cluster.cachedClipP50Us", unit: "µs" },
    { key: "cluster.cachedClipP99Us", unit: "µs" },
    { key: "cluster.localCachedClipP50Us", unit: "µs" },
    { key: "cluster.localCachedClipP99Us", unit: "µs" },
    { key: "cluster.exportsPerSec1Runner", unit: "/s" },
    { key: "cluster.exportsPerSec3Runners", unit: "/s" },
    { key: "cluster.localExportsPerSec", unit: "/s" }
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const fixture = await context.fixture()
    const videos = context.quick ? 4 : 6
    const perVideo = context.quick ? 5 : 10
    const samples = context.quick ? 200 : 1000
    const base = await local(context, fixture, workload(fixture, "local", videos, perVideo), samples)
    log(`cluster: one process ${base.rate.toFixed(1)} exports/s, hit p50 ${median(base.hits).toFixed(0)} µs`)
    // The runners start from the example's bundle, as in its tests.
    await bundleExample(fileURLToPath(new URL("../../../examples/cluster", import.meta.url)), ["runner"])
    const one = await clustered(fixture, 1, workload(fixture, "one", videos, perVideo), samples)
    log(`cluster: 1 runner ${one.rate.toFixed(1)} exports/s, hit p50 ${median(one.hits).toFixed(0)} µs`)
    const three = await clustered(fixture, 3, workload(fixture, "three", videos, perVideo), 0)
    log(`cluster: 3 runners ${three.rate.toFixed(1)} exports/s`)
    const note = `${videos * perVideo} copy exports, ${videos} videos; cached clip: ${samples} sequential getClip`
    const localP50 = median(base.hits)
    const localP99 = quantile(base.hits, 0.99)
    return [
      figure({ key: "cluster.cachedClipP50Us", value: median(one.hits), unit: "µs", baseline: localP50, baselineLabel: "one process", ratio: median(one.hits) / localP50, note }),
      figure({ key: "cluster.cachedClipP99Us", value: quantile(one.hits, 0.99), unit: "µs", baseline: localP99, baselineLabel: "one process", ratio: quantile(one.hits, 0.99) / localP99 }),
      figure({ key: "cluster.localCachedClipP50Us", value: localP50, unit: "µs" }),
      figure({ key: "cluster.localCachedClipP99Us", value: localP99, unit: "µs" }),
      figure({ key: "cluster.exportsPerSec1Runner", value: one.rate, unit: "/s", baseline: base.rate, baselineLabel: "one process", ratio: one.rate / base.rate }),
      figure({ key: "cluster.exportsPerSec3Runners", value: three.rate, unit: "/s", baseline: base.rate, baselineLabel: "one process", ratio: three.rate / base.rate, note: "2 cores: no speed-up expected" }),
      figure({ key: "cluster.localExportsPerSec", value: base.rate, unit: "/s" })
    ]
  }
}
