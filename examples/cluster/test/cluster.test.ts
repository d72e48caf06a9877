/**
 * Three runner processes (each with its own cache folder, clips committed to
 * a throwaway S3 server) and the front (which fetches clips from the bucket
 * into a folder of its own) on loopback, one Postgres, generated videos: traffic through the front, a
 * request waiting for a clip while its runner is SIGKILLed (five times), a
 * runner added under traffic, and SIGTERM of the whole cluster. The steps
 * share one cluster and run in order; the last one judges the whole run from
 * the bucket, the index and the lease rows sampled along the way.
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { getObject, listObjects, putObject, sweepOnce } from "../../../test/support/bucket.js"
import { Cluster, type LeaseWatch, pidAlive, type Proc, until, validClip } from "./support.js"

const failoverSeconds = 4
/** Where the runners' store puts clips (its default prefix). */
const clipsPrefix = "rallycache/clips/"

const md5 = (bytes: Buffer) => Crypto.createHash("md5").update(bytes).digest("hex")

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
  let leaseWatch: LeaseWatch
  /** What a runner that died between its upload and its row leaves: an object no row points at. */
  const planted = `${clipsPrefix}${Crypto.randomBytes(16).toString("hex")}.${Crypto.randomUUID()}.mp4`
  /** The MD5 of every clip body the front served. */
  const served = new Set<string>()
  /** The key of each failover run and the runner killed while exporting it. */
  const failoverKeys: Array<{ key: string; victim: string }> = []
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
    await putObject(cluster.s3!, planted, Crypto.randomBytes(20_000))
    watch = new ExportWatch(cluster)
    watch.start()
    // After the runners are ready: their store has made the lease table.
    leaseWatch = cluster.watchLeases()
  })
  afterAll(async () => {
    watch?.stop()
    await leaseWatch?.stop()
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
      served.add(md5(clip.body))
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
      served.add(md5(clip.body))
      failoverKeys.push({ key, victim: owner.name })
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
    let servedCount = 0
    const traffic = (async () => {
      for (let round = 0; !stop; round++) {
        await Promise.all(videos.map(async (video) => {
          const index = round % video.rallies.length
          const clip = await cluster.request("GET", `/api/videos/${video.id}/rallies/${index}/clip`)
          if (clip.status === 200 && clip.body.length > 1000) {
            servedCount++
            served.add(md5(clip.body))
          } else failures.push(`${video.id} ${index}: ${clip.status} ${clip.body.toString()}`)
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
    expect(servedCount).toBeGreaterThan(0)
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

    // One export per key, from the lease rows sampled through the run. A job
    // starts (`JobStarted`) before it asks for the key's lease, and may wait
    // there while another runner holds it; so the exports judged are the
    // spans seen under their own runner's lease, from the moment it was taken.
    const leases = await leaseWatch.stop()
    const judged = spans.flatMap((span) => {
      const own = leases.filter((lease) =>
        lease.key === span.key && lease.runner === span.runner && lease.seen.some((at) => span.from <= at && at <= span.to)
      )
      return own.length === 0 ? [] : [{ ...span, from: Math.max(span.from, Math.min(...own.map((lease) => lease.acquired))) }]
    })
    expect(judged.length).toBeGreaterThan(0)
    // While a row names a runner as the key's holder, no other runner is exporting it.
    const conflicts = leases.flatMap((lease) =>
      lease.seen.flatMap((at) =>
        judged.filter((span) => span.key === lease.key && span.runner !== lease.runner && span.from < at && at < span.to)
          .map((span) => `${lease.key}: leased by ${lease.runner} at ${at} while ${span.runner} exported it`)
      )
    )
    expect(conflicts).toEqual([])
    // A key changes hands only after the last moment its previous holder was seen holding it.
    const handovers = leases.flatMap((lease) =>
      leases.filter((next) =>
        next.key === lease.key && next.owner !== lease.owner && next.acquired >= lease.acquired &&
        next.acquired < Math.max(...lease.seen)
      ).map((next) => `${lease.key}: ${next.runner} took it while ${lease.runner} held it`)
    )
    expect(handovers).toEqual([])
    // Each failover key: the victim's lease, then a survivor's, taken after the victim was last seen holding it.
    for (const { key, victim } of failoverKeys) {
      const held = leases.filter((lease) => lease.key === key)
      const lost = held.filter((lease) => lease.runner === victim)
      const taken = held.filter((lease) => lease.runner !== victim)
      expect(lost.length, `${key}: the lease of ${victim} seen`).toBeGreaterThan(0)
      expect(taken.length, `${key}: a survivor's lease seen`).toBeGreaterThan(0)
      const lastHeld = Math.max(...lost.flatMap((lease) => lease.seen))
      for (const lease of taken) expect(lease.acquired, `${key} taken by ${lease.runner}`).toBeGreaterThanOrEqual(lastHeld)
    }
    expect(failoverKeys).toHaveLength(5)

    // Nothing lost, nothing half-written: every committed clip's object is
    // in the bucket, its ETag and size those of its row, and it decodes.
    const s3 = cluster.s3!
    const rows = cluster.sql(
      "SELECT key || '|' || object_key || '|' || etag || '|' || etag_kind || '|' || bytes FROM rallycache_clips"
    ).map((line) => {
      const [key, objectKey, etag, etagKind, bytes] = line.split("|")
      return { key: key!, objectKey: objectKey!, etag: etag!, etagKind: etagKind!, bytes: Number(bytes) }
    })
    expect(rows.length).toBeGreaterThan(10)
    const listed = new Map((await listObjects(s3, clipsPrefix)).map((object) => [object.key, object]))
    const committed = new Set<string>()
    for (const row of rows) {
      expect(row.objectKey.startsWith(`${clipsPrefix}${row.key}.`), row.objectKey).toBe(true)
      expect(listed.get(row.objectKey)?.bytes, `${row.key}: listed size`).toBe(row.bytes)
      const object = await getObject(s3, row.objectKey)
      expect(object.etag, `${row.key}: ETag`).toBe(row.etag)
      expect(object.body.length, `${row.key}: size`).toBe(row.bytes)
      // Clips are smaller than a part: sent in one request, their ETag is the MD5 of their bytes.
      expect(row.etagKind, row.key).toBe("md5")
      expect(md5(object.body), `${row.key}: MD5 of the bytes`).toBe(row.etag)
      const file = Path.join(cluster.dir, `object-${row.key}.mp4`)
      Fs.writeFileSync(file, object.body)
      expect(validClip(file), `${row.objectKey} decodes`).toBe(true)
      committed.add(md5(object.body))
    }
    // Every body the front served is a committed object's.
    expect(served.size).toBeGreaterThan(10)
    expect([...served].filter((digest) => !committed.has(digest))).toEqual([])

    // The sweep deletes every object no row points at (the planted one at least), and nothing else.
    const referenced = new Set(rows.map((row) => row.objectKey))
    const orphans = [...listed.keys()].filter((key) => !referenced.has(key)).sort()
    expect(orphans).toContain(planted)
    const report = await sweepOnce(s3, cluster.databaseUrl)
    expect([...report.orphansDeleted].sort()).toEqual(orphans)
    const left = (await listObjects(s3, clipsPrefix)).map((object) => object.key).sort()
    expect(left).toEqual([...referenced].sort())
    console.log(
      `bucket: ${listed.size} objects, ${rows.length} rows, ${orphans.length} orphan(s) swept, ${served.size} distinct clips served; ` +
        `leases: ${leases.length} sampled, ${judged.length} of ${spans.length} exports judged, ${failoverKeys.length} failover handovers`
    )
  })
})
