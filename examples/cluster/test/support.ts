/**
 * Real processes for the cluster tests: one Postgres (the shared harness),
 * runner processes and the front, each started from its bundle (made once
 * for the run by `test/support/bundle.ts`), their JSON log
 * lines collected so that a test waits for events instead of sleeping.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { exampleBundle } from "../../../test/support/bundle.js"
import { binDir, freePort, startServer } from "../../../test/support/postgres.js"
import { type S3Server, startS3 } from "../../../test/support/s3.js"

const exampleRoot = Path.resolve(import.meta.dirname, "..")
// `node <bundle>`: one process (a SIGKILL must reach the runner itself) that
// loads one file instead of compiling the sources.
const node = (entry: "runner" | "front") => [process.execPath, [exampleBundle(exampleRoot, entry)]] as const

export interface LogLine {
  readonly message: string
  readonly annotations: Record<string, unknown>
  /** Epoch milliseconds, from the logger. */
  readonly at: number
}

/** A started process and the log lines it has printed so far. */
export class Proc {
  readonly lines: Array<LogLine> = []
  stderr = ""
  /** A runner's own cache folder. */
  cacheDir: string | undefined
  private waiters: Array<() => void> = []
  readonly exited: Promise<number | null>

  constructor(readonly name: string, readonly child: ChildProcess) {
    let buffer = ""
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      buffer += chunk
      const parts = buffer.split("\n")
      buffer = parts.pop()!
      for (const part of parts) {
        try {
          const json = JSON.parse(part) as { message: unknown; annotations?: Record<string, unknown>; timestamp?: string }
          const message = Array.isArray(json.message) ? json.message.join(" ") : String(json.message)
          const at = json.timestamp === undefined ? Date.now() : Date.parse(json.timestamp)
          this.lines.push({ message, annotations: json.annotations ?? {}, at })
        } catch {
          this.lines.push({ message: part, annotations: {}, at: Date.now() })
        }
      }
      this.notify()
    })
    child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
      this.stderr += chunk
    })
    this.exited = new Promise((resolve) => child.once("exit", (code) => {
      resolve(code)
      this.notify()
    }))
  }

  get pid(): number {
    return this.child.pid!
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  private notify() {
    const waiters = this.waiters
    this.waiters = []
    for (const wake of waiters) wake()
  }

  /** Resolves with the first log line matching, failing after `timeoutMs`. */
  waitFor(predicate: (line: LogLine) => boolean, what: string, timeoutMs = 120_000): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${this.name}: no "${what}" within ${timeoutMs} ms\n${this.stderr.slice(-2000)}`)),
        timeoutMs
      )
      const check = () => {
        const found = this.lines.find(predicate)
        if (found !== undefined) {
          clearTimeout(timer)
          resolve(found)
        } else if (!this.alive) {
          clearTimeout(timer)
          reject(new Error(`${this.name} exited before "${what}"\n${this.stderr.slice(-2000)}`))
        } else {
          this.waiters.push(check)
        }
      }
      check()
    })
  }

  /** The pids of this process's descendants (ffmpeg, ffprobe). */
  descendants(): Array<number> {
    return descendantsIn(childrenByParent(), this.pid)
  }
}

/** Each process's children, from one scan of /proc. */
const childrenByParent = (): Map<number, Array<number>> => {
  const children = new Map<number, Array<number>>()
  for (const entry of Fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = Fs.readFileSync(`/proc/${entry}/stat`, "utf8")
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
      const list = children.get(ppid) ?? []
      list.push(Number(entry))
      children.set(ppid, list)
    } catch {
      // gone meanwhile
    }
  }
  return children
}

const descendantsIn = (children: ReadonlyMap<number, ReadonlyArray<number>>, pid: number): Array<number> => {
  const out: Array<number> = []
  const walk = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      out.push(child)
      walk(child)
    }
  }
  walk(pid)
  return out
}

export const pidAlive = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z"
  } catch {
    return false
  }
}

/** Polls `check` each 50 ms until it holds (for state with no event to wait on: process exits). */
export const until = async (check: () => boolean, what: string, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

export interface ClusterOptions {
  /** Passed to every runner. */
  readonly runnerArgs?: ReadonlyArray<string>
  /** Added to every process's environment. */
  readonly env?: Record<string, string>
  /** Clips in a throwaway S3 server (s3rver) instead of each runner's folder. */
  readonly s3?: boolean
}

/** One Postgres and the processes started on it; each runner has a cache folder of its own. */
export class Cluster {
  readonly runners: Array<Proc> = []
  front: Proc | undefined
  frontUrl = ""

  private constructor(
    readonly dir: string,
    readonly cacheDir: string,
    readonly mediaDir: string,
    readonly databaseUrl: string,
    private readonly stopServers: () => Promise<void>,
    readonly options: ClusterOptions,
    /** The S3 server, when there is one. */
    readonly s3: S3Server | undefined
  ) {}

  /** The `RALLYCACHE_S3_*` variables of the S3 server, when there is one. */
  get s3Env(): Record<string, string> {
    return this.s3?.env ?? {}
  }

  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const [pg, s3] = await Promise.all([startServer(), options.s3 === true ? startS3() : undefined])
    const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "rallycache-cluster-"))
    const cacheDir = Path.join(dir, "runners")
    const mediaDir = Path.join(dir, "media")
    Fs.mkdirSync(mediaDir, { recursive: true })
    const stop = async () => {
      try {
        await s3?.stop()
      } finally {
        pg.stop()
      }
    }
    return new Cluster(dir, cacheDir, mediaDir, pg.url, stop, options, s3)
  }

  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.options.env,
      ...this.s3Env,
      DATABASE_URL: this.databaseUrl
    }
    // ShardingConfig reads HOST/PORT-style variables from the environment.
    delete env["PORT"]
    delete env["HOST"]
    return env
  }

  /** The cache folder of the runner listening on `port` (no runner shares it). */
  runnerDir(port: number): string {
    return Path.join(this.cacheDir, String(port))
  }

  /** Every file under the cache folders of `runners` (default: all, dead ones too) whose path has `segment`. */
  cacheFiles(segment: "clips" | "tmp", runners?: ReadonlyArray<Proc>): Array<string> {
    const dirs = runners === undefined ? [this.cacheDir] : runners.flatMap((runner) => runner.cacheDir ?? [])
    return dirs.flatMap(filesUnder).filter((file) => file.split(Path.sep).includes(segment))
  }

  async startRunner(extra: ReadonlyArray<string> = []): Promise<Proc> {
    const port = await freePort()
    const [command, args] = node("runner")
    const child = spawn(
      command,
      [...args, "--port", String(port), "--cache-dir", this.runnerDir(port), ...(this.options.runnerArgs ?? []), ...extra],
      // The runner id names the store's lease owner (`runner-<port>/<uuid>`), so a lease row tells which runner holds it.
      { cwd: exampleRoot, env: { ...this.env(), RALLYCACHE_RUNNER_ID: `runner-${port}` }, stdio: ["ignore", "pipe", "pipe"] }
    )
    const proc = new Proc(`runner ${port}`, child)
    proc.cacheDir = this.runnerDir(port)
    this.runners.push(proc)
    await proc.waitFor((line) => line.message === "runner ready", "runner ready")
    return proc
  }

  async startFront(): Promise<Proc> {
    const [command, args] = node("front")
    const child = spawn(
      command,
      [...args, "--port", "0", "--media-root", this.mediaDir, "--cache-dir", Path.join(this.dir, "front")],
      { cwd: exampleRoot, env: this.env(), stdio: ["ignore", "pipe", "pipe"] }
    )
    const proc = new Proc("front", child)
    this.front = proc
    const line = await proc.waitFor((line) => line.message === "front listening", "front listening")
    this.frontUrl = String(line.annotations["url"])
    return proc
  }

  /** Generated sample videos in the media folder, each a different length so each has its own clips. */
  async videos(
    count: number,
    base = 20,
    size: { readonly width: number; readonly height: number } = { width: 320, height: 240 }
  ): Promise<Array<{ id: string; path: string; rallies: Array<{ start: number; end: number }> }>> {
    const layer = FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))
    const dir = this.mediaDir
    return Effect.runPromise(
      Effect.forEach(Array.from({ length: count }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const duration = base + i
          const path = yield* SampleVideo.cached({ duration, dir, clock: false, ...size })
          const rallies = SampleVideo.sampleRallies(duration, 4, i + 1).map(({ end, start }) => ({ start, end }))
          return { id: `video-${i}`, path, rallies }
        }), { concurrency: 2 }).pipe(Effect.provide(layer))
    )
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: Buffer; headers: Headers }> {
    const send = () =>
      fetch(new URL(path, this.frontUrl), {
        method,
        ...(body === undefined ? {} : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
      })
    // A kept-alive socket the server closes as the request goes out fails
    // with "other side closed"; every request here is safe to repeat.
    const response = await send().catch(send)
    return { status: response.status, body: Buffer.from(await response.arrayBuffer()), headers: response.headers }
  }

  async open(video: { id: string; path: string; rallies: ReadonlyArray<{ start: number; end: number }> }, mode?: "copy" | "accurate") {
    const result = await this.request("POST", "/api/videos", { ...video, ...(mode === undefined ? {} : { mode }) })
    if (result.status !== 201) throw new Error(`open ${video.id}: ${result.status} ${result.body.toString()}`)
  }

  /** The rows of a one-column query, through psql. */
  sql(query: string): Array<string> {
    const result = spawnSync(Path.join(binDir, "psql"), ["-At", "-c", query, this.databaseUrl], { encoding: "utf8" })
    if (result.status !== 0) throw new Error(`psql: ${result.stderr}`)
    return result.stdout.split("\n").filter((line) => line.length > 0)
  }

  /** Samples the lease table every `everyMs` until `stop`, through one psql session. */
  watchLeases(everyMs = 200): LeaseWatch {
    return new LeaseWatch(this.databaseUrl, everyMs)
  }

  /** Every ffmpeg/ffprobe the runners have running now. */
  ffmpegs(): Array<number> {
    // One scan of /proc for all runners: the export watch calls this every 100 ms.
    const children = childrenByParent()
    return this.runners.flatMap((runner) => runner.alive ? descendantsIn(children, runner.pid) : [])
  }

  /** SIGTERM everything, wait for the exits, stop Postgres, remove the folders. */
  async stop(): Promise<void> {
    const procs = [this.front, ...this.runners].filter((p): p is Proc => p !== undefined && p.alive)
    for (const proc of procs) proc.child.kill("SIGTERM")
    await Promise.all(procs.map((proc) =>
      Promise.race([
        proc.exited,
        new Promise((resolve) => setTimeout(resolve, 30_000).unref()).then(() => proc.child.kill("SIGKILL"))
      ])
    ))
    try {
      await this.stopServers()
    } finally {
      Fs.rmSync(this.dir, { recursive: true, force: true })
    }
  }
}

/** One lease row as sampled: the runner that held `key` (its proc name), since `acquired`, seen at each of `seen` (database time, epoch ms). */
export interface SampledLease {
  readonly key: string
  readonly owner: string
  readonly runner: string
  readonly acquired: number
  readonly seen: Array<number>
}

/**
 * The lease rows of the store (`rallycache_leases`) sampled during a run,
 * each sample stamped with the database's `now()`. One psql reads the
 * queries from its stdin, so sampling starts no process per sample.
 */
export class LeaseWatch {
  private readonly child: ChildProcess
  private readonly timer: NodeJS.Timeout
  private output = ""
  private readonly closed: Promise<void>

  constructor(databaseUrl: string, everyMs: number) {
    this.child = spawn(Path.join(binDir, "psql"), ["-qAt", "-F", "|", databaseUrl], { stdio: ["pipe", "pipe", "ignore"] })
    this.child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      this.output += chunk
    })
    this.closed = new Promise((resolve) => this.child.once("close", () => resolve()))
    const query = "SELECT key, owner, (extract(epoch FROM acquired_at) * 1000)::bigint, " +
      "(extract(epoch FROM now()) * 1000)::bigint FROM rallycache_leases;\n"
    this.timer = setInterval(() => this.child.stdin!.write(query), everyMs)
  }

  /** Stop sampling; every lease seen, one entry per (key, owner, acquisition). */
  async stop(): Promise<Array<SampledLease>> {
    clearInterval(this.timer)
    this.child.stdin!.end()
    await this.closed
    const leases = new Map<string, SampledLease>()
    for (const line of this.output.split("\n")) {
      const [key, owner, acquired, now] = line.split("|")
      if (key === undefined || owner === undefined || acquired === undefined || now === undefined) continue
      const id = `${key} ${owner} ${acquired}`
      const lease = leases.get(id) ??
        { key, owner, runner: owner.split("/")[0]!.replace(/^runner-/, "runner "), acquired: Number(acquired), seen: [] }
      lease.seen.push(Number(now))
      leases.set(id, lease)
    }
    return [...leases.values()]
  }
}

const ffmpegBin = () => {
  for (const candidate of [process.env["FFMPEG_PATH"], "/usr/bin/ffmpeg"]) {
    if (candidate !== undefined && Fs.existsSync(candidate)) return candidate
  }
  return "ffmpeg"
}

/** A clip decodes to the end without error (a cut file fails this, see TOOLCHAIN.md). */
export const validClip = (file: string): boolean =>
  spawnSync(ffmpegBin(), ["-nostdin", "-v", "error", "-xerror", "-i", file, "-map", "0", "-c", "copy", "-f", "null", "-"], {
    stdio: "ignore"
  }).status === 0

/** Every file under `dir`. */
export const filesUnder = (dir: string): Array<string> =>
  Fs.existsSync(dir)
    ? Fs.readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) =>
      Path.join(e.parentPath, e.name)
    )
    : []
