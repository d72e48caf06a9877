/**
 * The `CacheStore` service keeps clips and their index.
 *
 * Layers:
 * - `@rallycache/node`'s `FileSystemCacheStore.layer`: a crash-safe folder
 *   shared safely by several processes.
 * - `MemoryCacheStore.layer` (or `layerWithFileSystem`): in memory, for tests.
 *
 * Both plan evictions with the same pure `Eviction.planEviction`.
 *
 * @since 0.1.0
 */
import type { Option, Scope } from "effect"
import { Context, Effect, Schema } from "effect"
import type { CacheKey, Container, EvictionReason, ValidationStatus } from "./Domain.js"
import { CacheEntry } from "./Domain.js"
import type { CacheIOError } from "./Errors.js"
import type * as Protocol from "./Protocol.js"

/**
 * A key locked for writing by this process (and, on disk, against other
 * processes): write the clip to `tempPath`, move it to `finalPath`, then
 * `commit`; or `abort`. `finalPath` is `<key>.mp4`: the container is only
 * known once the exporter has chosen it, so `commit` moves a clip of another
 * container to its own name (`clipFileName`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Reservation {
  readonly key: CacheKey
  readonly tempPath: string
  readonly finalPath: string
}

/**
 * The answer to `reserve`: either the key is ours to write, or another
 * writer (maybe another process) committed it while we waited.
 *
 * @since 0.1.0
 * @category models
 */
export type ReserveResult =
  | { readonly _tag: "Reserved"; readonly reservation: Reservation }
  | { readonly _tag: "Cached"; readonly entry: CacheEntry }

/**
 * The file name of a clip in the cache: `<key>.<container>`, with `mp4` for
 * entries recorded without a container.
 *
 * @since 0.1.0
 * @category paths
 */
export const clipFileName = (key: CacheKey, container: Container | undefined): string =>
  `${key}.${container ?? "mp4"}`

/**
 * What `commit` records about a new clip: a `CacheEntry` without the fields
 * the store fills in (its id and key, its times and its validation).
 *
 * @since 0.2.0
 * @category models
 */
export const NewEntry = Schema.Struct(CacheEntry.fields).pipe(
  Schema.omit("id", "key", "createdAt", "accessedAt", "validation", "validatedAt")
)

/**
 * @since 0.1.0
 * @category models
 */
export type NewEntry = typeof NewEntry.Type

/**
 * The entry `commit` records for a new clip: created and last used `now`,
 * not deep-validated yet. Every store builds it the same way.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeEntry = (id: string, key: CacheKey, input: NewEntry, now: number): CacheEntry => {
  // Optional fields given as `undefined` are left out, as a decoded entry has them.
  const fields: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(input)) if (value !== undefined) fields[name] = value
  return new CacheEntry({
    ...(fields as NewEntry),
    id,
    key,
    createdAt: now,
    accessedAt: now,
    validation: "unchecked",
    validatedAt: null
  })
}

/**
 * One entry that left the cache, and why.
 *
 * @since 0.1.0
 * @category models
 */
export interface Eviction {
  readonly entry: CacheEntry
  readonly reason: EvictionReason
}

/**
 * Bytes and entries in use.
 *
 * @since 0.1.0
 * @category models
 */
export type Usage = Protocol.Usage

/**
 * @since 0.1.0
 * @category models
 */
export interface CacheStoreShape {
  /**
   * Path of the clip of `key` (whether or not it exists): named after the
   * container of its entry, `<key>.mp4` when there is none.
   */
  readonly pathOf: (key: CacheKey) => string
  /**
   * The entry of `key` if it passes the quick validation (file exists, size
   * matches, age within maxAge). An entry that fails is removed and reported
   * as `EntryInvalid`. This is the hot path: no mailbox, no async I/O.
   */
  readonly lookup: (key: CacheKey) => Effect.Effect<Option.Option<CacheEntry>>
  /**
   * Whether the in-memory index holds `key`, without touching the disk:
   * planning (navigation) decides from it; `lookup` checks the file.
   */
  readonly has: (key: CacheKey) => Effect.Effect<boolean>
  /** Mark `key` used now, for LRU. Batched: cheap to call on every hit. */
  readonly touch: (key: CacheKey) => Effect.Effect<void>
  /** Lock `key` for writing; waits while another writer holds it. */
  readonly reserve: (key: CacheKey) => Effect.Effect<ReserveResult, CacheIOError>
  /**
   * Record a clip that is complete at `reservation.finalPath` (moved to
   * `clipFileName(key, entry.container)` first), and release the lock.
   */
  readonly commit: (reservation: Reservation, entry: NewEntry) => Effect.Effect<CacheEntry, CacheIOError>
  /** Remove the temp file and release the lock. Never fails. */
  readonly abort: (reservation: Reservation) => Effect.Effect<void>
  /** Remove an entry and its file. `false` when it was not there. */
  readonly remove: (key: CacheKey, reason: EvictionReason) => Effect.Effect<boolean, CacheIOError>
  /** All entries, in no particular order. */
  readonly list: Effect.Effect<ReadonlyArray<CacheEntry>, CacheIOError>
  readonly usage: Effect.Effect<Usage>
  /** Record the result of a deep validation. */
  readonly markValidated: (key: CacheKey, status: ValidationStatus) => Effect.Effect<void, CacheIOError>
  /**
   * Keep `key` from eviction while the scope is open (the rally being
   * watched, a clip being streamed). Pins are counted: two pins need two
   * releases.
   */
  readonly pin: (key: CacheKey) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Apply age, per-video and size rules now with `Eviction.planEviction`, and
   * return what was evicted.
   */
  readonly enforce: Effect.Effect<ReadonlyArray<Eviction>, CacheIOError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class CacheStore extends Context.Tag("@rallycache/core/CacheStore")<CacheStore, CacheStoreShape>() {}

/**
 * Pin `key` in a store's own count of pins for as long as the scope is open:
 * two pins need two releases, and a key whose count drops to zero leaves the
 * map. Every store keeps its pins this way.
 *
 * @since 0.2.0
 * @category pins
 */
export const pinCounted = (pins: Map<CacheKey, number>, key: CacheKey): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => void pins.set(key, (pins.get(key) ?? 0) + 1)),
    () =>
      Effect.sync(() => {
        const count = (pins.get(key) ?? 1) - 1
        if (count > 0) pins.set(key, count)
        else pins.delete(key)
      })
  )
