/**
 * Three runner processes (each with its own cache folder, clips committed to
 * a throwaway S3 server) and the front (which fetches clips from the bucket
 * into a folder of its own) on loopback, one Postgres, generated videos: traffic through the front, a
 * request waiting for a clip while its runner is SIGKILLed (five times), a
 * runner added under traffic, and SIGTERM of the whole cluster. The steps
 * share one cluster and run in order.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { Cluster, pidAlive, type Proc, until, validClip } from "./support.js"

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
      // Each scan reads all of /proc; the S3 server runs in this process and needs the CPU too.
    }, 100)
  }
  stop() {
    clearInterval(this.timer)
  }
}

/** The ffmpeg processes of `runner` writing the clip of `key`. */
const exportsOf = (runner: Proc, key: string) =>
  runner.descendants().filter((pid) => {
    try {
      return Fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(`${key}.`)
    } catch {
      return false
    }
  })

/**
 * Each export a runner ran, from its events: from `JobStarted` to the
 * clip's `ClipReady`, `JobFailed` or `JobCancelled`, or to the runner's death.
 */
const exportSpans = (runner: Proc, diedAt: number | undefined) => {
  const spans: Array<{ runner: string; key: string; from: number; to: number }> = []
  const open = new Map<string, number>()
  for (const line of runner.lines) {
    const key = line.annotations["key"]
    if (line.message !== "export" || typeof key !== "string") continue
    if (line.annotations["event"] === "JobStarted") open.set(key, line.at)
    else if (open.has(key)) {
      spans.push({ runner: runner.name, key, from: open.get(key)!, to: line.at })
      open.delete(key)
    }
  }
  for (const [key, from] of open) spans.push({ runner: runner.name, key, from, to: diedAt ?? Date.now() })
  return spans
}

const entityOwners = (runners: ReadonlyArray<Proc>, videoId: string) =>
  runners.filter((runner) =>
    runner.lines.some((line) => line.message === "video entity started" && line.annotations["videoId"] === videoId)
  )

describe("cluster of runner processes, clips in S3 (real Postgres, as root run as the postgres user; s3rver)", () => {
  let cluster: Cluster
  let videos: Array<Video>
  let watch: ExportWatch
  let failoverVideo: Promise<Video>
  /** Runners killed, and when. */
  const dead = new Map<Proc, number>()

  beforeAll(async () => {
    cluster = await Cluster.start({
      s3: true,
      env: {
        RALLYCACHE_CLUSTER_FAILOVER: `${failoverSeconds} seconds`,
        // A dead runner's lease on a key lapses as fast as its shards move.
        RALLYCACHE_S3_LEASE_DURATION: `${failoverSeconds} seconds`,
        // The front's own bound on a clip request; the cluster's retryFor (60 s) is the one under test.
        RALLYCACHE_CLIP_TIMEOUT: "90 seconds"
      }
    })
    videos = await cluster.videos(6)
    // 640x360, so an accurate cut of a few seconds runs long enough to be killed mid-way.
    failoverVideo = cluster.videos(1, 16, { width: 640, height: 360 }).then(([video]) => video!)
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
    for (const file of cluster.cacheFiles("clips")) expect(validClip(file), file).toBe(true)
  })

  it("a request waiting for a clip survives its runner's SIGKILL, 5 times in a row", async () => {
    const source = await failoverVideo
    const failovers: Array<number> = []
    for (let run = 0; run < 5; run++) {
      // A rally never cut before, so the request waits for an export.
      const video = { ...source!, id: `failover-${run}`, rallies: [{ start: 1 + run * 0.25, end: 7 + run * 0.25 }] }
      await cluster.open(video, "accurate")
      const owner = entityOwners(cluster.runners, video.id)[0]!
      const from = owner.lines.length
      const pending = cluster.request("GET", `/api/videos/${video.id}/rallies/0/clip`)
      const started = await owner.waitFor(
        (line) => line.annotations["event"] === "JobStarted" && line.annotations["videoId"] === video.id,
        `the export of ${video.id}`
      )
      expect(owner.lines.indexOf(started)).toBeGreaterThanOrEqual(from)
      const key = String(started.annotations["key"])
      // The owner is running ffmpeg for this very key when it dies.
      await until(() => exportsOf(owner, key).length > 0, `an ffmpeg of ${owner.name} for ${key}`, 10_000)
      const orphans = owner.descendants()
      const killedAt = Date.now()
      owner.child.kill("SIGKILL")
      await owner.exited
      dead.set(owner, killedAt)
      cluster.runners.splice(cluster.runners.indexOf(owner), 1)
      // Three runners again for the next run; the newcomer may take the waiting video's shard, which changes nothing.
      const replacement = cluster.startRunner()

      const clip = await pending
      const answeredAt = Date.now()
      expect(clip.status, `${video.id}: ${clip.body.toString()}`).toBe(200)
      const file = Path.join(cluster.dir, `failover-${run}.mp4`)
      Fs.writeFileSync(file, clip.body)
      expect(validClip(file), file).toBe(true)
      // Cut again by a survivor, after the kill.
      const survivors = cluster.runners.filter((runner) =>
        runner.lines.some((line) =>
          line.annotations["event"] === "ClipReady" && line.annotations["key"] === key && line.at >= killedAt
        )
      )
      expect(survivors.length, `${key} exported by a survivor`).toBe(1)
      // The kernel ends the dead runner's ffmpeg with it (pdeathsig).
      await until(() => orphans.every((pid) => !pidAlive(pid)), "the victim's ffmpeg to end", 10_000)
      failovers.push(answeredAt - killedAt)
      await replacement
    }
    console.log(`failover of a waiting request, SIGKILL to answer: ${failovers.map((ms) => `${ms} ms`).join(", ")}`)
    expect(watch.doubles).toEqual([])
    // Each run is a lock expiry, a lease expiry and a cut; a loaded 2-core machine needs the slack.
  }, 600_000)

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
    // A SIGKILLed runner's folder may hold a .part (its next start on the folder removes it); a stopped one's not.
    expect(cluster.cacheFiles("tmp", procs).filter((file) => file.endsWith(".part"))).toEqual([])
    for (const file of cluster.cacheFiles("clips")) expect(validClip(file), file).toBe(true)
    expect(watch.doubles).toEqual([])

    // One export per key: no key cut by two runners at once, over the whole run and its kills.
    const spans = [...cluster.runners, ...dead.keys()].flatMap((runner) => exportSpans(runner, dead.get(runner)))
    const overlaps = spans.flatMap((a) =>
      spans.filter((b) => a.runner < b.runner && a.key === b.key && a.from < b.to && b.from < a.to).map((b) => `${a.key}: ${a.runner} and ${b.runner}`)
    )
    expect(spans.length).toBeGreaterThan(10)
    expect(overlaps).toEqual([])
    // The clips were committed to the index, each with its object's ETag.
    const rows = cluster.sql("SELECT key || ' ' || etag FROM rallycache_clips")
    expect(rows.length).toBeGreaterThan(10)
    for (const row of rows) expect(row.split(" ")[1], row).toMatch(/\S/)
  })
})
