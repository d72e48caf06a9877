/**
 * Shared helpers of the reliability suite: fixtures, the CLI as a real
 * process, a node stack with injectable faults, process-table scans, folder
 * snapshots, a seeded random source, figures for the README. Not a test file.
 */
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { NodeContext, NodeFileSystem } from "@effect/platform-node"
import {
  CacheEvent,
  Cleanup,
  Config,
  Exporter,
  Metrics,
  PreloadPolicy,
  RallyCache as CoreRallyCache
} from "@rallycache/core"
import { FfmpegExporter, FfmpegResolver, FileSystemCacheStore, SampleVideo } from "@rallycache/node"
import { Effect, Layer, Random, SubscriptionRef } from "effect"
import { afterEach } from "vitest"
import { Config as CoreConfig } from "@rallycache/core"
import { spawn, spawnSync } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { fileURLToPath } from "node:url"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import * as Temp from "../support/temp.js"

export const repoRoot = NodePath.resolve(NodePath.dirname(fileURLToPath(import.meta.url)), "..", "..")
const tsx = NodePath.join(repoRoot, "node_modules", ".bin", "tsx")
export const cliBin = NodePath.join(repoRoot, "packages", "cli", "src", "bin.ts")

/** `RELIABILITY_LONG=1` turns on the soak sizes. */
export const long = process.env["RELIABILITY_LONG"] === "1"

/** A size for CI, or for a soak run. */
export const size = (ci: number, soak: number): number => (long ? soak : ci)

// ---------------------------------------------------------------------------
// Random
// ---------------------------------------------------------------------------

/** Effect's seeded generator, driven synchronously (fault injection draws inside `node:fs` calls). */
export const rng = (seed: number) => {
  const random = Random.make(seed)
  const next = (): number => Effect.runSync(random.next)
  return {
    next,
    int: (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <A>(items: ReadonlyArray<A>): A => items[Math.floor(next() * items.length)]!
  }
}

/**
 * The seed of this run: `RELIABILITY_SEED`, else drawn from the time.
 * Printed with every figure, and with every failed test (how to replay it).
 */
export const seed = Number(process.env["RELIABILITY_SEED"] ?? Date.now() % 1_000_000)

afterEach((context) => {
  if (context.task.result?.state !== "fail") return
  const file = NodePath.relative(repoRoot, context.task.file?.filepath ?? "")
  console.error(
    `[reliability] "${context.task.name}" failed with seed ${seed}; replay: RELIABILITY_SEED=${seed} pnpm vitest run ${file}`
  )
})

// ---------------------------------------------------------------------------
// ffmpeg and fixtures
// ---------------------------------------------------------------------------

export const fixtureDir = NodePath.join(NodeOs.tmpdir(), "rallycache-fixtures")

const platform = FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))

/** The ffmpeg and ffprobe the library would use. */
export const binaries: Effect.Effect<FfmpegResolver.FfmpegShape> = Effect.orDie(
  Effect.provide(FfmpegResolver.Ffmpeg, platform)
)

/** A generated match video (cached per machine). */
export const sampleVideo = (options: SampleVideo.Options): Effect.Effect<string> =>
  SampleVideo.cached({ dir: fixtureDir, ...options }).pipe(Effect.provide(platform), Effect.orDie)

/**
 * A deep check of a clip, independent of the library: every packet is read
 * (`-xerror`, so a truncated file fails) and its duration is returned.
 */
export const mediaCheck = (
  ffmpeg: string,
  ffprobe: string,
  file: string
): { readonly ok: boolean; readonly duration: number; readonly detail: string } => {
  const read = spawnSync(ffmpeg, ["-nostdin", "-v", "error", "-xerror", "-i", file, "-map", "0", "-c", "copy", "-f", "null", "-"], {
    encoding: "utf8"
  })
  const probe = spawnSync(ffprobe, ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file], {
    encoding: "utf8"
  })
  const duration = probe.status === 0 ? Number(probe.stdout.trim()) : NaN
  const ok = read.status === 0 && read.stderr.trim().length === 0 && Number.isFinite(duration) && duration > 0
  return { ok, duration, detail: (read.stderr || probe.stderr || "").trim().split("\n").at(-1) ?? "" }
}

