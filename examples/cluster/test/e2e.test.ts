import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Cluster, validClip } from "./support.js"

describe("one runner, one front, one Postgres (as root it runs as the postgres user)", () => {
  let cluster: Cluster
  beforeAll(async () => {
    // The runners and the front read the same settings: the front reports the runners' preload window.
    cluster = await Cluster.start({ env: { RALLYCACHE_PRELOAD_AHEAD: "1" } })
  })
  afterAll(async () => {
    await cluster?.stop()
  })

  it("serves a clip exported on the runner", async () => {
    const [video] = await cluster.videos(1)
    const runner = await cluster.startRunner()
    await cluster.startFront()
    await cluster.open(video!)
    const clip = await cluster.request("GET", `/api/videos/${video!.id}/rallies/1/clip`)
    expect(clip.status, clip.body.toString()).toBe(200)
    expect(clip.body.length).toBeGreaterThan(1000)
    const ready = await runner.waitFor((l) => l.annotations["event"] === "ClipReady", "ClipReady")
    expect(ready.annotations["videoId"]).toBe(video!.id)
    expect(validClip(String(ready.annotations["path"]))).toBe(true)
    const status = await cluster.request("GET", `/api/videos/${video!.id}/status`)
    expect(status.status, status.body.toString()).toBe(200)
    expect((JSON.parse(status.body.toString()) as { preloadAhead: number }).preloadAhead).toBe(1)
  })
})
