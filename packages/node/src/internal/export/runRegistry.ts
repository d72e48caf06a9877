/**
 * A record of every running export under `<runDir>/<pid>.json`, so that the
 * next start can end ffmpeg processes whose owner died without cleaning up
 * (Command spawns them detached: they outlive a SIGKILLed parent).
 *
 * @internal
 */
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect, Schema } from "effect"
import type { Scope } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { isAlive, signalGroup } from "./process.js"

/** @internal */
export const RunRecord = Schema.Struct({
  pid: Schema.Int,
  owner: Schema.Int,
  tempPath: Schema.String,
  startedAt: Schema.Number
})
/** @internal */
export type RunRecord = typeof RunRecord.Type

const decode = Schema.decodeUnknownOption(Schema.parseJson(RunRecord))

/**
 * Record `pid` for the life of the current scope. Failing to record is not
 * fatal to the export (setpriv's pdeathsig still covers Linux); it is logged.
 *
 * @internal
 */
export const record = (
  runDir: string,
  pid: number,
  tempPath: string
): Effect.Effect<void, never, FileSystem.FileSystem | Scope.Scope> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = NodePath.join(runDir, `${pid}.json`)
    const body: RunRecord = { pid, owner: process.pid, tempPath, startedAt: Date.now() }
    // Written and given its finalizer uninterruptibly: an interruption while the write is under
    // way would otherwise leave a record of a live owner, which no reaper removes.
    yield* Effect.acquireRelease(
      fs.makeDirectory(runDir, { recursive: true }).pipe(
        Effect.zipRight(fs.writeFileString(path, JSON.stringify(body))),
        Effect.tapError((error) => Effect.logWarning(`cannot record export pid ${pid} in ${runDir}: ${error.message}`)),
        Effect.ignore
      ),
      () => fs.remove(path, { force: true }).pipe(Effect.ignore)
    )
  })

/** Whether `pid` still runs an ffmpeg (guards against a recycled pid). */
const isFfmpeg = (pid: number): boolean => {
  if (process.platform !== "linux") return isAlive(pid)
  try {
    const cmdline = NodeFs.readFileSync(`/proc/${pid}/cmdline`, "utf8")
    return /ffmpeg/i.test(cmdline)
  } catch {
    return false
  }
}

/**
 * What `reapStale` did.
 *
 * @internal
 */
export interface ReapResult {
  /** Processes killed. */
  readonly killed: ReadonlyArray<number>
  /** Part files removed. */
  readonly removed: ReadonlyArray<string>
}

/**
 * End the exports recorded by owners that are gone: SIGKILL the process
 * group (they are orphans, so there is nobody to wait for a graceful end),
 * remove the part file and the record. Records of live owners (another
 * process sharing the cache folder) are left alone.
 *
 * @internal
 */
export const reapStale = (runDir: string): Effect.Effect<ReapResult, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const names = yield* fs.readDirectory(runDir).pipe(Effect.orElseSucceed(() => [] as Array<string>))
    const killed: Array<number> = []
    const removed: Array<string> = []
    for (const name of names) {
      if (!name.endsWith(".json")) continue
      const path = NodePath.join(runDir, name)
      const text = yield* fs.readFileString(path).pipe(Effect.orElseSucceed(() => ""))
      const parsed = decode(text)
      if (parsed._tag === "None") {
        // Torn write of a record: its owner died while writing it, or is writing it right now.
        // The file name carries the pid: if no ffmpeg runs under it, the record is useless at once.
        const pid = Number(name.slice(0, -".json".length))
        if (!(Number.isInteger(pid) && pid > 0 && isAlive(pid) && isFfmpeg(pid))) {
          yield* fs.remove(path, { force: true }).pipe(Effect.ignore)
          continue
        }
        const age = yield* fs.stat(path).pipe(
          Effect.map((info) => Date.now() - (info.mtime._tag === "Some" ? info.mtime.value.getTime() : 0)),
          Effect.orElseSucceed(() => Infinity)
        )
        if (age > 60_000) yield* fs.remove(path, { force: true }).pipe(Effect.ignore)
        continue
      }
      const rec = parsed.value
      if (rec.owner !== process.pid && isAlive(rec.owner)) continue
      if (rec.owner === process.pid) continue
      if (isAlive(rec.pid) && isFfmpeg(rec.pid)) {
        signalGroup(rec.pid, "SIGKILL")
        killed.push(rec.pid)
      }
      const hadPart = yield* fs.exists(rec.tempPath).pipe(Effect.orElseSucceed(() => false))
      if (hadPart) {
        yield* fs.remove(rec.tempPath, { force: true }).pipe(Effect.ignore)
        removed.push(rec.tempPath)
      }
      yield* fs.remove(path, { force: true }).pipe(Effect.ignore)
    }
    if (killed.length > 0 || removed.length > 0) {
      yield* Effect.logInfo(`reaped ${killed.length} orphan ffmpeg process(es) and ${removed.length} part file(s) in ${runDir}`)
    }
    return { killed, removed }
  })
