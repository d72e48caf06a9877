import { Clock, Deferred, Duration, Effect, Option } from "effect"
import { EntryInvalid, Evicted } from "../CacheEvent.js"
import type { CacheEventsShape } from "../CacheEvent.js"
import type { CacheStoreShape, Eviction, NewEntry, Reservation, ReserveResult } from "../CacheStore.js"
import { clipFileName, makeEntry, pinCounted } from "../CacheStore.js"
import type { RallyCacheConfig } from "../Config.js"
import { CacheEntry } from "../Domain.js"
import type { CacheKey, Container, EvictionReason } from "../Domain.js"
import { CacheIOError } from "../Errors.js"
import type { MemoryFile, MemoryFileSystemShape } from "../MemoryFileSystem.js"
import type { MetricsShape } from "../Metrics.js"
import { planEviction } from "../Eviction.js"
import { randomUUID } from "./uuid.js"

interface Lock {
  readonly tempPath: string
  readonly released: Deferred.Deferred<void>
}

interface Problem {
  readonly why: string
  readonly reason: EvictionReason
}

/** @internal */
export interface Deps {
  readonly config: RallyCacheConfig
  readonly events: CacheEventsShape
  readonly metrics: MetricsShape
  readonly fs: MemoryFileSystemShape
  readonly root: string
}

