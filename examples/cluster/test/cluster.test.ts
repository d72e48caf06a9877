/**
 * Three runner processes and the front on loopback, one Postgres, six
 * generated videos: traffic through the front, a runner killed with exports
 * running, a runner added under traffic, and SIGTERM of the whole cluster.
 * The steps share one cluster and run in order.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Cluster, filesUnder, pidAlive, type Proc, until, validClip } from "./support.js"

const failoverSeconds = 4

type Video = Awaited<ReturnType<Cluster["videos"]>>[number]

/** Watches the runners' ffmpeg processes and records any key two of them write at once. */
class ExportWatch {
  readonly doubles: Array<string> = []
  private timer: NodeJS.Timeout | undefined
  constructor(private readonly cluster: Cluster) {}
  start() {
    this.timer = setInterval(() => {
      const writers = new Map<string, number>()
      for (const pid of this.cluster.ffmpegs()) {
        let cmdline = ""
        try {
          cmdline = Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8")
        } catch {
          continue
        }
        const match = /([0-9a-f]{32})\.[0-9a-f-]{36}\.part/.exec(cmdline)
        if (match === null) continue
        const key = match[1]!
        writers.set(key, (writers.get(key) ?? 0) + 1)
      }
      for (const [key, count] of writers) if (count > 1) this.doubles.push(key)
    }, 20)
  }
  stop() {
    clearInterval(this.timer)
  }
}

const entityOwners = (runners: ReadonlyArray<Proc>, videoId: string) =>
  runners.filter((runner) =>
    runner.lines.some((line) => line.message === "video entity started" && line.annotations["videoId"] === videoId)
  )

