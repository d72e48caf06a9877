/**
 * The object-store CacheStore against a real s3rver and a real Postgres
 * (one of each for the file), with several stores in this process standing
 * for runners: each has its own Postgres pool, local cache folder and
 * counting S3 client. Each test has its own tables and object prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { S3CacheStore } from "@rallycache/s3"
import { ConfigProvider, Effect, Fiber, Option, Schedule, Stream } from "effect"
import * as Crypto from "node:crypto"
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { type Env, exportClip, listObjects, newEntry, newKey, putObject, runner, startServers, tempDir, writeClip } from "./support.js"

let env: Env
let stopAll: () => Promise<void>

beforeAll(async () => {
  const servers = await startServers()
  env = servers.env
  stopAll = servers.stop
})

afterAll(() => stopAll?.())

let tests = 0
/** Tables and an object prefix of the test's own. */
const fresh = () => {
  tests++
  return { table: `t${tests}_${Crypto.randomBytes(3).toString("hex")}`, prefix: `test-${tests}/` }
}

const bytes = (n: number) => Crypto.randomBytes(n)

describe("S3CacheStore", () => {
  it.live("several stores started at once on an empty database all open (migrations cannot race)", () =>
    Effect.gen(function*() {
      const names = fresh()
      const stores = yield* Effect.all(Array.from({ length: 6 }, () => runner(env, names)), { concurrency: "unbounded" })
      expect(stores).toHaveLength(6)
      const rows = yield* stores[0]!.sql<{ n: number }>`SELECT count(*)::int AS n FROM ${
        stores[0]!.sql(`${names.table}_clips`)
      }`
      expect(rows[0]!.n).toBe(0)
    }).pipe(Effect.scoped))

  it.live("the row is the commit point: an uploaded object without a row is never served, and the sweep deletes it", () =>
    Effect.gen(function*() {
      const names = fresh()
      const a = yield* runner(env, { ...names, orphanGrace: "1 millis" })
      const b = yield* runner(env, { ...names, orphanGrace: "1 millis" })

      const committedKey = newKey()
      const committed = bytes(40_000)
      yield* exportClip(a, committedKey, committed)

      // What a runner that died between its upload and its row leaves behind.
      const orphanKey = newKey()
      const orphanObject = `${names.prefix}clips/${orphanKey}.${Crypto.randomUUID()}.mp4`
      yield* putObject(env.s3, orphanObject, bytes(30_000))

      expect(yield* b.store.lookup(orphanKey)).toEqual(Option.none())
      expect(yield* b.store.has(orphanKey)).toBe(false)
      expect((yield* b.store.listAll).map((entry) => entry.key)).toEqual([committedKey])
      const reserved = yield* b.store.reserve(orphanKey)
      expect(reserved._tag).toBe("Reserved")
      if (reserved._tag === "Reserved") yield* b.store.abort(reserved.reservation)

      const report = yield* b.store.sweep
      expect(report.orphansDeleted).toEqual([orphanObject])
      const left = yield* listObjects(env.s3, names.prefix)
      expect(left).toHaveLength(1)
      expect(left[0]).toMatch(new RegExp(`^${names.prefix}clips/${committedKey}\\.`))

      // The committed clip survived the sweep, whole.
      const hit = yield* b.store.lookup(committedKey)
      expect(Option.isSome(hit)).toBe(true)
      expect(Fs.readFileSync(b.store.pathOf(committedKey)).equals(committed)).toBe(true)
    }).pipe(Effect.scoped))

  it.live("two stores racing for the same keys: one export per key, the other waits and gets the committed clip", () =>
    Effect.gen(function*() {
      const names = fresh()
      const a = yield* runner(env, { ...names, pollInterval: "50 millis" })
      const b = yield* runner(env, { ...names, pollInterval: "50 millis" })
      const keys = Array.from({ length: 4 }, newKey)
      const exported: Array<string> = []

      // Each store runs what the manager's export job runs: reserve, then export and commit or take the clip.
      const job = (r: typeof a, name: string, key: typeof keys[number]) =>
        Effect.gen(function*() {
          const reserved = yield* r.store.reserve(key)
          if (reserved._tag === "Cached") return { name, entry: reserved.entry, exported: false }
          exported.push(`${name}:${key}`)
          const clip = bytes(20_000 + keys.indexOf(key))
          yield* writeClip(reserved.reservation, clip)
          const entry = yield* r.store.commit(reserved.reservation, newEntry("race", keys.indexOf(key), clip.length))
          return { name, entry, exported: true }
        })

      const results = yield* Effect.all(
        keys.flatMap((key) => [job(a, "a", key), job(b, "b", key)]),
        { concurrency: "unbounded" }
      )
      for (const key of keys) {
        const mine = results.filter((result) => result.entry.key === key)
        expect(mine.filter((result) => result.exported)).toHaveLength(1)
        expect(mine.filter((result) => !result.exported)).toHaveLength(1)
        // Both runners now serve the same bytes from their own disk.
        const pa = a.store.pathOf(key)
        const pb = b.store.pathOf(key)
        expect(pa.startsWith(a.cacheDir)).toBe(true)
        expect(pb.startsWith(b.cacheDir)).toBe(true)
        expect(Fs.readFileSync(pa).equals(Fs.readFileSync(pb))).toBe(true)
      }
      expect(exported).toHaveLength(keys.length)
    }).pipe(Effect.scoped))

  it.live("a second runner waits while the lease is renewed, and takes the committed clip", () =>
    Effect.gen(function*() {
      const names = fresh()
      const a = yield* runner(env, { ...names, leaseDuration: "600 millis", pollInterval: "50 millis" })
      const b = yield* runner(env, { ...names, leaseDuration: "600 millis", pollInterval: "50 millis" })
      const key = newKey()
      const leases = a.sql(`${names.table}_leases`)
      const reserved = yield* a.store.reserve(key)
      expect(reserved._tag).toBe("Reserved")
      if (reserved._tag !== "Reserved") return
      const first = yield* a.sql<{ expires: number }>`SELECT extract(epoch FROM expires_at)::float8 * 1000 AS expires FROM ${leases} WHERE key = ${key}`
      const waiter = yield* Effect.fork(b.store.reserve(key))
      // Wait until the lease has been renewed past twice its duration: without renewal it would have lapsed.
      yield* Effect.repeat(
        a.sql<{ expires: number }>`SELECT extract(epoch FROM expires_at)::float8 * 1000 AS expires FROM ${leases} WHERE key = ${key}`,
        { until: (rows) => (rows[0]?.expires ?? 0) > first[0]!.expires + 1_200, schedule: Schedule50 }
      )
      expect(Option.isNone(yield* Fiber.poll(waiter))).toBe(true)
      const owner = yield* a.sql<{ owner: string }>`SELECT owner FROM ${leases} WHERE key = ${key}`
      expect(owner[0]!.owner).toBe(a.store.owner)

      const clip = bytes(25_000)
      yield* writeClip(reserved.reservation, clip)
      yield* a.store.commit(reserved.reservation, newEntry("lease", 0, clip.length))
      const got = yield* Fiber.join(waiter)
      expect(got._tag).toBe("Cached")
      expect(Fs.readFileSync(b.store.pathOf(key)).equals(clip)).toBe(true)
      expect(yield* a.sql`SELECT 1 FROM ${leases} WHERE key = ${key}`).toHaveLength(0)
    }).pipe(Effect.scoped))

  it.live("a lease nobody renews (its runner died) lapses and another runner takes the key", () =>
    Effect.gen(function*() {
      const names = fresh()
      const b = yield* runner(env, { ...names, leaseDuration: "800 millis", pollInterval: "50 millis" })
      const leases = b.sql(`${names.table}_leases`)
      const key = newKey()
      // What a SIGKILLed runner leaves: its lease row, which nobody renews any more.
      yield* b.sql`INSERT INTO ${leases} (key, owner, expires_at) VALUES (${key}, ${"dead-runner/1"}, now() + interval '800 milliseconds')`
      const reserved = yield* b.store.reserve(key)
      expect(reserved._tag).toBe("Reserved")
      const rows = yield* b.sql<{ owner: string }>`SELECT owner FROM ${leases} WHERE key = ${key}`
      expect(rows[0]!.owner).toBe(b.store.owner)
      if (reserved._tag === "Reserved") {
        const clip = bytes(10_000)
        yield* writeClip(reserved.reservation, clip)
        yield* b.store.commit(reserved.reservation, newEntry("dead", 0, clip.length))
      }
      expect(Option.isSome(yield* b.store.lookup(key))).toBe(true)
    }).pipe(Effect.scoped))

  it.live("a runner SIGKILLed in the middle of an export: its lease lapses and another runner takes the key", () =>
    Effect.gen(function*() {
      const names = fresh()
      const key = newKey()
      const cacheDir = yield* tempDir("doomed")
      const child = spawn(process.execPath, [
        "--conditions=@rallycache/source",
        "--import",
        "tsx",
        Path.join(import.meta.dirname, "fixtures", "holdLease.ts"),
        key
      ], {
        cwd: Path.resolve(import.meta.dirname, ".."),
        env: {
          ...process.env,
          ...env.s3.env,
          DATABASE_URL: env.databaseUrl,
          RALLYCACHE_S3_CACHE_DIR: cacheDir,
          RALLYCACHE_S3_PREFIX: names.prefix,
          RALLYCACHE_S3_TABLE: names.table,
          RALLYCACHE_S3_LEASE_DURATION: "1500 millis"
        },
        stdio: ["ignore", "pipe", "pipe"]
      })
      yield* Effect.addFinalizer(() => Effect.sync(() => child.kill("SIGKILL")))
      const doomed = yield* Effect.async<string, Error>((resume) => {
        let out = ""
        let err = ""
        child.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString()
          const match = /reserved (\S+)\n/.exec(out)
          if (match !== null) resume(Effect.succeed(match[1]!))
        })
        child.stderr!.on("data", (chunk: Buffer) => {
          err += chunk.toString()
        })
        child.once("exit", (code) => resume(Effect.fail(new Error(`the runner exited (${code}) before its lease: ${err}`))))
      })
      const b = yield* runner(env, { ...names, pollInterval: "50 millis" })
      const leases = b.sql(`${names.table}_leases`)
      const held = yield* b.sql<{ owner: string; expires: number }>`SELECT owner, extract(epoch FROM expires_at)::float8 * 1000 AS expires FROM ${leases} WHERE key = ${key}`
      expect(held[0]!.owner).toBe(doomed)
      const exited = Effect.async<void>((resume) => {
        child.once("exit", () => resume(Effect.void))
      })
      child.kill("SIGKILL")
      yield* exited
      const reserved = yield* b.store.reserve(key)
      expect(reserved._tag).toBe("Reserved")
      const taken = yield* b.sql<{ owner: string; acquired: number }>`SELECT owner, extract(epoch FROM acquired_at)::float8 * 1000 AS acquired FROM ${leases} WHERE key = ${key}`
      expect(taken[0]!.owner).toBe(b.store.owner)
      // Taken only once the dead runner's last renewal had run out.
      expect(taken[0]!.acquired).toBeGreaterThanOrEqual(held[0]!.expires - 1)
      if (reserved._tag === "Reserved") yield* b.store.abort(reserved.reservation)
    }).pipe(Effect.scoped))

  it.live("a store closed in the middle of an export gives its lease back at once", () =>
    Effect.gen(function*() {
      const names = fresh()
      const key = newKey()
      yield* Effect.scoped(Effect.gen(function*() {
        const a = yield* runner(env, { ...names, leaseDuration: "1 hour" })
        expect((yield* a.store.reserve(key))._tag).toBe("Reserved")
      }))
      // With an hour-long lease, only the release on close lets b in.
      const b = yield* runner(env, names)
      expect((yield* b.store.reserve(key))._tag).toBe("Reserved")
    }).pipe(Effect.scoped))

  it.live("limits hold across the cluster: one SQL statement evicts other runners' clips, objects go after rows", () =>
    Effect.gen(function*() {
      const names = fresh()
      const config = { maxEntriesPerVideo: 2, maxBytes: 100_000 }
      const a = yield* runner(env, names, config)
      const b = yield* runner(env, names, config)
      const perVideo = Array.from({ length: 4 }, newKey)
      // Two clips of video "v" from each runner, oldest first.
      for (const [i, key] of perVideo.entries()) {
        yield* exportClip(i % 2 === 0 ? a : b, key, bytes(10_000), "v", i)
      }
      const evicted = yield* a.store.enforce
      expect(evicted.map((e) => [e.entry.key, e.reason])).toEqual([
        [perVideo[0], "per-video"],
        [perVideo[1], "per-video"]
      ])
      // b's clip was evicted by a: its row and object are gone, and b drops its local copy at its next enforce.
      expect((yield* b.store.listAll).map((e) => e.key).sort()).toEqual([perVideo[2], perVideo[3]].sort())
      expect(yield* listObjects(env.s3, names.prefix)).toHaveLength(2)
      expect(yield* b.store.local.has(perVideo[1]!)).toBe(true)
      yield* b.store.enforce
      expect(yield* b.store.local.has(perVideo[1]!)).toBe(false)
      expect(Option.isNone(yield* b.store.lookup(perVideo[1]!))).toBe(true)

      // Size: 100 kB for the whole cluster; the least recently used go, whoever wrote them.
      const big = Array.from({ length: 3 }, newKey)
      for (const [i, key] of big.entries()) yield* exportClip(i % 2 === 0 ? b : a, key, bytes(40_000), `w${i}`, 0)
      yield* a.store.touch(perVideo[2]!)
      yield* a.store.touch(perVideo[3]!)
      const bySize = yield* b.store.enforce
      expect(bySize.every((e) => e.reason === "size")).toBe(true)
      const usage = yield* a.store.usage
      expect(usage.bytes).toBeLessThanOrEqual(100_000)
      expect(bySize.map((e) => e.entry.key)).toContain(big[0])
      expect(yield* listObjects(env.s3, names.prefix)).toHaveLength(usage.entries)
    }).pipe(Effect.scoped))

  it.live("a hit in the local hot cache is a local file and sends no request to the bucket", () =>
    Effect.gen(function*() {
      const names = fresh()
      const a = yield* runner(env, names)
      const b = yield* runner(env, names)
      const key = newKey()
      const clip = bytes(50_000)
      yield* exportClip(a, key, clip)
      const before = b.counter.requests
      const first = yield* b.store.lookup(key)
      expect(Option.isSome(first)).toBe(true)
      expect(b.counter.requests).toBeGreaterThan(before)
      const afterDownload = b.counter.requests
      for (let i = 0; i < 50; i++) {
        const hit = yield* b.store.lookup(key)
        expect(Option.isSome(hit)).toBe(true)
      }
      expect(b.counter.requests).toBe(afterDownload)
      const path = b.store.pathOf(key)
      expect(path.startsWith(b.cacheDir)).toBe(true)
      expect(Fs.readFileSync(path).equals(clip)).toBe(true)
      // The exporting runner never downloaded its own clip either.
      const aBefore = a.counter.requests
      expect(Option.isSome(yield* a.store.lookup(key))).toBe(true)
      expect(a.counter.requests).toBe(aBefore)
    }).pipe(Effect.scoped))

  it.live("an object that does not match its row (ETag or size) is corrupt: removed, and the key exported again", () =>
    Effect.gen(function*() {
      const names = fresh()
      const a = yield* runner(env, names)
      const b = yield* runner(env, names)
      const events = yield* b.events.subscribe
      const replaced = newKey()
      yield* exportClip(a, replaced, bytes(30_000))
      const [object] = yield* listObjects(env.s3, names.prefix)
      // Someone rewrote the object behind the index's back.
      yield* putObject(env.s3, object!, bytes(30_000))
      expect(Option.isNone(yield* b.store.lookup(replaced))).toBe(true)
      expect((yield* b.store.listAll).map((e) => e.key)).not.toContain(replaced)
      expect(yield* listObjects(env.s3, names.prefix)).toHaveLength(0)
      expect(yield* b.store.local.has(replaced)).toBe(false)
      const invalid = yield* Stream.runHead(events.pipe(Stream.filter((e) => e._tag === "EntryInvalid")))
      expect(Option.map(invalid, (e) => e._tag === "EntryInvalid" && e.key === replaced)).toEqual(Option.some(true))
      const again = yield* b.store.reserve(replaced)
      expect(again._tag).toBe("Reserved")
      if (again._tag === "Reserved") yield* b.store.abort(again.reservation)

      // A row whose size disagrees with its object: the reserve that finds it exports again.
      const resized = newKey()
      yield* exportClip(a, resized, bytes(20_000))
      yield* a.sql`UPDATE ${a.sql(`${names.table}_clips`)} SET bytes = bytes + 1 WHERE key = ${resized}`
      const reserved = yield* b.store.reserve(resized)
      expect(reserved._tag).toBe("Reserved")
      if (reserved._tag === "Reserved") {
        const clip = bytes(21_000)
        yield* writeClip(reserved.reservation, clip)
        yield* b.store.commit(reserved.reservation, newEntry("video", 0, clip.length))
      }
      const c = yield* runner(env, names)
      expect(Option.isSome(yield* c.store.lookup(resized))).toBe(true)
      expect(Fs.statSync(c.store.pathOf(resized)).size).toBe(21_000)
    }).pipe(Effect.scoped))

  it.live("the deep check sees this disk's clips: a bad local copy is dropped and comes down again, its row stays", () =>
    Effect.gen(function*() {
      const names = fresh()
      const a = yield* runner(env, names)
      const b = yield* runner(env, names)
      const key = newKey()
      const clip = bytes(15_000)
      yield* exportClip(a, key, clip)
      // What the engine's validation sweep walks: b has nothing on its disk yet.
      expect(yield* b.store.list).toEqual([])
      expect((yield* a.store.list).map((e) => e.key)).toEqual([key])
      // The sweep found a's copy broken (Cleanup: markValidated invalid, then remove "invalid").
      yield* a.store.markValidated(key, "invalid")
      expect(yield* a.store.remove(key, "invalid")).toBe(true)
      expect((yield* b.store.listAll).map((e) => e.key)).toEqual([key])
      expect(yield* a.store.enforce).toEqual([])
      const again = yield* a.store.lookup(key)
      expect(Option.isSome(again)).toBe(true)
      expect(Fs.readFileSync(a.store.pathOf(key)).equals(clip)).toBe(true)
    }).pipe(Effect.scoped))

  it.live("a clip above the part size goes up in parts and comes down whole", () =>
    Effect.gen(function*() {
      const names = fresh()
      const a = yield* runner(env, { ...names, partSize: 5 * 1024 * 1024 })
      const b = yield* runner(env, { ...names, partSize: 5 * 1024 * 1024 })
      const key = newKey()
      const clip = bytes(11 * 1024 * 1024)
      yield* exportClip(a, key, clip)
      expect(Option.isSome(yield* b.store.lookup(key))).toBe(true)
      expect(Fs.readFileSync(b.store.pathOf(key)).equals(clip)).toBe(true)
    }).pipe(Effect.scoped))

  it.live("layerConfig reads RALLYCACHE_S3_* variables and names a missing bucket in one line", () =>
    Effect.gen(function*() {
      const provider = ConfigProvider.fromMap(new Map([
        ["RALLYCACHE_S3_BUCKET", "clips"],
        ["RALLYCACHE_S3_CACHE_DIR", "/tmp/x"],
        ["RALLYCACHE_S3_ENDPOINT", "http://127.0.0.1:9000"],
        ["RALLYCACHE_S3_FORCE_PATH_STYLE", "true"],
        ["RALLYCACHE_S3_LEASE_DURATION", "10 seconds"]
      ]), { pathDelim: "_" })
      const options = yield* S3CacheStore.fromConfig({ region: "auto" }).pipe(Effect.withConfigProvider(provider))
      expect(options).toMatchObject({
        bucket: "clips",
        cacheDir: "/tmp/x",
        endpoint: "http://127.0.0.1:9000",
        forcePathStyle: true,
        region: "auto"
      })
      const missing = yield* S3CacheStore.fromConfig().pipe(
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(), { pathDelim: "_" })),
        Effect.flip
      )
      expect(missing.message).toMatch(/RALLYCACHE_S3_BUCKET/)
    }))
})

const Schedule50 = Schedule.spaced("50 millis")