const playable = new Map<string, { readonly ok: true; readonly duration: number; readonly detail: string }>()

/**
 * `mediaCheck`, run once per file version: a file found complete and
 * playable is not read again while it is the same file (inode, size,
 * modification and change times all unchanged; a rewrite, truncation or
 * rename changes one of them). The suites that look at every entry after
 * every fault or kill then read each clip once instead of once per look.
 */
export const mediaCheckOnce = (
  ffmpeg: string,
  ffprobe: string,
  file: string
): { readonly ok: boolean; readonly duration: number; readonly detail: string } => {
  const stat = NodeFs.statSync(file, { throwIfNoEntry: false, bigint: true })
  const version = stat === undefined ? undefined : `${file}\0${stat.ino}\0${stat.size}\0${stat.mtimeNs}\0${stat.ctimeNs}`
  const known = version === undefined ? undefined : playable.get(version)
  if (known !== undefined) return known
  const result = mediaCheck(ffmpeg, ffprobe, file)
  if (result.ok && version !== undefined) playable.set(version, { ok: true, duration: result.duration, detail: result.detail })
  return result
}

// ---------------------------------------------------------------------------
// Folders and processes
// ---------------------------------------------------------------------------

/** A new temp folder, removed after the test file's last test. */
export const tempDir = (prefix: string): string => Temp.tempDir(`rel-${prefix}`)

/** Every path under `dir` (relative, sorted), folders marked with a trailing `/`. */
export const snapshot = (dir: string): Array<string> => {
  const out: Array<string> = []
  const walk = (abs: string, rel: string) => {
    for (const entry of NodeFs.readdirSync(abs, { withFileTypes: true })) {
      const r = rel === "" ? entry.name : `${rel}/${entry.name}`
      if (entry.isDirectory()) {
        out.push(`${r}/`)
        walk(NodePath.join(abs, entry.name), r)
      } else {
        out.push(r)
      }
    }
  }
  walk(dir, "")
  return out.sort()
}

export interface ProcInfo {
  readonly pid: number
  readonly state: string
  readonly cmdline: string
}

/** Live (not zombie) processes whose command line contains every one of `needles`. */
export const processesWith = (...needles: ReadonlyArray<string>): Array<ProcInfo> => {
  const found: Array<ProcInfo> = []
  let names: Array<string>
  try {
    names = NodeFs.readdirSync("/proc")
  } catch {
    return found
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue
    try {
      const cmdline = NodeFs.readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ")
      if (!needles.every((n) => cmdline.includes(n))) continue
      const stat = NodeFs.readFileSync(`/proc/${name}/stat`, "utf8")
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
      if (state === "Z" || state === "X") continue
      found.push({ pid: Number(name), state, cmdline })
    } catch {
      // gone meanwhile
    }
  }
  return found
}

/** ffmpeg processes (not ffprobe) working in `dir`. */
export const ffmpegIn = (dir: string): Array<ProcInfo> =>
  processesWith(dir).filter((p) => /(^|\/)ffmpeg /.test(p.cmdline) || /\/ffmpeg(\s|$)/.test(p.cmdline.split(" ")[0] ?? ""))

// ---------------------------------------------------------------------------
// The CLI as a real process
// ---------------------------------------------------------------------------

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** No inherited RALLYCACHE_* variable, no colours. */
export const cliEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("RALLYCACHE_") && key !== "FORCE_COLOR") env[key] = value
  }
  return { ...env, NO_COLOR: "1", ...extra }
}

/**
 * Start the CLI the way `pnpm rallycache` does: `scripts/rallycache.mjs`
 * (which rebuilds a stale bundle, then runs it), without pnpm itself, which
 * adds a warning line to stderr.
 */
