/**
 * `FileSystemCacheStore`: the `CacheStore` of rallycache on disk. A folder
 * that survives crashes and restarts and that several processes (a CLI and a
 * server, say) can share.
 *
 * Layout of `cacheDir`:
 *
 * ```text
 * cacheDir/
 *   index.jsonl        the index: an append-only journal (see the README's design note)
 *   clips/<key>.mp4    complete clips only; keys are 32-hex hashes, never user strings
 *   tmp/               partial files of running exports (<key>.<uuid>.part)
 *   run/               pids of running ffmpeg processes (reaped by the exporter)
 *   locks/             <key>.lock while a key is being exported; index.lock
 * ```
 *
 * The index is reconciled with the folder: partial files of dead exports
 * are removed at start-up; entries whose clip is missing or has the wrong
 * size are dropped, and clip files the index does not know are **removed**
 * (a file named by a hash carries no video, rally or times to serve it
 * with; the next request re-exports it). By default that second part runs
 * as a background sweep after start-up (`reconcile: "background"`; await
 * `store.reconciled` for its findings): every lookup checks its clip's
 * size before serving it anyway, so start-up only reads the journal.
 *
 * @since 0.1.0
 */
import { CacheStore } from "@rallycache/core"
import type { CacheEvent, Config, Errors, Metrics } from "@rallycache/core"
import type { Duration, Scope } from "effect"
import { Effect } from "effect"
import { Context, Layer } from "effect"
import * as internal from "./internal/store/store.js"
import * as readOnly from "./internal/store/storeReadOnly.js"
import type { SyncFs } from "./internal/store/storeJournal.js"

/**
 * Paths of the parts of a cache folder.
 *
 * @since 0.1.0
 * @category models
 */
export type Layout = internal.Layout

/**
 * The paths of the parts of `cacheDir` (absolute).
 *
 * @example
 * ```ts
 * import { FileSystemCacheStore } from "@rallycache/node"
 *
 * FileSystemCacheStore.layout("/var/cache/rallycache").clips // "/var/cache/rallycache/clips"
 * ```
 *
 * @since 0.1.0
 * @category utils
 */
export const layout: (cacheDir: string) => Layout = internal.layout

/**
 * What start-up found and fixed, and how long it took.
 *
 * @since 0.1.0
 * @category models
 */
export type StartupReport = internal.StartupReport

/**
 * What reconciling the index with `clips/` found and fixed.
 *
 * @since 0.1.0
 * @category models
 */
export type Reconciliation = internal.Reconciliation

/**
 * The store: a `CacheStoreShape`, plus its layout, its start-up report and
 * `flush` (write batched touches now).
 *
 * @since 0.1.0
 * @category models
 */
export type FileSystemCacheStore = internal.FileSystemCacheStoreShape

/**
 * The synchronous `node:fs` functions the store calls, to wrap for fault
 * injection.
 *
 * @since 0.1.0
 */
export type { SyncFs }

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The cache folder; created if missing. Nothing is written outside it. */
  readonly cacheDir: string
  /** How often batched `touch`es reach the journal (default 1 second; also on close). */
  readonly touchFlushInterval?: Duration.DurationInput | undefined
  /** The journal is compacted when it has more than this many lines (default 1000)... */
  readonly compactMinLines?: number | undefined
  /** ...and more than `compactFactor` lines per live entry (default 4). */
  readonly compactFactor?: number | undefined
  /** How long to wait for another process's index lock before failing (default 30 seconds). */
  readonly indexLockTimeout?: Duration.DurationInput | undefined
  /** The file operations to use (default `node:fs`); wrap them to inject faults. */
  readonly fs?: SyncFs | undefined
  /**
   * When entries are checked against `clips/`: `"background"` (default) in a
   * sweep after start-up, or `"startup"` before the store opens, so that
   * `startup.dropped` and `startup.removedUnknown` report them.
   */
  readonly reconcile?: "startup" | "background" | undefined
}

/**
 * What the store found and repaired when it opened the folder, as a
 * service: `layerWithStartup` provides it beside the `CacheStore`, for tools
 * that report on a folder (`rallycache cache verify`).
 *
 * @since 0.1.0
 * @category tags
 */
export class Startup extends Context.Tag("@rallycache/node/FileSystemCacheStore/Startup")<Startup, StartupReport>() {}

/**
 * Open (and reconcile) the cache folder. The store lives until the scope
 * closes; closing saves batched touches and releases unfinished reservations.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: Options
): Effect.Effect<
  FileSystemCacheStore,
  Errors.CacheIOError,
  Config.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics | Scope.Scope
> => internal.make(options)

/**
 * Open the cache folder read-only, to inspect it (`list`, `usage`,
 * `lookup`) where it cannot be written: nothing is created, repaired or
 * locked, and `reserve`, `commit`, `remove`, `markValidated` and `enforce`
 * fail with a `CacheIOError`. A missing folder reads as an empty cache.
 *
 * @example
 * ```ts
 * import { CacheEvent, Config, Metrics } from "@rallycache/core"
 * import { FileSystemCacheStore } from "@rallycache/node"
 * import { Effect, Layer } from "effect"
 *
 * const entries = FileSystemCacheStore.makeReadOnly({ cacheDir: "/mnt/ro/rallycache" }).pipe(
 *   Effect.flatMap((store) => store.list),
 *   Effect.scoped,
 *   Effect.provide(Layer.mergeAll(Config.CacheConfig.layer(), Metrics.layer))
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeReadOnly = (
  options: Pick<Options, "cacheDir" | "fs">
): Effect.Effect<FileSystemCacheStore, Errors.CacheIOError, Config.CacheConfig | Metrics.Metrics | Scope.Scope> =>
  readOnly.makeReadOnly(options)

/**
 * The `CacheStore` layer on a folder.
 *
 * @example
 * ```ts
 * import { CacheEvent, Config, Metrics } from "@rallycache/core"
 * import { FileSystemCacheStore } from "@rallycache/node"
 * import { Layer } from "effect"
 *
 * const store = FileSystemCacheStore.layer({ cacheDir: "/tmp/rallycache" }).pipe(
 *   Layer.provide(Layer.mergeAll(Config.CacheConfig.layer(), CacheEvent.CacheEvents.layer(), Metrics.layer))
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options
): Layer.Layer<
  CacheStore.CacheStore,
  Errors.CacheIOError,
  Config.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics
> => Layer.scoped(CacheStore.CacheStore, internal.make(options))

/**
 * `layer`, plus the `Startup` report of what opening the folder repaired.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithStartup = (
  options: Options
): Layer.Layer<
  CacheStore.CacheStore | Startup,
  Errors.CacheIOError,
  Config.CacheConfig | CacheEvent.CacheEvents | Metrics.Metrics
> =>
  Layer.scopedContext(
    Effect.map(internal.make(options), (store) =>
      Context.make(CacheStore.CacheStore, store).pipe(Context.add(Startup, store.startup)))
  )

/**
 * `layerWithStartup` on a store opened read-only (see `makeReadOnly`): its
 * start-up report repairs nothing.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadOnly = (
  options: Pick<Options, "cacheDir" | "fs">
): Layer.Layer<CacheStore.CacheStore | Startup, Errors.CacheIOError, Config.CacheConfig | Metrics.Metrics> =>
  Layer.scopedContext(
    Effect.map(readOnly.makeReadOnly(options), (store) =>
      Context.make(CacheStore.CacheStore, store).pipe(Context.add(Startup, store.startup)))
  )
