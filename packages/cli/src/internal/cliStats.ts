/**
 * Hits and misses of CLI runs, kept across runs in `cacheDir/cli-stats.json`
 * so `cache stats` can report a hit rate. Updated with a temporary file and
 * a rename, so a reader never sees a torn file; two CLIs finishing at the
 * same instant may lose one update, which is acceptable for a statistic.
 *
 * @internal
 */
import * as ProcessInfo from "@rallycache/node/ProcessInfo"
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

/** Stale temporary files of `add`. @internal */
export const sweep = (cacheDir: string): Effect.Effect<number> =>
  ProcessInfo.sweepStale(cacheDir, /^cli-stats\.json\.(\d+)\.tmp$/)
