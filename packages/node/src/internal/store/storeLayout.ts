/**
 * Where the disk cache store keeps its files, and how clips and temp files
 * are named: the one place that knows a key's file name, so that start-up,
 * lookups and commits agree on what is a clip of which entry.
 *
 * @internal
 */
import * as NodePath from "node:path"
import type { Domain } from "@rallycache/core"

type CacheEntry = Domain.CacheEntry

/**
 * Where everything lives under the cache folder.
 *
 * @internal
 */
export interface Layout {
  readonly root: string
  /** Complete clips only, named `<key>.<container>` (`CacheStore.clipFileName`). */
  readonly clips: string
  /** Partial files of running exports; emptied at start-up. */
  readonly tmp: string
  /** Pids of running exports (reaped by the exporter at start-up). */
  readonly run: string
  /** Lock files: one per key being exported, and `index.lock`. */
  readonly locks: string
  /** The index journal. */
  readonly journal: string
  readonly indexLock: string
}

export const layout = (cacheDir: string): Layout => {
  const root = NodePath.resolve(cacheDir)
  const locks = NodePath.join(root, "locks")
  return {
    root,
    clips: NodePath.join(root, "clips"),
    tmp: NodePath.join(root, "tmp"),
    run: NodePath.join(root, "run"),
    locks,
    journal: NodePath.join(root, "index.jsonl"),
    indexLock: NodePath.join(locks, "index.lock")
  }
}

export const keyPattern = /^[0-9a-f]{32}$/
export const clipName = /^([0-9a-f]{32})\.(?:mp4|mkv|webm)$/
export const tempName = /^([0-9a-f]{32})\./
/** Lengths of `<key>.mkv` and `<key>.webm` (and `.mp4`): a cheap test before the regex. */
export const clipNameMin = 32 + ".mp4".length
export const clipNameMax = 32 + ".webm".length
/**
 * Whether `name` (shaped like a clip) is the file of `entry`: a file of its
 * key under another container's name is not (without building the name).
 */
export const isClipOf = (name: string, entry: CacheEntry): boolean => {
  const ext = entry.container ?? "mp4"
  return name.length === 33 + ext.length && name.endsWith(ext)
}

export const assertKey = (key: string): void => {
  // Keys become file names: anything but a hash here is a bug, never a path.
  if (!keyPattern.test(key)) throw new Error(`not a cache key: ${JSON.stringify(key).slice(0, 80)}`)
}