describe("cluster of runner processes", () => {
  let cluster: Cluster
  let videos: Array<Video>
  let watch: ExportWatch

  beforeAll(async () => {
    cluster = await Cluster.start({ env: { RALLYCACHE_CLUSTER_FAILOVER: `${failoverSeconds} seconds` } })
    videos = await cluster.videos(6)
    await Promise.all([cluster.startRunner(), cluster.startRunner(), cluster.startRunner()])
    await cluster.startFront()
    watch = new ExportWatch(cluster)
    watch.start()
  })
  afterAll(async () => {
    watch?.stop()
    await cluster?.stop()
  })

  /** A viewer on one video: navigate to each rally and fetch its clip. */
  const view = async (video: Video, indexes: ReadonlyArray<number>) => {
    for (const index of indexes) {
      const nav = await cluster.request("POST", `/api/videos/${video.id}/navigate`, { index })
      expect(nav.status, `${video.id} navigate ${index}: ${nav.body.toString()}`).toBe(200)
      const clip = await cluster.request("GET", `/api/videos/${video.id}/rallies/${index}/clip`)
      expect(clip.status, `${video.id} clip ${index}: ${clip.body.toString()}`).toBe(200)
      expect(clip.headers.get("content-type")).toContain("video/mp4")
      expect(clip.body.length).toBeGreaterThan(1000)
    }
  }

  it("serves every clip through the front, each video's exports on the runner that owns it", async () => {
    for (const video of videos) await cluster.open(video)
    await Promise.all(videos.map((video) => view(video, [0, 1, 2])))
    await Promise.all(videos.map((video) => view(video, [2, 0])))

    for (const video of videos) {
      const owners = entityOwners(cluster.runners, video.id)
      expect(owners.length, `${video.id} hosted by exactly one runner`).toBe(1)
      const exporters = cluster.runners.filter((runner) =>
        runner.lines.some((line) => line.annotations["event"] === "JobStarted" && line.annotations["videoId"] === video.id)
      )
      expect(exporters.map((r) => r.name)).toEqual(owners.map((r) => r.name))
    }
    for (const file of filesUnder(Path.join(cluster.cacheDir, "clips"))) expect(validClip(file), file).toBe(true)
  })

  it("a killed runner's videos move to the others and every later request is served", async () => {
    // Long accurate exports, so the victim has ffmpeg running when it dies.
    const busy = videos.map((video) => ({ ...video, id: `${video.id}-accurate` }))
    for (const video of busy) await cluster.open(video, "accurate")
    const victim = entityOwners(cluster.runners, busy[0]!.id)[0]!
    const victimVideos = busy.filter((video) => entityOwners([victim], video.id).length === 1)
    const pending = busy.map((video) => cluster.request("POST", `/api/videos/${video.id}/navigate`, { index: 0 }))
    await Promise.all(pending)
    await victim.waitFor((line) => line.annotations["event"] === "JobStarted", "an export on the victim")
    await until(() => victim.descendants().length > 0, "an ffmpeg of the victim")
    const orphans = victim.descendants()
    const killedAt = Date.now()
    victim.child.kill("SIGKILL")
    await victim.exited

    // The kernel ends the victim's ffmpeg with it (pdeathsig).
    await until(() => orphans.every((pid) => !pidAlive(pid)), "the victim's ffmpeg to end", 10_000)

    const survivors = cluster.runners.filter((runner) => runner !== victim)
    await Promise.all(busy.map((video) => view(video, [0, 1])))
    // Each of the victim's videos restarted on a survivor: when, after the kill.
    const takeovers = victimVideos.map((video) => {
      const started = survivors.flatMap((runner) =>
        runner.lines.filter((line) =>
          line.message === "video entity started" && line.annotations["videoId"] === video.id && line.at >= killedAt
        )
      )
      expect(started.length, `${video.id} taken over`).toBeGreaterThan(0)
      return Math.min(...started.map((line) => line.at)) - killedAt
    })
    console.log(`takeover after SIGKILL: ${takeovers.map((ms) => `${ms} ms`).join(", ")} (failover ${failoverSeconds} s)`)
    // The lock expiry, then at most a few assignment refreshes (a quarter of
    // it each) and the front's next retry; slack for a loaded 2-core machine.
    for (const ms of takeovers) expect(ms).toBeLessThan(failoverSeconds * 1000 * 2 + 5_000)
    expect(watch.doubles).toEqual([])
    for (const file of filesUnder(Path.join(cluster.cacheDir, "clips"))) expect(validClip(file), file).toBe(true)
    cluster.runners.splice(cluster.runners.indexOf(victim), 1)
  })

  it("a runner added under traffic takes shards over and nothing is lost", async () => {
    let stop = false
    const failures: Array<string> = []
    let served = 0
    const traffic = (async () => {
      for (let round = 0; !stop; round++) {
        await Promise.all(videos.map(async (video) => {
          const index = round % video.rallies.length
          const clip = await cluster.request("GET", `/api/videos/${video.id}/rallies/${index}/clip`)
          if (clip.status === 200 && clip.body.length > 1000) served++
          else failures.push(`${video.id} ${index}: ${clip.status} ${clip.body.toString()}`)
        }))
      }
    })()
    const newcomer = await cluster.startRunner()
    // More videos until one lands on a shard of the newcomer.
    for (let k = 0; entityOwners([newcomer], `extra-${k - 1}`).length === 0 && k < 60; k++) {
      await cluster.open({ ...videos[0]!, id: `extra-${k}` })
    }
    const taken = newcomer.lines.filter((line) => line.message === "video entity started")
    expect(taken.length).toBeGreaterThan(0)
    const extra = String(taken[0]!.annotations["videoId"])
    const clip = await cluster.request("GET", `/api/videos/${extra}/rallies/0/clip`)
    expect(clip.status).toBe(200)
    stop = true
    await traffic
    expect(failures).toEqual([])
    expect(served).toBeGreaterThan(0)
    expect(watch.doubles).toEqual([])
  })

  it("SIGTERM of the whole cluster ends every ffmpeg and leaves no partial file", async () => {
    // Rallies not cut before (a clip's key is the source, the rally and the mode, not the id).
    const busy = videos.map((video) => ({
      ...video,
      id: `${video.id}-last`,
      rallies: video.rallies.map(({ end, start }) => ({ start: start + 0.5, end: end + 0.5 }))
    }))
    for (const video of busy) await cluster.open(video, "accurate")
    await Promise.all(busy.map((video) => cluster.request("POST", `/api/videos/${video.id}/navigate`, { index: 1 })))
    await until(() => cluster.ffmpegs().length > 0, "an export running")
    const running = cluster.ffmpegs()
    const procs = [cluster.front!, ...cluster.runners]
    for (const proc of procs) proc.child.kill("SIGTERM")
    const codes = await Promise.all(procs.map((proc) => proc.exited))
    expect(codes.every((code) => code === 0 || code === null), `exit codes ${codes}`).toBe(true)
    expect(running.filter(pidAlive)).toEqual([])
    expect(filesUnder(Path.join(cluster.cacheDir, "tmp")).filter((file) => file.endsWith(".part"))).toEqual([])
    for (const file of filesUnder(Path.join(cluster.cacheDir, "clips"))) expect(validClip(file), file).toBe(true)
    expect(watch.doubles).toEqual([])
  })
})