export const spawnCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}): ChildProcess =>
  spawn(process.execPath, [NodePath.join(repoRoot, "scripts", "rallycache.mjs"), ...args], {
    cwd: repoRoot,
    env: cliEnv(env),
    stdio: ["ignore", "pipe", "pipe"]
  })

/** The command as published: the package's `bin`, bundled by `pnpm build` (the run's global set-up). */
export const cliBundle = NodePath.join(repoRoot, "packages", "cli", "dist", "bundle", "rallycache.js")

/**
 * The CLI for tests that start it many times: the published bundle
 * (`packages/cli/dist/bundle/rallycache.js`, brought up to date by the
 * run's global set-up, replaced file by file with renames so a running
 * command never loses one), about 0.3 s of CPU a start against about 2 s
 * through tsx. The ffmpeg binaries are passed through FFMPEG_PATH /
 * FFPROBE_PATH. `RELIABILITY_TSX=1` runs the source through tsx instead.
 */
export const cliRunner = (bins: FfmpegResolver.FfmpegShape) => {
  const ffEnv = { FFMPEG_PATH: bins.ffmpeg.path, FFPROBE_PATH: bins.ffprobe.path }
  const command = process.env["RELIABILITY_TSX"] === "1"
    ? { file: tsx, args: [cliBin] }
    : { file: process.execPath, args: [cliBundle] }
  const spawnIt = (args: ReadonlyArray<string>, env: Record<string, string> = {}): ChildProcess =>
    spawn(command.file, [...command.args, ...args], {
      cwd: repoRoot,
      env: cliEnv({ ...ffEnv, ...env }),
      stdio: ["ignore", "pipe", "pipe"]
    })
  return {
    spawn: spawnIt,
    run: (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeoutMs?: number) =>
      Effect.promise(() => collect(spawnIt(args, env), timeoutMs))
  }
}

/** Wait for a started CLI to end, collecting its output. */
export const collect = (child: ChildProcess, timeoutMs = 180_000): Promise<CliResult> =>
  new Promise((resolve) => {
    let stdout = ""
    let stderr = ""
    child.stdout?.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr?.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })

export const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}, timeoutMs?: number) =>
  Effect.promise(() => collect(spawnCli(args, env), timeoutMs))

/** stdout as exactly one JSON object (the CLI's `--json` contract). */
export const jsonOut = <A>(result: CliResult): A => {
  const text = result.stdout.trim()
  try {
    if (text.includes("\n")) throw new Error("more than one line")
    return JSON.parse(text) as A
  } catch (error) {
    throw new Error(`--json stdout is not one JSON object (${String(error)}): ${JSON.stringify(result.stdout.slice(0, 800))}`)
  }
}

/** stderr lines that are not blank. */
export const errorLines = (result: CliResult): Array<string> =>
  result.stderr.split("\n").filter((line) => line.trim().length > 0)

// ---------------------------------------------------------------------------
// Fault injection
// ---------------------------------------------------------------------------

export type FaultCode = "ENOSPC" | "EIO"

/**
 * A switchable fault source shared by the faulty file systems: while
 * `enabled`, each faultable operation fails with probability `rate`
 * (ENOSPC or EIO at random). Every injection is counted per operation.
 */
export class Faults {
  enabled = false
  rate = 0.1
  /** Per-operation rates, over `rate` (rare operations such as the journal's writes get more). */
  readonly rates = new Map<string, number>()
  readonly injected = new Map<string, number>()
  /** Operations whose first call while enabled always fails: each is certain to be under fire, whatever the seed. */
  readonly certain = new Set<string>()
  readonly random: ReturnType<typeof rng>
  constructor(seedValue: number, readonly ops: ReadonlySet<string>) {
    this.random = rng(seedValue)
  }
  /** The fault to inject now for `op`, if any. */
  draw(op: string): FaultCode | undefined {
    if (!this.enabled || !this.ops.has(op)) return undefined
    const first = this.certain.has(op) && !this.injected.has(op)
    if (!first && this.random.next() >= (this.rates.get(op) ?? this.rate)) return undefined
    this.injected.set(op, (this.injected.get(op) ?? 0) + 1)
    return this.random.next() < 0.5 ? "ENOSPC" : "EIO"
  }
  get total(): number {
    let n = 0
    for (const v of this.injected.values()) n += v
    return n
  }
}

