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

const spawnWorker = (cacheDir: string, log: string, id: number, iterations: number, seed: number, stallAfter = 0): Worker => {
  const child = ChildProcess.spawn(
    process.execPath,
    ["--import", "tsx", workerScript, cacheDir, log, String(id), String(iterations), "6", String(seed), String(stallAfter)],
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

interface LogLine {
  readonly kind: string
  readonly key: string
  readonly worker: string
  readonly at: bigint
}

const readLog = (log: string): Array<LogLine> => {
  const lines: Array<LogLine> = []
  let text = ""
  try {
    text = Fs.readFileSync(log, "utf8")
  } catch {
    return lines
  }
  for (const line of text.split("\n")) {
    const [kind, key, worker, at] = line.split(" ")
    if (kind === undefined || key === undefined || worker === undefined || at === undefined) continue
    lines.push({ kind, key, worker, at: BigInt(at) })
  }
  return lines
}

/**
 * The first log line that `match` accepts, waiting for it: the log grows
 * by appends, and a worker that exits without writing it ends the wait.
 */
const waitForLine = (log: string, worker: Worker, match: (line: LogLine) => boolean) =>
  Effect.promise(async () => {
    let exited = false
    void worker.done.then(() => (exited = true))
    for (;;) {
      const found = readLog(log).find(match)
      if (found !== undefined) return found
      if (exited) throw new Error(`the worker exited before logging the line: ${(await worker.done).stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  })

/**
 * Intervals during which each worker held each key's lock; they must never
 * overlap. A hold with no end line (its holder was killed) ends at
 * `killedAt`, taken just before the kill was sent (its holder was alive
 * until then); without it, such a hold is reported in `unended`.
 */
const overlaps = (log: string, killedAt?: bigint) => {
  const open = new Map<string, { worker: string; at: bigint }>()
  const byKey = new Map<string, Array<{ worker: string; start: bigint; end: bigint }>>()
  const add = (key: string, worker: string, start: bigint, end: bigint) => {
    const list = byKey.get(key) ?? []
    list.push({ worker, start, end })
    byKey.set(key, list)
  }
  let holds = 0
  for (const { at, key, kind, worker } of readLog(log)) {
    const slot = `${key} ${worker}`
    if (kind === "S" || kind === "H") open.set(slot, { worker, at })
    else if (kind === "E") {
      const start = open.get(slot)
      expect(start, `an end line without a start: ${slot}`).toBeDefined()
      if (start === undefined) continue
      open.delete(slot)
      holds++
      add(key, worker, start.at, at)
    }
  }
  const unended: Array<string> = []
  for (const [slot, start] of open) {
    const key = slot.split(" ")[0]!
    if (killedAt === undefined) unended.push(slot)
    else add(key, start.worker, start.at, killedAt)
  }
  const found: Array<string> = []
  for (const [key, list] of byKey) {
    list.sort((a, b) => (a.start < b.start ? -1 : 1))
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.start < list[i - 1]!.end) found.push(`${key}: worker ${list[i - 1]!.worker} and ${list[i]!.worker}`)
    }
  }
  return { holds, overlaps: found, unended }
}

const services = Layer.mergeAll(Config.CacheConfig.layer(), CacheEvent.CacheEvents.layer(), Metrics.layer).pipe(
  Layer.orDie
)

/** Reopen the folder and compare the index with the files on disk. */
const checkConsistent = (cacheDir: string) =>
  Effect.gen(function*() {
    const store = yield* FileSystemCacheStore.make({ cacheDir })
    // What the start-up repaired, and then what the (background) reconciliation did.
    const reconciled = yield* store.reconciled
    const entries = yield* store.list
    const files = Fs.readdirSync(store.layout.clips).sort()
    expect(files).toEqual(entries.map((e) => `${e.key}.mp4`).sort())
    for (const entry of entries) expect(Fs.statSync(store.pathOf(entry.key)).size).toBe(entry.sizeBytes)
    expect(Fs.readdirSync(store.layout.tmp)).toEqual([])
    return { ...store.startup, dropped: reconciled.dropped, removedUnknown: reconciled.removedUnknown }
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

      const { holds, overlaps: found, unended } = overlaps(log)
      expect(holds).toBeGreaterThan(40)
      expect(found).toEqual([])
      expect(unended).toEqual([])

      const startup = yield* checkConsistent(cacheDir)
      // Clean exits leave nothing to repair.
      expect(startup).toMatchObject({ dropped: [], removedUnknown: 0, removedTemp: 0, removedLocks: 0, skippedLines: 0 })
    }), 120_000)

  it.live("a process killed with SIGKILL holding a key lock: the other one takes the key over, start-up repairs the rest", () =>
    Effect.gen(function*() {
      const root = Temp.tempDir("mp")
      const cacheDir = Path.join(root, "cache")
      Fs.mkdirSync(cacheDir)
      const log = Path.join(root, "workers.log")
      // The victim stops for good in its 5th hold, its part file half written.
      const victim = spawnWorker(cacheDir, log, 1, 100_000, 33, 5)
      const stalled = yield* waitForLine(log, victim, (l) => l.kind === "H")
      const survivor = spawnWorker(cacheDir, log, 2, 200, 44)
      yield* waitForLine(log, survivor, (l) => l.kind === "R" && l.worker === "2")
      // The victim dies between this instant and its exit event: no one may hold its key before it.
      const killedAt = process.hrtime.bigint()
      victim.child.kill("SIGKILL")
      const killed = yield* Effect.promise(() => victim.done)
      expect(killed.signal).toBe("SIGKILL")
      const result = yield* Effect.promise(() => survivor.done)
      expect(result, result.stderr).toMatchObject({ code: 0 })
      // The victim's last hold lasts at least until it was killed: nobody held its key before that.
      expect(overlaps(log, killedAt).overlaps).toEqual([])
      // The survivor broke the dead holder's lock and held that key itself.
      const takenOver = readLog(log).filter((l) => l.kind === "S" && l.worker === "2" && l.key === stalled.key)
      expect(takenOver.length).toBeGreaterThan(0)
      expect(takenOver[0]!.at).toBeGreaterThan(stalled.at)

      // The repair: the victim's part file (the survivor, open before the kill, kept it).
      const repaired = yield* checkConsistent(cacheDir)
      expect(repaired).toMatchObject({ dropped: [], removedUnknown: 0, removedTemp: 1, skippedLines: 0 })
      // After the repair, a second start finds nothing to fix.
      const again = yield* checkConsistent(cacheDir)
      expect(again).toMatchObject({ dropped: [], removedUnknown: 0, removedTemp: 0, removedLocks: 0 })
    }), 120_000)

  it.live("the key lock of a killed process is removed at start-up, not left until its key is exported again", () =>
    Effect.gen(function*() {
      const root = Temp.tempDir("mp")
      const cacheDir = Path.join(root, "cache")
      Fs.mkdirSync(cacheDir)
      const log = Path.join(root, "workers.log")
      const victim = spawnWorker(cacheDir, log, 1, 100_000, 55, 1)
      const stalled = yield* waitForLine(log, victim, (l) => l.kind === "H")
      victim.child.kill("SIGKILL")
      yield* Effect.promise(() => victim.done)
      const locks = Path.join(cacheDir, "locks")
      expect(Fs.readdirSync(locks)).toContain(`${stalled.key}.lock`)
      const lockFile = Fs.readFileSync(Path.join(locks, `${stalled.key}.lock`), "utf8")
      // As the exporter's reaper does before the store opens: the part file goes first, so the
      // clean-up of part files (which takes each one's key lock) does not find this key.
      const tmp = Path.join(cacheDir, "tmp")
      for (const name of Fs.readdirSync(tmp)) Fs.rmSync(Path.join(tmp, name))

      const repaired = yield* checkConsistent(cacheDir)
      // The key's lock, and any other lock the killed process held at that moment (its touch flush
      // takes the index lock every 20 ms), are removed; nothing else is.
      expect(repaired, `start-up ${JSON.stringify(repaired)}; the lock held ${lockFile}`).toMatchObject({ removedTemp: 0 })
      expect(repaired.removedLocks).toBeGreaterThanOrEqual(1)
      expect(repaired.removedLocks).toBeLessThanOrEqual(2)
      expect(Fs.readdirSync(locks)).toEqual([])
    }), 120_000)
})
