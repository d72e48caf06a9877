/**
 * What a Node program sharing a cache folder needs to know about other
 * processes: whether one is still alive (a zombie is not), and sweeping the
 * temporary files of writers that died mid-write; and, for a command, the
 * folder its user typed it in.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import * as internal from "./internal/export/process.js"

/**
 * Whether the process `pid` is running: it exists (maybe owned by another
 * user) and is not a zombie waiting to be reaped.
 *
 * @since 0.1.0
 * @category utils
 */
export const isAlive: (pid: number) => boolean = internal.isAlive

/**
 * Remove the files of `dir` whose name matches `pattern` (its first group
 * is the pid of the writer) when that writer is no longer alive: the
 * leftovers of a process killed mid-write. Files of live processes, and of
 * this one, are kept. Returns how many were removed.
 *
 * @since 0.1.0
 * @category utils
 */
export const sweepStale = (dir: string, pattern: RegExp): Effect.Effect<number> =>
  Effect.sync(() => {
    let names: Array<string>
    try {
      names = NodeFs.readdirSync(dir)
    } catch {
      return 0
    }
    let removed = 0
    for (const name of names) {
      const m = pattern.exec(name)
      if (m === null) continue
      const pid = Number(m[1])
      if (pid === process.pid || internal.isAlive(pid)) continue
      try {
        NodeFs.rmSync(NodePath.join(dir, name), { force: true })
        removed++
      } catch {
        // Another process removed it first.
      }
    }
    return removed
  })

/**
 * The folder the user typed the command in, which relative paths on the
 * command line count from. A package script (`pnpm rallycache ...`, `pnpm -C
 * repo rallycache ...`, `npm run ...`) runs in its package's folder and names
 * the user's in `INIT_CWD`; that is used while the process runs in a package
 * folder (one holding a `package.json`). A script that changed folder first,
 * or a program started elsewhere with `INIT_CWD` inherited, counts from its
 * own working folder.
 *
 * @since 0.1.0
 * @category utils
 */
export const userDir = (env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): string => {
  const initCwd = env["INIT_CWD"]
  if (initCwd === undefined || initCwd.length === 0) return cwd
  return NodeFs.existsSync(NodePath.join(cwd, "package.json")) ? initCwd : cwd
}

/**
 * `path` as the user meant it: relative paths count from `userDir()`.
 *
 * @since 0.1.0
 * @category utils
 */
export const fromUser = (path: string): string => NodePath.resolve(userDir(), path)
