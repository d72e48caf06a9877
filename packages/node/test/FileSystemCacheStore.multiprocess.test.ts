import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { CacheEvent, Config, Metrics } from "@rallycache/core"
import { Effect, Layer } from "effect"
import { FileSystemCacheStore } from "../src/index.js"
import * as Temp from "../../../test/support/temp.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const workerScript = Path.join(here, "fixtures", "store-worker.ts")
const repoRoot = Path.resolve(here, "..", "..", "..")

interface Worker {
  readonly child: ChildProcess.ChildProcess
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>
}

const spawnWorker = (cacheDir: string, log: string, id: number, iterations: number, seed: number): Worker => {
  const child = ChildProcess.spawn(
    process.execPath,
    ["--import", "tsx", workerScript, cacheDir, log, String(id), String(iterations), "6", String(seed)],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] }
  )
  let stdout = ""
  let stderr = ""
  child.stdout.on("data", (d) => (stdout += d))
  child.stderr.on("data", (d) => (stderr += d))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>(
    (resolve) => child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }))
  )
  return { child, done }
}

/** Intervals during which each worker held each key's lock; they must never overlap. */
const overlaps = (log: string): { holds: number; overlaps: Array<string> } => {
  const open = new Map<string, { worker: string; at: bigint }>()
  const byKey = new Map<string, Array<{ worker: string; start: bigint; end: bigint }>>()
  let holds = 0
  for (const line of Fs.readFileSync(log, "utf8").split("\n")) {
    const [kind, key, worker, at] = line.split(" ")
    if (kind === undefined || key === undefined || worker === undefined || at === undefined) continue
    const slot = `${key} ${worker}`
    if (kind === "S") open.set(slot, { worker, at: BigInt(at) })
    else {
      const start = open.get(slot)
      if (start === undefined) continue
      open.delete(slot)
      holds++
      const list = byKey.get(key) ?? []
      list.push({ worker, start: start.at, end: BigInt(at) })
      byKey.set(key, list)
    }
  }
  const found: Array<string> = []
  for (const [key, list] of byKey) {
    list.sort((a, b) => (a.start < b.start ? -1 : 1))
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.start < list[i - 1]!.end) found.push(`${key}: worker ${list[i - 1]!.worker} and ${list[i]!.worker}`)
    }
  }
  return { holds, overlaps: found }
}

const services = Layer.mergeAll(Config.CacheConfig.layer(), CacheEvent.CacheEvents.layer(), Metrics.layer).pipe(
  Layer.orDie
)

/** Reopen the folder and compare the index with the files on disk. */
const checkConsistent = (cacheDir: string) =>
  Effect.gen(function*() {
    const store = yield* FileSystemCacheStore.make({ cacheDir })
    const entries = yield* store.list
    const files = Fs.readdirSync(store.layout.clips).sort()
    expect(files).toEqual(entries.map((e) => `${e.key}.mp4`).sort())
    for (const entry of entries) expect(Fs.statSync(store.pathOf(entry.key)).size).toBe(entry.sizeBytes)
    expect(Fs.readdirSync(store.layout.tmp)).toEqual([])
    return store.startup
  }).pipe(Effect.scoped, Effect.provide(services))

describe("FileSystemCacheStore with several processes", () => {
  it.live("two processes hammering one folder: consistent index, one holder per key lock, no partial clip", () =>
    Effect.gen(function*() {
      const root = Temp.tempDir("mp")
      const cacheDir = Path.join(root, "cache")
      Fs.mkdirSync(cacheDir)
      const log = Path.join(root, "workers.log")
      const workers = [spawnWorker(cacheDir, log, 1, 250, 11), spawnWorker(cacheDir, log, 2, 250, 22)]
      const results = yield* Effect.promise(() => Promise.all(workers.map((w) => w.done)))
      for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 })
      const counts = results.map((r) => JSON.parse(r.stdout.trim()) as Record<string, number>)
      // Both really wrote, and they met on the same keys.
      for (const c of counts) expect(c["reserved"]).toBeGreaterThan(10)
      expect(counts.reduce((n, c) => n + c["cached"]! + c["hits"]!, 0)).toBeGreaterThan(0)

      const { holds, overlaps: found } = overlaps(log)
      expect(holds).toBeGreaterThan(40)
      expect(found).toEqual([])

      const startup = yield* checkConsistent(cacheDir)
      // Clean exits leave nothing to repair.
      expect(startup).toMatchObject({ dropped: [], removedUnknown: 0, removedTemp: 0, skippedLines: 0 })
    }), 120_000)

  it.live("a process killed with SIGKILL holding locks: the other one takes over its keys, start-up repairs the rest", () =>
    Effect.gen(function*() {
      const root = Temp.tempDir("mp")
      const cacheDir = Path.join(root, "cache")
      Fs.mkdirSync(cacheDir)
      const log = Path.join(root, "workers.log")
      const victim = spawnWorker(cacheDir, log, 1, 100_000, 33)
      // Let the victim get going (tsx start-up included), then start the survivor and kill the victim.
      yield* Effect.promise(async () => {
        for (let i = 0; i < 200 && !(Fs.existsSync(log) && Fs.statSync(log).size > 2000); i++) {
          await new Promise((r) => setTimeout(r, 50))
        }
      })
      const survivor = spawnWorker(cacheDir, log, 2, 200, 44)
      yield* Effect.sleep("300 millis")
      victim.child.kill("SIGKILL")
      const killed = yield* Effect.promise(() => victim.done)
      expect(killed.signal).toBe("SIGKILL")
      const result = yield* Effect.promise(() => survivor.done)
      expect(result, result.stderr).toMatchObject({ code: 0 })
      expect(overlaps(log).overlaps).toEqual([])

      yield* checkConsistent(cacheDir)
      // After the repair, a second start finds nothing to fix.
      const again = yield* checkConsistent(cacheDir)
      expect(again).toMatchObject({ dropped: [], removedUnknown: 0, removedTemp: 0 })
    }), 120_000)
})
