/**
 * An in-memory `CacheStore`, for tests, demos and embedders that do not want
 * clips on disk. It keeps its index in a `Map` and its "files" in the
 * shared `MemoryFileSystem`, where `TestExporter` writes clips, so a test
 * can truncate or delete a clip and watch the store's quick validation
 * catch it.
 *
 * It behaves like the disk store where tests can see it: deterministic
 * paths per key, a per-key write lock (`reserve` waits while another fiber
 * holds the key and answers `Cached` when that writer commits), counted
 * pins, eviction through the shared `Eviction.planEviction`, `Evicted` and
 * `EntryInvalid` events, and `Metrics` updates. Every time comes from
 * `Clock`, so `TestClock` drives ages and LRU order.
 *
 * @example
 * ```ts
 * import { CacheEvent, CacheStore, Config, MemoryCacheStore, MemoryFileSystem, Metrics } from "@rallycache/core"
 * import { Effect, Layer } from "effect"
 *
 * const StoreLive = MemoryCacheStore.layer.pipe(
 *   Layer.provideMerge(MemoryFileSystem.MemoryFileSystem.layer),
 *   Layer.provide([Config.CacheConfig.layer({ maxBytes: 10_000_000 }), CacheEvent.CacheEvents.layer(), Metrics.layer])
 * )
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* CacheStore.CacheStore
 *   const evicted = yield* store.enforce
 * }).pipe(Effect.provide(StoreLive))
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Layer } from "effect"
import { CacheEvents } from "./CacheEvent.js"
import type { CacheStoreShape } from "./CacheStore.js"
import { CacheStore } from "./CacheStore.js"
import { CacheConfig } from "./Config.js"
import * as internal from "./internal/memoryCacheStore.js"
import { MemoryFileSystem } from "./MemoryFileSystem.js"
import { Metrics } from "./Metrics.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Prefix of every path the store hands out (default `/rallycache-memory`):
   * clips are `<root>/clips/<key>.<container>`, partial files
   * `<root>/tmp/<key>.<uuid>.part`.
   */
  readonly root?: string | undefined
}

/**
 * A new, empty store.
 *
 * Quick validation (on `lookup` and `reserve`): the clip file exists, its
 * size is the recorded one, the entry was not marked invalid, and it is not
 * older than `maxAge` (pinned entries are exempt from the age rule). A
 * failing entry is removed with its file, and reported twice: an
 * `EntryInvalid` event saying why, and an `Evicted` event (reason `invalid`
 * or `age`) with the matching eviction metric.
 *
 * `commit` checks that the finished clip is at `finalPath` with the reported
 * size; when it is not, the reservation is aborted (lock released, files
 * removed) and the commit fails with `CacheIOError`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options = {}
): Effect.Effect<CacheStoreShape, never, CacheConfig | CacheEvents | Metrics | MemoryFileSystem> =>
  Effect.gen(function*() {
    return internal.make({
      config: yield* CacheConfig,
      events: yield* CacheEvents,
      metrics: yield* Metrics,
      fs: yield* MemoryFileSystem,
      root: options.root ?? "/rallycache-memory"
    })
  })

/**
 * The in-memory store over a `MemoryFileSystem` provided from outside
 * (share it with `TestExporter`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<CacheStore, never, CacheConfig | CacheEvents | Metrics | MemoryFileSystem> = Layer
  .effect(CacheStore, make())

/**
 * The in-memory store with options (see `Options`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: Options
): Layer.Layer<CacheStore, never, CacheConfig | CacheEvents | Metrics | MemoryFileSystem> =>
  Layer.effect(CacheStore, make(options))

/**
 * The in-memory store with a fresh `MemoryFileSystem` of its own, which it
 * also exposes so tests can corrupt or delete clips.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithFileSystem: Layer.Layer<CacheStore | MemoryFileSystem, never, CacheConfig | CacheEvents | Metrics> =
  layer.pipe(Layer.provideMerge(MemoryFileSystem.layer))
