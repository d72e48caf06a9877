/**
 * Placing a cached clip in the `--out` folder: a hard link where the file
 * system allows it, otherwise a copy; always through a temporary name in
 * the same folder and an atomic rename, so `rally-007.mp4` is never a
 * partial file. The name keeps the clip's container (`.mp4`, `.mov`, `.webm`,
 * `.mkv`), so a player opens it as what it is.
 *
 * @internal
 */
import { FileSystem, Path } from "@effect/platform"
import * as Errors from "@rallycache/core/Errors"
import * as ProcessInfo from "@rallycache/node/ProcessInfo"
import { Effect } from "effect"

/** `rally-000.mp4`, `rally-001.webm`...: the index, and the extension of the cached clip. @internal */
export const outName = (index: number, clipPath: string): string => {
  const extension = /\.(mp4|mov|webm|mkv)$/.exec(clipPath)?.[1] ?? "mp4"
  return `rally-${String(index).padStart(3, "0")}.${extension}`
}

/** @internal */
export const ensureDir = (dir: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.makeDirectory(dir, { recursive: true }).pipe(
      Effect.mapError((error) =>
        new Errors.CacheIOError({ op: "mkdir", path: dir, reason: error.message, code: codeOf(error) })
      )
    )
    const info = yield* fs.stat(dir).pipe(Effect.option)
    if (info._tag === "None" || info.value.type !== "Directory") {
      return yield* new Errors.InvalidInput({
        field: "--out",
        reason: `${dir} is not a folder`,
        fix: "pass a folder for the clips"
      })
    }
    // Partial copies of a run that was killed mid-copy.
    yield* ProcessInfo.sweepStale(dir, /^\.rally-\d+\.(?:mp4|mov|webm|mkv)\.(\d+)\.[0-9a-z]+\.part$/)
  })

const codeOf = (error: { readonly _tag: string }): string | undefined => {
  if (error._tag !== "SystemError") return undefined
  const reason = (error as { readonly reason?: string }).reason
  return reason === "PermissionDenied" ? "EACCES" : reason
}

/**
 * Put `source` at `dir/name`. Returns the final path and whether it is a
 * hard link.
 *
 * @internal
 */
export const place = (source: string, dir: string, name: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const target = path.join(dir, name)
    const temp = path.join(dir, `.${name}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.part`)
    const io = (op: string) => (error: { readonly _tag: string; readonly message: string }) =>
      new Errors.CacheIOError({ op, path: target, reason: error.message, code: codeOf(error) })
    const work = Effect.gen(function*() {
      const linked = yield* fs.link(source, temp).pipe(Effect.as(true), Effect.orElseSucceed(() => false))
      if (!linked) yield* fs.copyFile(source, temp).pipe(Effect.mapError(io("copy")))
      yield* fs.rename(temp, target).pipe(Effect.mapError(io("rename")))
      return linked
    })
    // rename() between two links to the same file (a second export into the
    // same folder) succeeds and leaves both names, so the temporary name is
    // removed whatever happened; it is unique to this call.
    const linked = yield* work.pipe(Effect.ensuring(Effect.ignore(fs.remove(temp))))
    return { path: target, linked }
  })
