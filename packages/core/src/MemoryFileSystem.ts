/**
 * A tiny simulated file system, shared by the in-memory layers
 * (`TestExporter` writes clips into it, `MemoryCacheStore` checks them), so
 * tests can see partial files, truncate a clip or corrupt its media, and the
 * store's quick validation (exists, size) sees it, exactly as it would on
 * disk.
 *
 * Operations are synchronous under the hood (a `Map`), so the cache's hot
 * path stays cheap in tests.
 *
 * @since 0.1.0
 */
import { Context, Effect, Layer, Option } from "effect"

/**
 * What the simulated file system knows of a file.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryFile {
  readonly sizeBytes: number
  /** `true` when its media is broken (a deep check, `Exporter.verify`, fails). */
  readonly corrupt: boolean
  /** Epoch millis (from `Clock`) of the last write. */
  readonly modifiedAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryFileSystemShape {
  /** Create or replace a file. */
  readonly write: (path: string, file: { readonly sizeBytes: number; readonly corrupt?: boolean }) => Effect.Effect<void>
  readonly stat: (path: string) => Effect.Effect<Option.Option<MemoryFile>>
  /** Move a file, replacing the target (atomic, like `rename(2)`). `false` when `from` does not exist. */
  readonly rename: (from: string, to: string) => Effect.Effect<boolean>
  /** `false` when it did not exist. */
  readonly remove: (path: string) => Effect.Effect<boolean>
  /** Cut a file to `sizeBytes` (default: half), as a crash mid-copy would. `false` when missing. */
  readonly truncate: (path: string, sizeBytes?: number) => Effect.Effect<boolean>
  /** Break a file's media, keeping its size. `false` when missing. */
  readonly corrupt: (path: string) => Effect.Effect<boolean>
  /** Every file, sorted by path. */
  readonly list: Effect.Effect<ReadonlyArray<readonly [string, MemoryFile]>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MemoryFileSystem extends Context.Tag("@rallycache/core/MemoryFileSystem")<
  MemoryFileSystem,
  MemoryFileSystemShape
>() {
  /** An empty file system. */
  static readonly layer: Layer.Layer<MemoryFileSystem> = Layer.sync(MemoryFileSystem, () => makeShape())
}

/**
 * A new, empty file system (outside of any layer).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<MemoryFileSystemShape> = Effect.sync(() => makeShape())

const makeShape = (): MemoryFileSystemShape => {
  const files = new Map<string, MemoryFile>()
  const update = (path: string, f: (file: MemoryFile) => MemoryFile): boolean => {
    const file = files.get(path)
    if (file === undefined) return false
    files.set(path, f(file))
    return true
  }
  return {
    write: (path, file) =>
      Effect.map(Effect.clockWith((clock) => clock.currentTimeMillis), (now) => {
        files.set(path, { sizeBytes: file.sizeBytes, corrupt: file.corrupt ?? false, modifiedAt: now })
      }),
    stat: (path) => Effect.sync(() => Option.fromNullable(files.get(path))),
    rename: (from, to) =>
      Effect.sync(() => {
        const file = files.get(from)
        if (file === undefined) return false
        files.delete(from)
        files.set(to, file)
        return true
      }),
    remove: (path) => Effect.sync(() => files.delete(path)),
    truncate: (path, sizeBytes) =>
      Effect.sync(() =>
        update(path, (file) => ({ ...file, sizeBytes: sizeBytes ?? Math.floor(file.sizeBytes / 2), corrupt: true }))
      ),
    corrupt: (path) => Effect.sync(() => update(path, (file) => ({ ...file, corrupt: true }))),
    list: Effect.sync(() => [...files.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  }
}
