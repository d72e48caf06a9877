/**
 * Paths a client may register: only files under the media root, after
 * resolving `..` and symbolic links, so neither `../../etc/passwd` nor a
 * symlink placed under the root can reach anything else.
 */
import { FileSystem, Path } from "@effect/platform"
import { Data, Effect } from "effect"

/** The path lies outside the media root (before or after resolving links). */
export class OutsideMediaRoot extends Data.TaggedError("OutsideMediaRoot")<{ readonly path: string }> {
  override get message(): string {
    return `path ${JSON.stringify(this.path)} is outside the media root (register a file under RALLYCACHE_MEDIA_ROOT)`
  }
}

/** The path is under the media root but does not exist. */
export class MediaNotFound extends Data.TaggedError("MediaNotFound")<{ readonly path: string }> {
  override get message(): string {
    return `no file at ${JSON.stringify(this.path)} under the media root (check the path)`
  }
}

/** Whether `candidate` lies at or under `root` (both absolute). */
export const isWithin = (path: Path.Path, root: string, candidate: string): boolean => {
  const relative = path.relative(root, candidate)
  return relative === "" ||
    (relative !== ".." && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
}

/**
 * Resolve `requested` (absolute, or relative to `root`) to its real path,
 * failing unless it lies strictly under `root`'s real path.
 */
export const resolve = (
  root: string,
  requested: string
): Effect.Effect<string, OutsideMediaRoot | MediaNotFound, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const absoluteRoot = path.resolve(root)
    const realRoot = yield* fs.realPath(absoluteRoot).pipe(Effect.orElseSucceed(() => absoluteRoot))
    const lexical = path.resolve(absoluteRoot, requested)
    // Checked before touching the file system, so a refused path is never probed.
    if (
      requested.includes("\0") ||
      !(isWithin(path, absoluteRoot, lexical) || isWithin(path, realRoot, lexical))
    ) {
      return yield* new OutsideMediaRoot({ path: requested })
    }
    const real = yield* fs.realPath(lexical).pipe(Effect.mapError(() => new MediaNotFound({ path: requested })))
    if (real === realRoot || !isWithin(path, realRoot, real)) {
      return yield* new OutsideMediaRoot({ path: requested })
    }
    return real
  })