/** An error shaped like node's fs errors. */
export const errnoError = (code: FaultCode, syscall: string, path?: string): NodeJS.ErrnoException => {
  const text = code === "ENOSPC" ? "no space left on device" : "i/o error"
  const error: NodeJS.ErrnoException = new Error(
    `${code}: ${text}, ${syscall}${path === undefined ? "" : ` '${path}'`}`
  )
  error.code = code
  error.errno = code === "ENOSPC" ? -28 : -5
  error.syscall = syscall
  if (path !== undefined) error.path = path
  return error
}

const pathArg = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined)

/**
 * `node:fs` for `FileSystemCacheStore`'s `fs` option, failing at random
 * while `faults.enabled`. A faulty `writeSync` first writes part of the
 * buffer (a torn write, as a full disk does), then throws.
 */
export const faultyFs = (faults: Faults, base: FileSystemCacheStore.SyncFs = NodeFs): FileSystemCacheStore.SyncFs => {
  const guard = (op: string, path?: string) => {
    const code = faults.draw(op)
    if (code !== undefined) throw errnoError(code, op, path)
  }
  const wrapped: FileSystemCacheStore.SyncFs = {
    ...base,
    openSync: ((path: NodeFs.PathLike, ...rest: Array<unknown>) => {
      guard("open", pathArg(path))
      return (base.openSync as (...args: Array<unknown>) => number)(path, ...rest)
    }) as typeof NodeFs.openSync,
    writeSync: ((fd: number, buffer: unknown, ...rest: Array<unknown>) => {
      const code = faults.draw("write")
      if (code !== undefined) {
        if (Buffer.isBuffer(buffer)) {
          const offset = typeof rest[0] === "number" ? rest[0] : 0
          const length = typeof rest[1] === "number" ? rest[1] : buffer.length - offset
          const part = Math.floor(length * faults.random.next())
          if (part > 0) base.writeSync(fd, buffer, offset, part)
        }
        throw errnoError(code, "write")
      }
      return (base.writeSync as (...args: Array<unknown>) => number)(fd, buffer, ...rest)
    }) as typeof NodeFs.writeSync,
    fsyncSync: ((fd: number) => {
      guard("fsync")
      return base.fsyncSync(fd)
    }) as typeof NodeFs.fsyncSync,
    renameSync: ((from: NodeFs.PathLike, to: NodeFs.PathLike) => {
      guard("rename", pathArg(from))
      return base.renameSync(from, to)
    }) as typeof NodeFs.renameSync,
    statSync: ((path: NodeFs.PathLike, ...rest: Array<unknown>) => {
      guard("stat", pathArg(path))
      return (base.statSync as (...args: Array<unknown>) => unknown)(path, ...rest)
    }) as typeof NodeFs.statSync,
    rmSync: ((path: NodeFs.PathLike, ...rest: Array<unknown>) => {
      guard("rm", pathArg(path))
      return (base.rmSync as (...args: Array<unknown>) => void)(path, ...rest)
    }) as typeof NodeFs.rmSync
  }
  return wrapped
}

const platformError = (code: FaultCode, method: string, path: string) =>
  new SystemError({
    reason: "Unknown",
    module: "FileSystem",
    method,
    pathOrDescriptor: path,
    description: `${code}: ${code === "ENOSPC" ? "no space left on device" : "i/o error"}`
  })

