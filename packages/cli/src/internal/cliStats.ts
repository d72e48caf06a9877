/**
 * Hits and misses of CLI runs, kept across runs in `cacheDir/cli-stats.json`
 * so `cache stats` can report a hit rate. Updated with a temporary file and
 * a rename, so a reader never sees a torn file; two CLIs finishing at the
 * same instant may lose one update, which is acceptable for a statistic.
 *
 * @internal
 */
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"

/** @internal */
export interface CliStats {
  readonly hits: number
  readonly misses: number
}

const fileName = "cli-stats.json"

/** @internal */
export const read = (cacheDir: string): Effect.Effect<CliStats> =>
  Effect.sync(() => {
    try {
      const value: unknown = JSON.parse(NodeFs.readFileSync(NodePath.join(cacheDir, fileName), "utf8"))
      if (typeof value === "object" && value !== null) {
        const { hits, misses } = value as Record<string, unknown>
        if (typeof hits === "number" && typeof misses === "number" && hits >= 0 && misses >= 0) return { hits, misses }
      }
    } catch {
      // Missing or unreadable: start from zero.
    }
    return { hits: 0, misses: 0 }
  })

/** @internal */
export const add = (cacheDir: string, delta: CliStats): Effect.Effect<void> =>
  delta.hits + delta.misses === 0 ? Effect.void : Effect.flatMap(read(cacheDir), (current) =>
    Effect.sync(() => {
      const target = NodePath.join(cacheDir, fileName)
      const temp = `${target}.${process.pid}.tmp`
      try {
        NodeFs.mkdirSync(cacheDir, { recursive: true })
        NodeFs.writeFileSync(
          temp,
          JSON.stringify({ hits: current.hits + delta.hits, misses: current.misses + delta.misses }) + "\n"
        )
        NodeFs.renameSync(temp, target)
      } catch {
        NodeFs.rmSync(temp, { force: true })
      }
    }))

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Remove temporary files matching `pattern` (whose first group is the pid
 * of the writer) in `dir`, left by a process that died mid-write (SIGKILL,
 * crash). Files of live processes are kept.
 *
 * @internal
 */
export const sweepTemp = (dir: string, pattern: RegExp): Effect.Effect<number> =>
  Effect.sync(() => {
    let removed = 0
    let names: Array<string>
    try {
      names = NodeFs.readdirSync(dir)
    } catch {
      return 0
    }
    for (const name of names) {
      const m = pattern.exec(name)
      if (m === null) continue
      const pid = Number(m[1])
      if (pid === process.pid || isAlive(pid)) continue
      try {
        NodeFs.rmSync(NodePath.join(dir, name), { force: true })
        removed++
      } catch {
        // Another process removed it first.
      }
    }
    return removed
  })

/** Stale temporary files of `add`. @internal */
export const sweep = (cacheDir: string): Effect.Effect<number> => sweepTemp(cacheDir, /^cli-stats\.json\.(\d+)\.tmp$/)
