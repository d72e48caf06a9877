import * as Fs from "node:fs"
import * as Path from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { CacheEvent, CacheKey, Config, Domain, Metrics } from "@rallycache/core"
import type { CacheStore } from "@rallycache/core"
import { Chunk, Duration, Effect, Equal, Exit, Fiber, Layer, Option, Schema, Scope, Stream, TestClock } from "effect"
import { FileSystemCacheStore } from "../src/index.js"
import * as Journal from "../src/internal/store/storeJournal.js"
import * as Lock from "../src/internal/store/storeLock.js"
import * as Temp from "../../../test/support/temp.js"

const keyOf = (i: number): Domain.CacheKey =>
  CacheKey.make({ fingerprint: "store-test", start: i, end: i + 1, mode: "copy", settingsVersion: "v1" })

const tempDir = (): string => Temp.tempDir("store")

const services = (config: Config.Options = {}) =>
  Layer.mergeAll(Config.CacheConfig.layer(config), CacheEvent.CacheEvents.layer(), Metrics.layer).pipe(Layer.orDie)

/** Open a store in its own scope, so a test can close it (a restart) and open another on the same folder. */
const open = (options: FileSystemCacheStore.Options) =>
  Effect.gen(function*() {
    const scope = yield* Scope.make()
    const store = yield* FileSystemCacheStore.make(options).pipe(Scope.extend(scope))
    return { store, close: Scope.close(scope, Exit.void) }
  })

const newEntry = (videoId: string, rallyIndex: number, sizeBytes: number): CacheStore.NewEntry => ({
  videoId: videoId as Domain.VideoId,
  rallyIndex,
  mode: "copy",
  clipStart: rallyIndex,
  clipEnd: rallyIndex + 1,
  sizeBytes,
  priority: "normal"
})

/** What the exporter does: write the temp file, move it into place, then commit. */
const put = (store: CacheStore.CacheStoreShape, key: Domain.CacheKey, bytes: number, videoId = "match", rally = 0) =>
  Effect.gen(function*() {
    const result = yield* store.reserve(key)
    if (result._tag !== "Reserved") return result.entry
    const { reservation } = result
    Fs.writeFileSync(reservation.tempPath, Buffer.alloc(bytes, 7))
    Fs.renameSync(reservation.tempPath, reservation.finalPath)
    return yield* store.commit(reservation, newEntry(videoId, rally, bytes))
  })

const collect = <A>(events: Stream.Stream<A>) => Effect.map(Stream.runCollect(events), Chunk.toReadonlyArray)

/** Returns once more than `n` fibers sleep on the TestClock: a fiber that forked before it now waits for time. */
const sleepersAbove = (n: number) =>
  Effect.gen(function*() {
    while (Chunk.size(yield* TestClock.sleeps()) <= n) yield* Effect.yieldNow()
  })

/** `node:fs` for the store, logging the steps that make a commit durable: renames, fsyncs and writes. */
const recordingFs = (log: Array<string>): FileSystemCacheStore.SyncFs => {
  const paths = new Map<number, string>()
  return {
    ...Fs,
    openSync: ((path: Fs.PathLike, ...rest: Array<unknown>) => {
      const fd = (Fs.openSync as (...args: Array<unknown>) => number)(path, ...rest)
      paths.set(fd, String(path))
      return fd
    }) as typeof Fs.openSync,
    fsyncSync: (fd) => {
      Fs.fsyncSync(fd)
      log.push(`fsync ${paths.get(fd)}`)
    },
    writeSync: ((fd: number, ...rest: Array<unknown>) => {
      const written = (Fs.writeSync as (...args: Array<unknown>) => number)(fd, ...rest)
      log.push(`write ${paths.get(fd)}`)
      return written
    }) as typeof Fs.writeSync,
    renameSync: (from, to) => {
      Fs.renameSync(from, to)
      log.push(`rename ${String(from)} ${String(to)}`)
    }
  }
}

