/**
 * Batch export: cut every rally of a match through the cache, print progress
 * from the event stream, and list the clips.
 *
 *   pnpm --filter batch-export start <video.mp4> <rallies.json>
 *
 * `rallies.json` is the rallies file of the root README (`{ "rallies":
 * [{ "start": 12.5, "end": "0:31" }, ...] }`, or a bare array of rallies).
 * Relative paths count from the folder the command was typed in (pnpm runs
 * the script inside this package and says where it started in `INIT_CWD`).
 * The cache folder and limits come from RALLYCACHE_* variables (see the
 * README). Exit codes (`@rallycache/cli/CliErrors`): 0 done, 1 an export
 * failed, 2 bad input, 130 interrupted.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { teardown } from "@rallycache/cli/CliErrors"
import { Errors, RallyCache } from "@rallycache/core"
import { NodeRallyCache, ProcessInfo, RalliesFile } from "@rallycache/node"
import { Console, Effect, Stream } from "effect"

const usage = "usage: pnpm --filter batch-export start <video.mp4> <rallies.json>"

const program = Effect.gen(function*() {
  const args = process.argv.slice(2).filter((arg, i) => !(i === 0 && arg === "--"))
  const [videoArg, ralliesArg] = args
  if (videoArg === undefined || ralliesArg === undefined || args.length > 2) {
    return yield* new Errors.InvalidInput({ field: "arguments", reason: "expected a video and a rallies file", fix: usage })
  }
  const video = ProcessInfo.fromUser(videoArg)
  const file = yield* RalliesFile.read(ProcessInfo.fromUser(ralliesArg))

  const cache = yield* RallyCache.RallyCache
  // Print progress from the event stream while the exports run.
  yield* cache.events.pipe(
    Stream.filter((event) => event._tag === "ClipReady" || event._tag === "JobFailed"),
    Stream.runForEach((event) =>
      event._tag === "ClipReady"
        ? Console.error(`ready   rally ${event.clip.rallyIndex} in ${Math.round(event.exportMs)} ms`)
        : Console.error(`failed  rally ${event.rallyIndex}: ${event.reason}${event.willRetry ? " (retrying)" : ""}`)
    ),
    Effect.forkScoped
  )

  const opened = yield* cache.openVideo({ path: video, rallies: file.rallies, id: file.videoId })
  const id = opened.source.id
  // Queue everything at low priority, then ask for each clip in order: the
  // one asked for is raised to high, the rest keep exporting behind it.
  yield* cache.preload(id)
  const clips = yield* Effect.forEach(opened.rallies, (rally) => cache.getClip(id, rally.index))

  for (const clip of clips) {
    yield* Console.log(
      `${String(clip.rallyIndex).padStart(3)}  ${clip.clipStart.toFixed(2)}-${clip.clipEnd.toFixed(2)} s  ${clip.path}`
    )
  }
  const stats = yield* cache.stats
  yield* Console.error(
    `${clips.length} clips, ${stats.metrics.exports} exported, ${stats.usage.bytes} bytes in the cache`
  )
})

program.pipe(
  Effect.scoped,
  Effect.provide(NodeRallyCache.layer()),
  // One line on stderr; exit code 2 for bad input, 1 for a failed export, 130 interrupted.
  (effect) => NodeRuntime.runMain(effect, { disableErrorReporting: true, teardown: teardown() })
)