/**
 * @effect/platform's `FileSystem` (what the ffmpeg exporter uses to create
 * folders, fsync, stat and rename its clips), failing at random while
 * `faults.enabled`, and/or slowed by `latencyMs` on every operation.
 */
export const faultyPlatformFs = (
  faults: Faults | undefined,
  latencyMs = 0
): Layer.Layer<FileSystem.FileSystem> =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (live) => {
      const gate = (method: string, path: string) =>
        Effect.suspend(() => {
          const code = faults?.draw(`platform.${method}`)
          const fail = code === undefined ? Effect.void : Effect.fail(platformError(code, method, path))
          return latencyMs > 0 ? Effect.zipRight(Effect.sleep(latencyMs), fail) : fail
        })
      const fs: FileSystem.FileSystem = {
        ...live,
        makeDirectory: (path, options) => Effect.zipRight(gate("mkdir", path), live.makeDirectory(path, options)),
        open: (path, options) =>
          Effect.zipRight(gate("open", path), live.open(path, options)).pipe(
            Effect.map((file) =>
              // The file's fsync (of a clip, or of its folder after the rename) can fail too.
              Object.create(file, { sync: { get: () => Effect.zipRight(gate("fsync", path), file.sync) } }) as FileSystem.File
            )
          ),
        stat: (path) => Effect.zipRight(gate("stat", path), live.stat(path)),
        rename: (from, to) => Effect.zipRight(gate("rename", from), live.rename(from, to)),
        exists: (path) => latencyMs > 0 ? Effect.zipRight(Effect.sleep(latencyMs), live.exists(path)) : live.exists(path)
      }
      return fs
    })
  ).pipe(Layer.provide(NodeFileSystem.layer))

/** A synchronous sleep (a slow disk blocks the calling thread, as real sync I/O does). */
export const blockFor = (ms: number): void => {
  if (ms > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)
}

/** `node:fs` with `latencyMs` added to every call. */
export const slowFs = (latencyMs: number, base: FileSystemCacheStore.SyncFs = NodeFs): FileSystemCacheStore.SyncFs => {
  const out: Record<string, unknown> = {}
  for (const [name, fn] of Object.entries(base)) {
    out[name] = typeof fn === "function"
      ? (...args: Array<unknown>) => {
        blockFor(latencyMs)
        return (fn as (...a: Array<unknown>) => unknown)(...args)
      }
      : fn
  }
  return out as unknown as FileSystemCacheStore.SyncFs
}

// ---------------------------------------------------------------------------
// A node stack with injectable parts
// ---------------------------------------------------------------------------

export interface StackOptions {
  readonly cacheDir: string
  readonly config?: Config.Options
  /** The store's `node:fs`. */
  readonly storeFs?: FileSystemCacheStore.SyncFs
  /** The exporter's platform FileSystem. */
  readonly exporterFs?: Layer.Layer<FileSystem.FileSystem>
  /** Binaries (e.g. a fake ffmpeg). Default: resolved. */
  readonly ffmpeg?: FfmpegResolver.FfmpegShape
  readonly exporter?: Omit<FfmpegExporter.Options, "runDir">
  readonly store?: Omit<FileSystemCacheStore.Options, "cacheDir" | "fs">
  /** Wrap the exporter (count exports, inject failures). */
  readonly wrapExporter?: (exporter: Exporter.ExporterShape) => Exporter.ExporterShape
}

/**
 * What `NodeRallyCache.layer` of `@rallycache/node` builds, with every part
 * replaceable: the store's fs, the exporter's FileSystem, the binaries.
 */
