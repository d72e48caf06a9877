/**
 * Batch export: cut every rally of a match through the cache, print progress
 * from the event stream, and list the clips.
 *
 *   pnpm --filter batch-export start <video.mp4> <rallies.json>
 *
 * `rallies.json` is `[{ "start": 12.5, "end": 31 }, ...]` in seconds. The
 * cache folder and limits come from RALLYCACHE_* variables (see the README).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { RallyCache } from "@rallycache/core"
import { NodeRallyCache } from "@rallycache/node"
import { Console, Effect, Schema, Stream } from "effect"
import * as NodeFs from "node:fs"

const Rallies = Schema.parseJson(Schema.Array(Schema.Struct({ start: Schema.Number, end: Schema.Number })))

const usage = "usage: batch-export <video.mp4> <rallies.json>"

const program = Effect.gen(function*() {
  const [video, ralliesFile] = process.argv.slice(2)
  if (video === undefined || ralliesFile === undefined) return yield* Effect.fail(usage)
  const rallies = yield* Effect.try(() => NodeFs.readFileSync(ralliesFile, "utf8")).pipe(
    Effect.flatMap(Schema.decodeUnknown(Rallies)),
    Effect.mapError(() => `${ralliesFile}: expected a JSON array of { "start", "end" } in seconds`)
  )

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

  const opened = yield* cache.openVideo({ path: video, rallies })
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
  Effect.catchAll((error) =>
    Console.error(typeof error === "string" ? error : error.message).pipe(
      Effect.zipRight(Effect.sync(() => (process.exitCode = 2)))
    )
  ),
  NodeRuntime.runMain
)