describe("FileSystemCacheStore", () => {
  it("the index's fast CacheEntry is the same object as a constructed one", () => {
    const fields = {
      id: "0b6f8a4e-1f5e-4c8e-9b1a-2a3b4c5d6e7f",
      key: keyOf(1),
      videoId: "v" as Domain.VideoId,
      rallyIndex: 1,
      mode: "copy" as const,
      clipStart: 1,
      clipEnd: 2,
      createdAt: 1,
      accessedAt: 2,
      sizeBytes: 3,
      priority: "low" as const,
      validation: "unchecked" as const,
      validatedAt: null
    }
    const constructed = new Domain.CacheEntry(fields)
    const fast = Journal.makeEntry(fields as Domain.CacheEntry)
    expect(fast).toBeInstanceOf(Domain.CacheEntry)
    expect(Equal.equals(fast, constructed)).toBe(true)
    expect(Schema.is(Domain.CacheEntry)(fast)).toBe(true)
    expect(Object.getOwnPropertyNames(fast).sort()).toEqual(Object.getOwnPropertyNames(constructed).sort())
    const line = Journal.encodeRecord({ o: "p", e: constructed })
    expect(Journal.decodeLine(line)).toEqual({ o: "p", e: constructed })
    expect(Journal.decodeLine(line.replace(keyOf(1), "../../etc/passwd"))).toBeUndefined()
  })

  it.effect("commit, lookup, restart: the entry survives with the same id", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const a = yield* open({ cacheDir })
      const key = keyOf(1)
      const entry = yield* put(a.store, key, 1234, "final-2026", 3)
      expect(entry.sizeBytes).toBe(1234)
      expect(Fs.statSync(a.store.pathOf(key)).size).toBe(1234)
      expect(Option.getOrThrow(yield* a.store.lookup(key)).id).toBe(entry.id)
      expect(yield* a.store.usage).toEqual({ bytes: 1234, entries: 1 })
      // A second reserve finds it committed.
      const again = yield* a.store.reserve(key)
      expect(again._tag).toBe("Cached")
      yield* a.close

      const b = yield* open({ cacheDir })
      expect(b.store.startup.entries).toBe(1)
      expect(b.store.startup.dropped).toEqual([])
      const reloaded = Option.getOrThrow(yield* b.store.lookup(key))
      expect(reloaded).toEqual(entry)
      expect(reloaded.videoId).toBe("final-2026")
      expect(reloaded.rallyIndex).toBe(3)
      yield* b.close
    }).pipe(Effect.provide(services())))

  it.effect("video ids outside ASCII survive a restart (the journal is then decoded as UTF-8)", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const a = yield* open({ cacheDir })
      const ascii = yield* put(a.store, keyOf(1), 10, "plain", 0)
      const accented = yield* put(a.store, keyOf(2), 20, "Finale é – 決勝 🏐", 1)
      yield* a.close

      const b = yield* open({ cacheDir })
      expect(b.store.startup).toMatchObject({ entries: 2, skippedLines: 0, dropped: [] })
      expect(Option.getOrThrow(yield* b.store.lookup(keyOf(1)))).toEqual(ascii)
      expect(Option.getOrThrow(yield* b.store.lookup(keyOf(2)))).toEqual(accented)
      expect(Option.getOrThrow(yield* b.store.lookup(keyOf(2))).videoId).toBe("Finale é – 決勝 🏐")
      yield* b.close
    }).pipe(Effect.provide(services())))

  it.effect("a torn last journal line is dropped and does not swallow the next record", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const a = yield* open({ cacheDir })
      yield* put(a.store, keyOf(1), 100)
      yield* put(a.store, keyOf(2), 200)
      yield* a.close
      const journal = FileSystemCacheStore.layout(cacheDir).journal
      // A crash in the middle of an append.
      Fs.appendFileSync(journal, `{"o":"p","e":{"id":"0b6f`)

      const b = yield* open({ cacheDir })
      expect(b.store.startup.entries).toBe(2)
      yield* put(b.store, keyOf(3), 300)
      yield* b.close

      // The torn bytes were cut off before the append: nothing of them is left.
      const text = Fs.readFileSync(journal, "utf8")
      expect(text).not.toContain(`"id":"0b6f`)
      expect(text.endsWith("\n")).toBe(true)
      const c = yield* open({ cacheDir })
      expect(c.store.startup.entries).toBe(3)
      expect(c.store.startup.skippedLines).toBe(0)
      expect(Option.isSome(yield* c.store.lookup(keyOf(3)))).toBe(true)
      yield* c.close
    }).pipe(Effect.provide(services())))

  it.effect("a journal cut at any byte (a crash mid-append) loads as the state after the last whole record", () =>
    Effect.gen(function*() {
      const source = tempDir()
      const journal = FileSystemCacheStore.layout(source).journal
      const a = yield* open({ cacheDir: source, compactMinLines: 1_000_000 })
      // After each operation: the journal's size and the keys the index must hold.
      const checkpoints: Array<{ readonly size: number; readonly keys: ReadonlyArray<string> }> = [{ size: 0, keys: [] }]
      const live = new Set<string>()
      const step = (key: Domain.CacheKey, present: boolean) => {
        if (present) live.add(key)
        else live.delete(key)
        checkpoints.push({ size: Fs.statSync(journal).size, keys: Array.from(live).sort() })
      }
      const ops: ReadonlyArray<[number, "put" | "remove" | "validate"]> = [
        [0, "put"], [1, "put"], [2, "put"], [1, "remove"], [3, "put"], [0, "validate"], [1, "put"], [2, "remove"],
        [4, "put"], [0, "remove"], [5, "put"], [3, "validate"], [2, "put"]
      ]
      for (const [i, op] of ops) {
        if (op === "put") yield* put(a.store, keyOf(i), 100 + i)
        else if (op === "remove") yield* a.store.remove(keyOf(i), "manual")
        else yield* a.store.markValidated(keyOf(i), "valid")
        step(keyOf(i), op !== "remove")
      }
      yield* a.close
      const bytes = Fs.readFileSync(journal)
      expect(bytes.length).toBe(checkpoints[checkpoints.length - 1]!.size)

      // Every record boundary, one byte either side, and a spread of cuts inside records.
      const cuts = new Set<number>()
      for (const { size } of checkpoints) for (const d of [-1, 0, 1]) cuts.add(Math.min(bytes.length, Math.max(0, size + d)))
      for (let c = 7; c < bytes.length; c += 97) cuts.add(c)
      let checked = 0
      for (const cut of cuts) {
        const cacheDir = tempDir()
        const dirs = FileSystemCacheStore.layout(cacheDir)
        Fs.mkdirSync(dirs.clips, { recursive: true })
        for (let i = 0; i < 6; i++) Fs.writeFileSync(Path.join(dirs.clips, `${keyOf(i)}.mp4`), Buffer.alloc(100 + i))
        Fs.writeFileSync(dirs.journal, bytes.subarray(0, cut))
        const expected = checkpoints.filter((c) => c.size <= cut).pop()!.keys
        const b = yield* open({ cacheDir })
        expect((yield* b.store.list).map((e) => e.key).sort(), `cut at ${cut}`).toEqual(expected)
        expect(b.store.startup.dropped, `cut at ${cut}`).toEqual([])
        checked++
        {
          // The next append after the torn line is kept.
          yield* put(b.store, keyOf(9), 9)
          yield* b.close
          const c = yield* open({ cacheDir })
          expect((yield* c.store.list).map((e) => e.key).sort(), `append after cut at ${cut}`).toEqual(
            [...expected, keyOf(9)].sort()
          )
          yield* c.close
        }
        Fs.rmSync(cacheDir, { recursive: true, force: true })
      }
      expect(checked).toBeGreaterThan(40)
    }).pipe(Effect.provide(services())), 60_000)

  it.effect("start-up removes partial files, but not those of a key a live process is exporting", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const dirs = FileSystemCacheStore.layout(cacheDir)
      const a = yield* open({ cacheDir })
      yield* a.close
      const dead = Path.join(dirs.tmp, `${keyOf(1)}.0f0e5a4c-5a0b-4a8c-9a53-2bd7d1f0a001.part`)
      const stray = Path.join(dirs.tmp, "something-else")
      const live = Path.join(dirs.tmp, `${keyOf(2)}.0f0e5a4c-5a0b-4a8c-9a53-2bd7d1f0a002.part`)
      for (const path of [dead, stray, live]) Fs.writeFileSync(path, "partial")
      // This process holds key 2, as a running export would.
      const token = Lock.tryAcquire(Path.join(dirs.locks, `${keyOf(2)}.lock`))
      expect(token).toBeDefined()

      const b = yield* open({ cacheDir })
      expect(b.store.startup.removedTemp).toBe(2)
      expect(Fs.existsSync(dead)).toBe(false)
      expect(Fs.existsSync(stray)).toBe(false)
      expect(Fs.existsSync(live)).toBe(true)
      yield* b.close
      Lock.release(Path.join(dirs.locks, `${keyOf(2)}.lock`), token!)
    }).pipe(Effect.provide(services())))

  it.effect.each(["startup", "background"] as const)(
    "reconciling (%s) drops entries whose clip is missing or has the wrong size",
    (reconcile) =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const a = yield* open({ cacheDir })
      for (const i of [1, 2, 3]) yield* put(a.store, keyOf(i), 1000 * i)
      yield* a.close
      Fs.rmSync(a.store.pathOf(keyOf(1)))
      Fs.truncateSync(a.store.pathOf(keyOf(2)), 700)

      const events = yield* CacheEvent.CacheEvents
      const subscription = yield* events.subscribe
      const b = yield* open({ cacheDir, reconcile })
      const found = reconcile === "startup" ? b.store.startup : yield* b.store.reconciled
      expect(found.dropped.map((d) => d.key).sort()).toEqual([keyOf(1), keyOf(2)].sort())
      expect(found.dropped.find((d) => d.key === keyOf(2))?.reason).toContain("700 bytes")
      expect(Fs.existsSync(b.store.pathOf(keyOf(2)))).toBe(false)
      expect((yield* b.store.list).map((e) => e.key)).toEqual([keyOf(3)])
      expect(yield* b.store.usage).toEqual({ bytes: 3000, entries: 1 })
      const published = yield* collect(subscription.pipe(Stream.take(2)))
      expect(published.map((e) => e._tag)).toEqual(["EntryInvalid", "EntryInvalid"])
      yield* b.close

      // The drops were journaled: the next start has nothing to fix.
      const c = yield* open({ cacheDir, reconcile })
      expect((yield* c.store.reconciled).dropped).toEqual([])
      expect(c.store.startup.entries).toBe(1)
      yield* c.close
    }).pipe(Effect.provide(services()), Effect.scoped))

  it.effect.each(["startup", "background"] as const)(
    "reconciling (%s) removes clip files the index does not know, and leaves foreign files alone",
    (reconcile) =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const dirs = FileSystemCacheStore.layout(cacheDir)
      const a = yield* open({ cacheDir })
      yield* put(a.store, keyOf(1), 100)
      yield* a.close
      const unknown = Path.join(dirs.clips, `${keyOf(9)}.mp4`)
      const foreign = Path.join(dirs.clips, "notes.txt")
      // Shaped like a clip name, but not a key (upper case): not ours either.
      const lookalike = Path.join(dirs.clips, `${keyOf(8).toUpperCase()}.mp4`)
      Fs.writeFileSync(unknown, "a clip without an entry")
      Fs.writeFileSync(foreign, "not ours")
      Fs.writeFileSync(lookalike, "not ours")

      const b = yield* open({ cacheDir, reconcile })
      const found = yield* b.store.reconciled
      expect(found.removedUnknown).toBe(1)
      expect(Fs.existsSync(unknown)).toBe(false)
      expect(Fs.existsSync(foreign)).toBe(true)
      expect(Fs.existsSync(lookalike)).toBe(true)
      expect(found.dropped).toEqual([])
      expect(b.store.startup.entries).toBe(1)
      yield* b.close
    }).pipe(Effect.provide(services())))

  it.effect.each(["startup", "background"] as const)(
    "clips are named after their container; a restart (%s) keeps webm, mkv and older mp4 entries and removes unknown ones",
    (reconcile) =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const dirs = FileSystemCacheStore.layout(cacheDir)
      const a = yield* open({ cacheDir })
      const putIn = (key: Domain.CacheKey, bytes: number, container: Domain.Container | undefined) =>
        Effect.gen(function*() {
          const result = yield* a.store.reserve(key)
          if (result._tag !== "Reserved") throw new Error("expected a reservation")
          // The exporter writes to finalPath; commit names the clip after its container.
          Fs.writeFileSync(result.reservation.finalPath, Buffer.alloc(bytes, 7))
          return yield* a.store.commit(result.reservation, { ...newEntry("match", 0, bytes), container })
        })
      yield* putIn(keyOf(1), 100, "webm")
      yield* putIn(keyOf(2), 200, "mkv")
      yield* putIn(keyOf(3), 300, undefined)
      const names = () => Fs.readdirSync(dirs.clips).sort()
      expect(names()).toEqual([`${keyOf(1)}.webm`, `${keyOf(2)}.mkv`, `${keyOf(3)}.mp4`].sort())
      expect(a.store.pathOf(keyOf(1))).toBe(Path.join(dirs.clips, `${keyOf(1)}.webm`))
      expect(Option.isSome(yield* a.store.lookup(keyOf(1)))).toBe(true)
      yield* a.close
      // Unknown clips: a key without an entry, and a known key under another container's name.
      Fs.writeFileSync(Path.join(dirs.clips, `${keyOf(9)}.webm`), "no entry")
      Fs.writeFileSync(Path.join(dirs.clips, `${keyOf(1)}.mkv`), "not the entry's clip")

      const b = yield* open({ cacheDir, reconcile })
      const found = yield* b.store.reconciled
      expect(found.dropped).toEqual([])
      expect(found.removedUnknown).toBe(2)
      expect(names()).toEqual([`${keyOf(1)}.webm`, `${keyOf(2)}.mkv`, `${keyOf(3)}.mp4`].sort())
      for (const [i, container] of [[1, "webm"], [2, "mkv"], [3, undefined]] as const) {
        const entry = Option.getOrThrow(yield* b.store.lookup(keyOf(i)))
        expect(entry.container).toBe(container)
        expect(Fs.statSync(b.store.pathOf(keyOf(i))).size).toBe(100 * i)
      }
      // Eviction removes the file under the container's name.
      expect(yield* b.store.remove(keyOf(1), "manual")).toBe(true)
      expect(names()).toEqual([`${keyOf(2)}.mkv`, `${keyOf(3)}.mp4`].sort())
      yield* b.close
    }).pipe(Effect.provide(services())))

  it.effect("the background sweep checks what it found again under the index lock: a commit after its listing is kept", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const dirs = FileSystemCacheStore.layout(cacheDir)
      const a = yield* open({ cacheDir })
      for (const i of [1, 2, 3]) yield* put(a.store, keyOf(i), 100 * i)
      yield* a.close
      // The sweep's listing of clips/ misses clip 1 (as if committed after the listing), and its
      // first stat of clip 2 sees another size (as if replaced meanwhile); clip 3 really is gone.
      Fs.rmSync(a.store.pathOf(keyOf(3)))
      let staleStat = true
      const fs: FileSystemCacheStore.SyncFs = {
        ...Fs,
        readdirSync: ((path: Fs.PathLike, options?: unknown) => {
          const names = (Fs.readdirSync as (p: Fs.PathLike, o?: unknown) => Array<string>)(path, options)
          return path === dirs.clips ? names.filter((name) => name !== `${keyOf(1)}.mp4`) : names
        }) as typeof Fs.readdirSync,
        statSync: ((path: Fs.PathLike, options?: Fs.StatSyncOptions) => {
          const stat = Fs.statSync(path, options)
          if (staleStat && path === a.store.pathOf(keyOf(2)) && stat !== undefined) {
            staleStat = false
            return { ...stat, size: 1 }
          }
          return stat
        }) as typeof Fs.statSync
      }
      const b = yield* open({ cacheDir, fs, reconcile: "background" })
      const found = yield* b.store.reconciled
      expect(found.dropped.map((d) => d.key)).toEqual([keyOf(3)])
      expect(staleStat).toBe(false)
      expect((yield* b.store.list).map((e) => e.key).sort()).toEqual([keyOf(1), keyOf(2)].sort())
      expect(Fs.statSync(b.store.pathOf(keyOf(2))).size).toBe(200)
      yield* b.close
    }).pipe(Effect.provide(services())))

  it.effect("the quick validation of a lookup finds a truncated clip, drops it and reports it", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const events = yield* CacheEvent.CacheEvents
      const subscription = yield* events.subscribe
      const a = yield* open({ cacheDir })
      const key = keyOf(1)
      yield* put(a.store, key, 4000)
      Fs.truncateSync(a.store.pathOf(key), 2000)
      expect(Option.isNone(yield* a.store.lookup(key))).toBe(true)
      const [invalid, evicted] = yield* collect(subscription.pipe(Stream.take(2)))
      expect(invalid).toMatchObject({ _tag: "EntryInvalid", key })
      expect(evicted).toMatchObject({ _tag: "Evicted", key, reason: "invalid" })
      expect(Fs.existsSync(a.store.pathOf(key))).toBe(false)
      expect(yield* a.store.list).toEqual([])
      expect((yield* (yield* Metrics.Metrics).snapshot).evictions.invalid).toBe(1)
      // The key is free to be exported again.
      expect((yield* a.store.reserve(key))._tag).toBe("Reserved")
      yield* a.close
    }).pipe(Effect.provide(services()), Effect.scoped))

  it.effect("an entry older than maxAge fails the quick validation (TestClock)", () =>
    Effect.gen(function*() {
      const a = yield* open({ cacheDir: tempDir() })
      yield* put(a.store, keyOf(1), 100)
      yield* TestClock.adjust(Duration.days(1))
      expect(Option.isSome(yield* a.store.lookup(keyOf(1)))).toBe(true) // exactly maxAge: kept
      yield* TestClock.adjust(Duration.millis(1))
      expect(Option.isNone(yield* a.store.lookup(keyOf(1)))).toBe(true)
      expect((yield* (yield* Metrics.Metrics).snapshot).evictions.age).toBe(1)
      yield* a.close
    }).pipe(Effect.provide(services({ maxAge: "1 day" }))))

  it.effect("age counts from creation: a clip used an hour ago still expires a day after it was made", () =>
    Effect.gen(function*() {
      const a = yield* open({ cacheDir: tempDir() })
      yield* put(a.store, keyOf(1), 100)
      yield* put(a.store, keyOf(2), 100)
      yield* TestClock.adjust(Duration.hours(23))
      yield* a.store.touch(keyOf(1))
      yield* TestClock.adjust(Duration.millis(3600 * 1000 + 1))
      // Used an hour ago, created a day and a millisecond ago: both rules (lookup and enforce) expire it.
      expect(Option.isNone(yield* a.store.lookup(keyOf(1)))).toBe(true)
      expect((yield* a.store.enforce).map((e) => [e.entry.key, e.reason])).toEqual([[keyOf(2), "age"]])
      yield* a.close
    }).pipe(Effect.provide(services({ maxAge: "1 day" }))))

  it.effect("enforce evicts least recently used entries down to maxBytes, never a pinned one", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const a = yield* open({ cacheDir })
      for (let i = 0; i < 5; i++) {
        yield* put(a.store, keyOf(i), 1000, "match", i)
        yield* TestClock.adjust(Duration.seconds(1))
      }
      // Rally 1 is used again: it becomes the most recently used.
      yield* a.store.touch(keyOf(1))
      const scope = yield* Scope.make()
      yield* a.store.pin(keyOf(0)).pipe(Scope.extend(scope))
      const evicted = yield* a.store.enforce
      expect(evicted.map((e) => [e.entry.rallyIndex, e.reason])).toEqual([[2, "size"], [3, "size"]])
      expect((yield* a.store.usage).bytes).toBeLessThanOrEqual(3000)
      expect(Fs.existsSync(a.store.pathOf(keyOf(0)))).toBe(true)
      expect(Fs.existsSync(a.store.pathOf(keyOf(2)))).toBe(false)
      // Unpinned, the oldest goes next.
      yield* Scope.close(scope, Exit.void)
      yield* put(a.store, keyOf(5), 1000, "match", 5)
      const next = yield* a.store.enforce
      expect(next.map((e) => e.entry.rallyIndex)).toEqual([0])
      yield* a.close

      const b = yield* open({ cacheDir })
      expect((yield* b.store.list).map((e) => e.rallyIndex).sort()).toEqual([1, 4, 5])
      expect(b.store.startup.dropped).toEqual([])
      yield* b.close
    }).pipe(Effect.provide(services({ maxBytes: 3000 }))))

  it.effect("enforce keeps the per-video limit", () =>
    Effect.gen(function*() {
      const a = yield* open({ cacheDir: tempDir() })
      for (let i = 0; i < 4; i++) {
        yield* put(a.store, keyOf(i), 10, "a", i)
        yield* put(a.store, keyOf(100 + i), 10, "b", i)
        yield* TestClock.adjust(Duration.seconds(1))
      }
      const evicted = yield* a.store.enforce
      expect(evicted.every((e) => e.reason === "per-video")).toBe(true)
      const left = yield* a.store.list
      expect(left.filter((e) => e.videoId === "a").map((e) => e.rallyIndex).sort()).toEqual([2, 3])
      expect(left.filter((e) => e.videoId === "b").map((e) => e.rallyIndex).sort()).toEqual([2, 3])
      yield* a.close
    }).pipe(Effect.provide(services({ maxEntriesPerVideo: 2 }))))

  it.effect("touches and validation results are batched to the journal and survive a restart", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const a = yield* open({ cacheDir })
      yield* put(a.store, keyOf(1), 10)
      yield* TestClock.adjust(Duration.seconds(30))
      yield* a.store.touch(keyOf(1))
      yield* a.store.markValidated(keyOf(1), "valid")
      yield* a.close
      const b = yield* open({ cacheDir })
      const entry = Option.getOrThrow(yield* b.store.lookup(keyOf(1)))
      expect(entry.accessedAt).toBe(30_000)
      expect(entry.validation).toBe("valid")
      expect(entry.validatedAt).toBe(30_000)
      yield* b.close
    }).pipe(Effect.provide(services())))

  it.effect("compaction rewrites the journal; another open store notices and reloads", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const journal = FileSystemCacheStore.layout(cacheDir).journal
      const a = yield* open({ cacheDir, compactMinLines: 20, compactFactor: 2 })
      const b = yield* open({ cacheDir, compactMinLines: 20, compactFactor: 2 })
      for (let i = 0; i < 5; i++) yield* put(a.store, keyOf(i), 10 + i)
      expect((yield* b.store.list).length).toBe(5)
      const inode = Fs.statSync(journal).ino
      for (let round = 0; round < 10; round++) {
        yield* TestClock.adjust(Duration.seconds(1))
        for (let i = 0; i < 5; i++) yield* a.store.touch(keyOf(i))
        yield* a.store.flush
      }
      expect(Fs.statSync(journal).ino).not.toBe(inode)
      expect(Fs.readFileSync(journal, "utf8").trim().split("\n").length).toBeLessThan(20)
      // b read the old journal before; it follows the new one.
      yield* put(b.store, keyOf(9), 99)
      const seen = (yield* b.store.list).map((e) => [e.key, e.sizeBytes, e.accessedAt])
      expect(seen.sort()).toEqual((yield* a.store.list).map((e) => [e.key, e.sizeBytes, e.accessedAt]).sort())
      expect(seen.length).toBe(6)
      yield* a.close
      yield* b.close
      const c = yield* open({ cacheDir })
      expect(c.store.startup.entries).toBe(6)
      expect(c.store.startup.dropped).toEqual([])
      yield* c.close
    }).pipe(Effect.provide(services())))

  it.effect("two stores on one folder see each other's commits and removals", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const a = yield* open({ cacheDir })
      const b = yield* open({ cacheDir })
      yield* put(a.store, keyOf(1), 10)
      expect(Option.isSome(yield* b.store.lookup(keyOf(1)))).toBe(true)
      expect((yield* b.store.reserve(keyOf(1)))._tag).toBe("Cached")
      expect(yield* b.store.remove(keyOf(1), "manual")).toBe(true)
      expect(Option.isNone(yield* a.store.lookup(keyOf(1)))).toBe(true)
      expect(yield* a.store.remove(keyOf(1), "manual")).toBe(false)
      yield* a.close
      yield* b.close
    }).pipe(Effect.provide(services())))

  it.effect("abort removes the partial and final files and frees the key; commit after abort fails", () =>
    Effect.gen(function*() {
      const a = yield* open({ cacheDir: tempDir() })
      const result = yield* a.store.reserve(keyOf(1))
      if (result._tag !== "Reserved") throw new Error("expected a reservation")
      const { reservation } = result
      expect(Path.dirname(reservation.tempPath)).toBe(a.store.layout.tmp)
      expect(reservation.finalPath).toBe(a.store.pathOf(keyOf(1)))
      Fs.writeFileSync(reservation.tempPath, "half")
      yield* a.store.abort(reservation)
      yield* a.store.abort(reservation) // twice is harmless
      expect(Fs.existsSync(reservation.tempPath)).toBe(false)
      const error = yield* Effect.flip(a.store.commit(reservation, newEntry("v", 0, 4)))
      expect(error._tag).toBe("CacheIOError")
      expect(error.message).toContain("not active")
      expect((yield* a.store.reserve(keyOf(1)))._tag).toBe("Reserved")
      yield* a.close
    }).pipe(Effect.provide(services())))

  it.effect("a commit without a clip at finalPath fails with a typed error and frees the key", () =>
    Effect.gen(function*() {
      const a = yield* open({ cacheDir: tempDir() })
      const result = yield* a.store.reserve(keyOf(1))
      if (result._tag !== "Reserved") throw new Error("expected a reservation")
      const error = yield* Effect.flip(a.store.commit(result.reservation, newEntry("v", 0, 4)))
      expect(error).toMatchObject({ _tag: "CacheIOError", op: "commit", code: "ENOENT" })
      expect(yield* a.store.list).toEqual([])
      expect((yield* a.store.reserve(keyOf(1)))._tag).toBe("Reserved")
      yield* a.close
    }).pipe(Effect.provide(services())))

  it.effect("a second reserve of a key waits for the first writer, then finds its clip", () =>
    Effect.gen(function*() {
      const a = yield* open({ cacheDir: tempDir() })
      const first = yield* a.store.reserve(keyOf(1))
      if (first._tag !== "Reserved") throw new Error("expected a reservation")
      const sleeping = Chunk.size(yield* TestClock.sleeps())
      const waiter = yield* Effect.fork(a.store.reserve(keyOf(1)))
      // It found the key taken and waits to try again; under the TestClock only time moves it on,
      // and however much passes, it keeps waiting while the key is held.
      yield* sleepersAbove(sleeping)
      yield* TestClock.adjust("1 second")
      yield* sleepersAbove(sleeping)
      expect(waiter.unsafePoll()).toBeNull()
      Fs.writeFileSync(first.reservation.tempPath, Buffer.alloc(10))
      Fs.renameSync(first.reservation.tempPath, first.reservation.finalPath)
      const committed = yield* a.store.commit(first.reservation, newEntry("v", 0, 10))
      yield* TestClock.adjust("1 second")
      const second = yield* Fiber.join(waiter)
      expect(second).toEqual({ _tag: "Cached", entry: committed })
      // A waiter can be interrupted.
      const held = yield* a.store.reserve(keyOf(2))
      const interrupted = yield* Effect.fork(a.store.reserve(keyOf(2)))
      yield* sleepersAbove(sleeping)
      yield* Fiber.interrupt(interrupted)
      // Also as the acquire of acquireUseRelease (uninterruptible), wrapped in Effect.interruptible:
      // the wait can be cancelled, and a cancelled wait holds nothing.
      const inAcquire = yield* Effect.fork(
        Effect.acquireUseRelease(Effect.interruptible(a.store.reserve(keyOf(2))), () => Effect.void, () => Effect.void)
      )
      yield* sleepersAbove(sleeping)
      yield* Fiber.interrupt(inAcquire)
      if (held._tag === "Reserved") yield* a.store.abort(held.reservation)
      expect((yield* a.store.reserve(keyOf(2)))._tag).toBe("Reserved")
      yield* a.close
    }).pipe(Effect.provide(services())))

  it.effect("commit: the clip's folder is fsynced after its rename and before the journal records the entry", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const a = yield* open({ cacheDir: tempDir(), fs: recordingFs(log) })
      const { clips, journal } = a.store.layout
      yield* put(a.store, keyOf(1), 10)
      for (const container of [undefined, "mkv"] as const) {
        const key = keyOf(container === undefined ? 2 : 3)
        const reserved = yield* a.store.reserve(key)
        if (reserved._tag !== "Reserved") throw new Error("expected a reservation")
        const { reservation } = reserved
        // The exporter's part: the clip written and moved to finalPath.
        Fs.writeFileSync(reservation.tempPath, Buffer.alloc(10))
        Fs.renameSync(reservation.tempPath, reservation.finalPath)
        log.length = 0
        const entry = yield* a.store.commit(reservation, { ...newEntry("match", 2, 10), container })
        expect(log).toEqual([
          // A clip in another container is renamed to its own name first.
          ...(container === undefined ? [] : [`rename ${reservation.finalPath} ${a.store.pathOf(entry.key)}`]),
          `fsync ${clips}`,
          `write ${journal}`,
          `fsync ${journal}`
        ])
      }
      yield* a.close
    }).pipe(Effect.provide(services())))

  it.effect("an EIO on the journal's fsync fails the commit with a typed error; the folder stays consistent", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      let failFsync = false
      const faulty: FileSystemCacheStore.SyncFs = {
        ...Fs,
        fsyncSync: (fd) => {
          if (failFsync && Fs.fstatSync(fd).isFile()) throw Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" })
          return Fs.fsyncSync(fd)
        }
      }
      const a = yield* open({ cacheDir, fs: faulty })
      yield* put(a.store, keyOf(1), 10)
      failFsync = true
      const error = yield* Effect.flip(put(a.store, keyOf(2), 20))
      expect(error).toMatchObject({ _tag: "CacheIOError", code: "EIO" })
      expect(error.message).not.toContain("\n")
      // The unrecorded clip is gone and the key is free again.
      expect(Fs.existsSync(a.store.pathOf(keyOf(2)))).toBe(false)
      // Nothing of the failed append stays in the journal (the write itself succeeded).
      expect(Fs.readFileSync(a.store.layout.journal, "utf8")).not.toContain(keyOf(2))
      failFsync = false
      yield* put(a.store, keyOf(2), 20)
      yield* a.close
      const b = yield* open({ cacheDir })
      expect(b.store.startup).toMatchObject({ entries: 2, dropped: [], removedUnknown: 0 })
      yield* b.close
    }).pipe(Effect.provide(services())))

  it.effect("an I/O error in the quick validation is a miss, not a defect, and does not drop the entry", () =>
    Effect.gen(function*() {
      let failStat = false
      const faulty: FileSystemCacheStore.SyncFs = {
        ...Fs,
        statSync: ((path: Fs.PathLike, options?: Fs.StatSyncOptions) => {
          if (failStat && String(path).endsWith(".mp4")) {
            throw Object.assign(new Error("EIO: i/o error, stat"), { code: "EIO" })
          }
          return Fs.statSync(path, options)
        }) as typeof Fs.statSync
      }
      const a = yield* open({ cacheDir: tempDir(), fs: faulty })
      yield* put(a.store, keyOf(1), 10)
      failStat = true
      expect(Option.isNone(yield* a.store.lookup(keyOf(1)))).toBe(true)
      expect((yield* Effect.flip(a.store.reserve(keyOf(1))))._tag).toBe("CacheIOError")
      failStat = false
      expect(Option.isSome(yield* a.store.lookup(keyOf(1)))).toBe(true)
      yield* a.close
    }).pipe(Effect.provide(services())))

  it.live("a hung holder of the index lock makes writes fail with a typed error after the timeout, then work again", () =>
    Effect.gen(function*() {
      const a = yield* open({ cacheDir: tempDir(), indexLockTimeout: "150 millis" })
      yield* put(a.store, keyOf(1), 10)
      const token = Lock.tryAcquire(a.store.layout.indexLock)
      expect(token).toBeDefined()
      const error = yield* Effect.flip(a.store.remove(keyOf(1), "manual"))
      expect(error).toMatchObject({ _tag: "CacheIOError", op: "remove" })
      expect(error.message).toContain("index lock")
      Lock.release(a.store.layout.indexLock, token!)
      expect(yield* a.store.remove(keyOf(1), "manual")).toBe(true)
      yield* a.close
    }).pipe(Effect.provide(services())))

  it.effect("a video id like ../../etc never reaches a path; nothing is written outside cacheDir", () =>
    Effect.gen(function*() {
      const parent = tempDir()
      const cacheDir = Path.join(parent, "cache")
      const a = yield* open({ cacheDir })
      const entry = yield* put(a.store, keyOf(1), 10, "../../etc", 0)
      expect(entry.videoId).toBe("../../etc")
      expect(Path.dirname(a.store.pathOf(keyOf(1)))).toBe(Path.join(cacheDir, "clips"))
      expect(() => a.store.pathOf("../../etc/passwd" as Domain.CacheKey)).toThrow(/not a cache key/)
      const exit = yield* Effect.exit(a.store.reserve("../x" as Domain.CacheKey))
      expect(Exit.isFailure(exit) && !Exit.isInterrupted(exit)).toBe(true)
      yield* a.close
      expect(Fs.readdirSync(parent)).toEqual(["cache"])
    }).pipe(Effect.provide(services())))

  it.live("read-only: reads what a writer committed, takes no lock, repairs nothing, refuses writes", () =>
    Effect.gen(function*() {
      const cacheDir = tempDir()
      const writer = yield* open({ cacheDir })
      yield* put(writer.store, keyOf(1), 100)
      yield* writer.close
      // Leftovers start-up would repair: a part file and an unknown clip.
      const dirs = FileSystemCacheStore.layout(cacheDir)
      Fs.writeFileSync(Path.join(dirs.tmp, `${keyOf(2)}.x.part`), "part")
      Fs.writeFileSync(Path.join(dirs.clips, `${keyOf(3)}.mp4`), "unknown")
      const names = () => [dirs.tmp, dirs.clips, dirs.locks].map((d) => Fs.readdirSync(d).sort())
      const before = names()

      const result = yield* Effect.gen(function*() {
        const store = yield* FileSystemCacheStore.makeReadOnly({ cacheDir })
        const listed = yield* store.list
        const hit = yield* store.lookup(keyOf(1))
        const reserve = yield* Effect.flip(store.reserve(keyOf(4)))
        const remove = yield* Effect.flip(store.remove(keyOf(1), "manual"))
        return { listed, hit, reserve, remove, usage: yield* store.usage }
      }).pipe(Effect.scoped)
      expect(result.listed.map((e) => e.key)).toEqual([keyOf(1)])
      expect(Option.isSome(result.hit)).toBe(true)
      expect(result.usage).toEqual({ entries: 1, bytes: 100 })
      expect(result.reserve.message).toMatch(/read-only/)
      expect(result.remove.message).toMatch(/read-only/)
      expect(names()).toEqual(before)

      // A folder that does not exist reads as empty and is not created.
      const missing = Path.join(cacheDir, "not-there")
      const empty = yield* FileSystemCacheStore.makeReadOnly({ cacheDir: missing }).pipe(
        Effect.flatMap((store) => store.list),
        Effect.scoped
      )
      expect(empty).toEqual([])
      expect(Fs.existsSync(missing)).toBe(false)
      Fs.rmSync(cacheDir, { recursive: true, force: true })
    }).pipe(Effect.provide(services())))
})