export const nodeStack = (options: StackOptions) => {
  const runDir = NodePath.join(options.cacheDir, "run")
  const base = Layer.mergeAll(
    Config.CacheConfig.layer(options.config ?? {}),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer,
    PreloadPolicy.layer
  )
  const ffmpeg = options.ffmpeg === undefined
    ? FfmpegResolver.layer.pipe(Layer.provide(NodeContext.layer))
    : FfmpegResolver.layerStatic(options.ffmpeg)
  let exporter: Layer.Layer<Exporter.Exporter, FfmpegResolver.FfmpegNotFound, CommandExecutor.CommandExecutor> =
    FfmpegExporter.layerWithFfmpeg({ ...options.exporter, runDir }).pipe(
      Layer.provide(options.exporterFs ?? NodeFileSystem.layer),
      Layer.provide(ffmpeg)
    )
  const wrap = options.wrapExporter
  if (wrap !== undefined) {
    exporter = Layer.effect(Exporter.Exporter, Effect.map(Exporter.Exporter, wrap)).pipe(Layer.provide(exporter))
  }
  const reap = Layer.effectDiscard(FfmpegExporter.reapStale(runDir)).pipe(Layer.provide(NodeFileSystem.layer))
  const store = FileSystemCacheStore.layer({
    ...options.store,
    cacheDir: options.cacheDir,
    ...(options.storeFs === undefined ? {} : { fs: options.storeFs })
  }).pipe(Layer.provide(reap))
  const services = Layer.mergeAll(exporter.pipe(Layer.provide(NodeContext.layer)), store).pipe(
    Layer.provideMerge(base)
  )
  const cleanup = Cleanup.layer.pipe(Layer.provideMerge(services))
  return CoreRallyCache.layer.pipe(Layer.provideMerge(cleanup))
}

/**
 * Count exports through the `Exporter`: running now (paused ones included),
 * the most at once, and `activeNow()`: running and not paused by preemption
 * (what holds a CPU).
 */
export const exportCounter = () => {
  const counter = { running: 0, max: 0, started: 0 }
  const live = new Set<Exporter.ExportRequest>()
  const activeNow = (): number => {
    let n = 0
    for (const request of live) {
      if (request.paused === undefined || !Effect.runSync(SubscriptionRef.get(request.paused))) n++
    }
    return n
  }
  const wrap = (exporter: Exporter.ExporterShape): Exporter.ExporterShape => ({
    ...exporter,
    export: (request) =>
      Effect.acquireUseRelease(
        Effect.sync(() => {
          live.add(request)
          counter.running++
          counter.started++
          counter.max = Math.max(counter.max, counter.running)
        }),
        () => exporter.export(request),
        () =>
          Effect.sync(() => {
            live.delete(request)
            counter.running--
          })
      )
  })
  /**
   * Of the ffmpeg processes in `procs`, those that hold a CPU by the
   * exporter's own account: not stopped (state T), and not of an export
   * the manager has paused (its SIGSTOP may not have landed yet when the
   * sample is taken). A process is matched to its export by the part file
   * on its command line.
   */
  const runningNow = (procs: ReadonlyArray<ProcInfo>): Array<ProcInfo> => {
    const paused: Array<string> = []
    for (const request of live) {
      if (request.paused !== undefined && Effect.runSync(SubscriptionRef.get(request.paused))) paused.push(request.tempPath)
    }
    return procs.filter((p) => p.state !== "T" && p.state !== "t" && !paused.some((path) => p.cmdline.includes(path)))
  }
  return { counter, wrap, activeNow, runningNow }
}

// ---------------------------------------------------------------------------
// Memory
// ---------------------------------------------------------------------------

/** A forced full GC (the flag is set at run time; vitest workers do not start with --expose-gc). */
export const forceGc: () => void = (() => {
  const existing = (globalThis as { gc?: () => void }).gc
  if (typeof existing === "function") return existing
  v8.setFlagsFromString("--expose-gc")
  const gc = vm.runInNewContext("gc") as () => void
  return gc
})()

export const heapMiB = (): number => Math.round((process.memoryUsage().heapUsed / 1024 / 1024) * 10) / 10

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

const figuresFile = process.env["RELIABILITY_FIGURES"] ?? NodePath.join(NodeOs.tmpdir(), "rallycache-reliability-figures.jsonl")