/** @internal */
export const make = ({ config, events, fs, metrics, root }: Deps): CacheStoreShape => {
  const maxAgeMillis = Duration.toMillis(config.maxAge)
  const entries = new Map<CacheKey, CacheEntry>()
  const pins = new Map<CacheKey, number>()
  const locks = new Map<CacheKey, Lock>()
  let bytes = 0

  const clipPath = (key: CacheKey, container: Container | undefined): string =>
    `${root}/clips/${clipFileName(key, container)}`
  const pathOf = (key: CacheKey): string => clipPath(key, entries.get(key)?.container)
  const fileOf = (entry: CacheEntry): string => clipPath(entry.key, entry.container)

  // The quick validation of the hot path: file present, size as recorded,
  // not marked invalid, not older than maxAge. A pinned entry is exempt from
  // the age rule only, like in `planEviction`: it is being watched, and a
  // broken file is useless even then.
  const quickCheck = (entry: CacheEntry, file: Option.Option<MemoryFile>, now: number): Problem | undefined => {
    if (Option.isNone(file)) return { why: "clip file is missing", reason: "invalid" }
    if (file.value.sizeBytes !== entry.sizeBytes) {
      return {
        why: `clip file is ${file.value.sizeBytes} bytes, the index says ${entry.sizeBytes}`,
        reason: "invalid"
      }
    }
    if (entry.validation === "invalid") return { why: "a deep validation found the clip broken", reason: "invalid" }
    if (now - entry.createdAt > maxAgeMillis && !pins.has(entry.key)) {
      return { why: `clip is older than maxAge (${Duration.format(config.maxAge)})`, reason: "age" }
    }
    return undefined
  }

  const reportUsage = Effect.suspend(() => metrics.usage(bytes, entries.size))

  // Removes the entry only if it is still the same one (same id): while we
  // looked at its file, another fiber may have replaced it.
  const drop = (entry: CacheEntry): boolean => {
    const current = entries.get(entry.key)
    if (current === undefined || current.id !== entry.id) return false
    entries.delete(entry.key)
    bytes -= current.sizeBytes
    return true
  }

  const evicted = (entry: CacheEntry, reason: EvictionReason) =>
    Effect.zipRight(
      events.publish(new Evicted({ key: entry.key, videoId: entry.videoId, rallyIndex: entry.rallyIndex, reason })),
      metrics.evicted(reason)
    )

  const invalidate = (entry: CacheEntry, problem: Problem) =>
    Effect.suspend(() => {
      if (!drop(entry)) return Effect.void
      return Effect.all([
        fs.remove(fileOf(entry)),
        events.publish(new EntryInvalid({ key: entry.key, reason: problem.why })),
        evicted(entry, problem.reason),
        reportUsage
      ], { discard: true })
    })

  const lookup = (key: CacheKey): Effect.Effect<Option.Option<CacheEntry>> =>
    Effect.suspend(() => {
      const entry = entries.get(key)
      if (entry === undefined) return Effect.succeedNone
      return Effect.flatMap(Effect.zip(fs.stat(fileOf(entry)), Clock.currentTimeMillis), ([file, now]) => {
        const problem = quickCheck(entry, file, now)
        return problem === undefined ? Effect.succeedSome(entry) : Effect.as(invalidate(entry, problem), Option.none())
      })
    })

  const update = (key: CacheKey, f: (entry: CacheEntry) => CacheEntry) =>
    Effect.sync(() => {
      const entry = entries.get(key)
      if (entry !== undefined) entries.set(key, f(entry))
    })

  // Entries are rebuilt without re-validating: only times and statuses change.
  const rebuild = (entry: CacheEntry, patch: Partial<CacheEntry>): CacheEntry =>
    new CacheEntry({ ...entry, ...patch }, { disableValidation: true })

  const touch = (key: CacheKey) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      update(key, (entry) => entry.accessedAt >= now ? entry : rebuild(entry, { accessedAt: now })))

  type Step =
    | { readonly _tag: "Retry" }
    | { readonly _tag: "Wait"; readonly lock: Lock }
    | { readonly _tag: "Reserved"; readonly reservation: Reservation }

  const reserve = (key: CacheKey): Effect.Effect<ReserveResult, CacheIOError> =>
    Effect.gen(function*() {
      while (true) {
        const cached = yield* lookup(key)
        if (Option.isSome(cached)) return { _tag: "Cached", entry: cached.value } as const
        const released = yield* Deferred.make<void>()
        const id = yield* randomUUID
        // Check and take the lock in one synchronous step, so no commit can
        // slip in between (another fiber's commit makes us look up again).
        const step = ((): Step => {
          if (entries.has(key)) return { _tag: "Retry" }
          const held = locks.get(key)
          if (held !== undefined) return { _tag: "Wait", lock: held }
          const reservation: Reservation = { key, tempPath: `${root}/tmp/${key}.${id}.part`, finalPath: clipPath(key, undefined) }
          locks.set(key, { tempPath: reservation.tempPath, released })
          return { _tag: "Reserved", reservation }
        })()
        if (step._tag === "Reserved") return { _tag: "Reserved", reservation: step.reservation } as const
        if (step._tag === "Wait") yield* Deferred.await(step.lock.released)
      }
    })

  // Releases the lock when `reservation` still holds it; `false` for a stale one.
  const release = (reservation: Reservation): Effect.Effect<boolean> =>
    Effect.suspend(() => {
      const lock = locks.get(reservation.key)
      if (lock === undefined || lock.tempPath !== reservation.tempPath) return Effect.succeed(false)
      locks.delete(reservation.key)
      return Effect.as(Deferred.succeed(lock.released, undefined), true)
    })

  const abort = (reservation: Reservation): Effect.Effect<void> =>
    Effect.gen(function*() {
      yield* fs.remove(reservation.tempPath)
      const held = yield* release(reservation)
      // A clip moved into place but never committed is an orphan: no index
      // entry will ever account for its bytes.
      if (held && !entries.has(reservation.key)) yield* fs.remove(reservation.finalPath)
    })

  const commit = (reservation: Reservation, input: NewEntry): Effect.Effect<CacheEntry, CacheIOError> =>
    Effect.gen(function*() {
      const lock = locks.get(reservation.key)
      // The exporter chose the container: the clip is named after it.
      const finalPath = clipPath(reservation.key, input.container)
      const fail = (reason: string) =>
        abort(reservation).pipe(
          Effect.zipRight(fs.remove(finalPath)),
          Effect.zipRight(new CacheIOError({ op: "commit", path: finalPath, reason }))
        )
      if (lock === undefined || lock.tempPath !== reservation.tempPath) {
        return yield* new CacheIOError({
          op: "commit",
          path: reservation.finalPath,
          reason: "the reservation was already committed or aborted; reserve the key again"
        })
      }
      if (finalPath !== reservation.finalPath) yield* fs.rename(reservation.finalPath, finalPath)
      const file = yield* fs.stat(finalPath)
      if (Option.isNone(file)) return yield* fail("no clip at the final path; move the finished clip there before commit")
      if (file.value.sizeBytes !== input.sizeBytes) {
        return yield* fail(`the clip is ${file.value.sizeBytes} bytes but the export reported ${input.sizeBytes}`)
      }
      const now = yield* Clock.currentTimeMillis
      const id = yield* randomUUID
      const entry = makeEntry(id, reservation.key, input, now)
      const previous = entries.get(entry.key)
      if (previous !== undefined) bytes -= previous.sizeBytes
      entries.set(entry.key, entry)
      bytes += entry.sizeBytes
      yield* release(reservation)
      yield* fs.remove(reservation.tempPath)
      yield* reportUsage
      return entry
    })

  const remove = (key: CacheKey, reason: EvictionReason): Effect.Effect<boolean, CacheIOError> =>
    Effect.gen(function*() {
      const entry = entries.get(key)
      // Dropped before the first yield, so a concurrent commit cannot put a
      // new entry in between and lose its file.
      const path = pathOf(key)
      const dropped = entry !== undefined && drop(entry)
      // The file goes even without an entry: a stray clip must not linger.
      yield* fs.remove(path)
      if (entry === undefined || !dropped) return false
      yield* evicted(entry, reason)
      yield* reportUsage
      return true
    })

  const enforce: Effect.Effect<ReadonlyArray<Eviction>, CacheIOError> = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    const plan = planEviction(
      Array.from(entries.values()),
      { maxBytes: config.maxBytes, maxAge: config.maxAge, maxEntriesPerVideo: config.maxEntriesPerVideo },
      now,
      new Set(pins.keys())
    )
    const done: Array<Eviction> = []
    for (const eviction of plan) {
      if (!drop(eviction.entry)) continue
      yield* fs.remove(fileOf(eviction.entry))
      yield* evicted(eviction.entry, eviction.reason)
      done.push(eviction)
    }
    yield* reportUsage
    return done
  })

  return {
    pathOf,
    lookup,
    has: (key) => Effect.sync(() => entries.has(key)),
    touch,
    reserve,
    commit,
    abort,
    remove,
    list: Effect.sync(() => Array.from(entries.values())),
    usage: Effect.sync(() => ({ bytes, entries: entries.size })),
    markValidated: (key, status) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        update(key, (entry) => rebuild(entry, { validation: status, validatedAt: now }))),
    pin: (key) => pinCounted(pins, key),
    enforce
  }
}
