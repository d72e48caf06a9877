/**
 * vitest global set-up: generates the sample videos that several test files
 * share, once per run and before any test starts, into the run's
 * `rallycache-fixtures` folder (`SampleVideo.cached` names each file after
 * its options, so a file asking for the same options finds it there). With
 * files running in parallel, no two of them then encode the same video.
 */
import { NodeContext } from "@effect/platform-node"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import * as os from "node:os"
import * as path from "node:path"

const key = Symbol.for("@rallycache/test/media")

/** The options more than one test file asks for (the node tests', the CLI's, the reliability suites', the examples'). */
export const sharedVideos: ReadonlyArray<SampleVideo.Options> = [
  { duration: 6 },
  { duration: 8 },
  { duration: 12 },
  { duration: 6, audio: false },
  { duration: 20, width: 640, height: 360 },
  { duration: 4, audio: false }
]

export default async function setup(): Promise<void> {
  const state = globalThis as { [key]?: boolean }
  if (state[key] === true) return
  state[key] = true
  // The summary reporter has set TMPDIR to the run's own folder by now.
  const dir = path.join(os.tmpdir(), "rallycache-fixtures")
  await Effect.runPromise(
    Effect.forEach(sharedVideos, (options) => SampleVideo.cached({ ...options, dir }), { concurrency: 2, discard: true }).pipe(
      Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
    )
  )
}