/**
 * Record the figures of a test: printed, and appended as one JSON line to
 * `$RELIABILITY_FIGURES` (default in the temp folder) for the README table.
 */
export const report = (test: string, figures: Record<string, unknown>): void => {
  const line = JSON.stringify({ test, seed, long, at: new Date().toISOString(), ...figures })
  console.log(`[reliability] ${line}`)
  try {
    NodeFs.appendFileSync(figuresFile, line + "\n")
  } catch {
    // figures are a report, not a result
  }
}

// ---------------------------------------------------------------------------
// The cache folder, seen from a fresh process
// ---------------------------------------------------------------------------

const storeServices = Layer.mergeAll(CoreConfig.CacheConfig.layer(), CacheEvent.CacheEvents.layer(), Metrics.layer)

/**
 * What a cache folder holds against its index, read without repairing
 * anything (the store opened read-only): clip files the index does not
 * know, partial files in tmp/, pid records in run/, key locks in locks/.
 */
export const folderState = (cacheDir: string) =>
  Effect.scoped(Effect.gen(function*() {
    const store = yield* FileSystemCacheStore.makeReadOnly({ cacheDir }).pipe(Effect.provide(storeServices), Effect.orDie)
    const entries = yield* Effect.orDie(store.list)
    const known = new Set(entries.map((e) => `${e.key}.mp4`))
    const names = (dir: string) => (NodeFs.existsSync(dir) ? NodeFs.readdirSync(dir) : [])
    return {
      entries,
      unknown: names(store.layout.clips).filter((n) => n.endsWith(".mp4") && !known.has(n)),
      temp: names(store.layout.tmp),
      run: names(store.layout.run),
      locks: names(store.layout.locks).filter((n) => n !== "index.lock")
    }
  }))

/**
 * Look at `cacheDir` as the last process left it (`left`: nothing
 * repaired yet), then open it as a new process would, and report what its
 * start-up repaired (`repaired`) and what the index's entries are worth:
 * each one present, of the recorded size, complete and playable (`bad`
 * lists the others). `after` is the folder once the start-up has run.
 */
export const reloadCheck = (cacheDir: string, bins: FfmpegResolver.FfmpegShape) =>
  Effect.gen(function*() {
    const left = yield* folderState(cacheDir)
    const opened = yield* Effect.scoped(Effect.gen(function*() {
      const store = yield* FileSystemCacheStore.make({ cacheDir }).pipe(Effect.provide(storeServices), Effect.orDie)
      // Start-up repairs tmp/ and locks/ at once; the index against clips/ may be reconciled in the background.
      const reconciled = yield* Effect.orDie(store.reconciled)
      const entries = yield* Effect.orDie(store.list)
      const bad: Array<string> = []
      for (const entry of entries) {
        const path = store.pathOf(entry.key)
        const stat = NodeFs.statSync(path, { throwIfNoEntry: false })
        if (stat === undefined) bad.push(`${entry.key}: missing`)
        else if (stat.size !== entry.sizeBytes) bad.push(`${entry.key}: ${stat.size} bytes, index ${entry.sizeBytes}`)
        else {
          const check = mediaCheckOnce(bins.ffmpeg.path, bins.ffprobe.path, path)
          if (!check.ok) bad.push(`${entry.key}: not playable (${check.detail})`)
        }
      }
      return { entries: entries.length, startup: store.startup, reconciled, bad }
    }))
    const after = yield* folderState(cacheDir)
    const { removedLocks, removedTemp, skippedLines } = opened.startup
    const { dropped, removedUnknown } = opened.reconciled
    return {
      entries: opened.entries,
      bad: opened.bad,
      left: { unknown: left.unknown, temp: left.temp, run: left.run, locks: left.locks },
      repaired: { dropped: dropped.length, removedUnknown, removedTemp, removedLocks, skippedLines },
      after: { unknown: after.unknown, temp: after.temp, run: after.run, locks: after.locks }
    }
  })
