/**
 * `GET /api/media`: the files under the media root a client can register,
 * so the page offers a choice instead of a typed path: video files by their
 * extension, and JSON files read as rallies files (with the CLI's grammar)
 * to show their rally count or their problem. Hidden entries are skipped,
 * symbolic links only count when they stay under the root, and the walk is
 * bounded in depth and entries.
 *
 * @since 0.1.0
 */
import { FileSystem, HttpApiBuilder, Path } from "@effect/platform"
import { RalliesFile } from "@rallycache/node"
import { Effect, Either } from "effect"
import type { MediaReply, RalliesFileEntry } from "./Api.js"
import * as MediaRoot from "./internal/mediaRoot.js"
import { ServerConfig } from "./ServerConfig.js"
import { ViewerApi } from "./ViewerApi.js"

/**
 * File extensions listed as videos (lower case).
 *
 * @since 0.1.0
 * @category constants
 */
export const videoExtensions: ReadonlySet<string> = new Set([
  ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ogv"
])

/**
 * Limits of the walk: folders deeper than `maxDepth` below the root are not
 * entered, and it stops after `maxEntries` entries (`truncated` says so);
 * rallies files larger than `maxPreviewBytes` are listed without being read.
 *
 * @since 0.1.0
 * @category limits
 */
export const limits = { maxDepth: 6, maxEntries: 5000, maxPreviewBytes: 1024 * 1024 } as const

const preview = (bytes: Uint8Array, name: string): Pick<RalliesFileEntry, "rallyCount" | "videoId" | "problem"> =>
  Either.match(RalliesFile.parse(bytes, name), {
    onLeft: (error) => ({ problem: error.message }),
    onRight: (file) => ({
      rallyCount: file.rallies.length,
      ...(file.videoId === undefined ? {} : { videoId: file.videoId })
    })
  })

/**
 * Walk the media root.
 *
 * @since 0.1.0
 * @category constructors
 */
export const list: Effect.Effect<MediaReply, never, ServerConfig | FileSystem.FileSystem | Path.Path> = Effect.gen(
  function*() {
    const fs = yield* FileSystem.FileSystem
    const path = yield* Path.Path
    const config = yield* ServerConfig
    const root = path.resolve(config.mediaRoot)
    const realRoot = yield* fs.realPath(root).pipe(Effect.orElseSucceed(() => root))
    const videos: Array<MediaReply["videos"][number]> = []
    const ralliesFiles: Array<RalliesFileEntry> = []
    let entries = 0
    let truncated = false
    const pending: Array<{ readonly dir: string; readonly depth: number }> = [{ dir: root, depth: 0 }]
    while (pending.length > 0 && !truncated) {
      const { depth, dir } = pending.shift()!
      const names = yield* fs.readDirectory(dir).pipe(Effect.orElseSucceed((): Array<string> => []))
      for (const name of [...names].sort()) {
        if (name.startsWith(".")) continue
        if (++entries > limits.maxEntries) {
          truncated = true
          break
        }
        const full = path.join(dir, name)
        const real = yield* fs.realPath(full).pipe(Effect.option)
        if (real._tag === "None" || real.value === realRoot || !MediaRoot.isWithin(path, realRoot, real.value)) continue
        const info = yield* fs.stat(full).pipe(Effect.option)
        if (info._tag === "None") continue
        const relative = path.relative(root, full).split(path.sep).join("/")
        if (info.value.type === "Directory") {
          if (depth + 1 <= limits.maxDepth) pending.push({ dir: full, depth: depth + 1 })
          else truncated = true
          continue
        }
        if (info.value.type !== "File") continue
        const extension = path.extname(name).toLowerCase()
        const sizeBytes = Number(info.value.size)
        if (videoExtensions.has(extension)) videos.push({ path: relative, sizeBytes })
        else if (extension === ".json") {
          const about = sizeBytes > limits.maxPreviewBytes
            ? { problem: `is ${sizeBytes} bytes; larger files are read when registered` }
            : yield* fs.readFile(full).pipe(
              Effect.map((bytes) => preview(bytes, relative)),
              Effect.orElseSucceed(() => ({ problem: "cannot be read (check its permissions)" }))
            )
          ralliesFiles.push({ path: relative, sizeBytes, ...about })
        }
      }
    }
    return { videos, ralliesFiles, truncated }
  }
)

/**
 * The handlers of the `media` group.
 *
 * @since 0.1.0
 * @category handlers
 */
export const layer = HttpApiBuilder.group(ViewerApi, "media", (handlers) => handlers.handle("list", () => list))
