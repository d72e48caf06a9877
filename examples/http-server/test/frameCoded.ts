/**
 * A frame-coded test match: every frame shows its own number as ten
 * black/white stripes (bit i is the stripe at x = 32i..32i+31 of a 320x180
 * frame), so a page can tell from the pixels which frame it painted.
 * H.264 (keyframe every 2 s, B-frames) + AAC, 25 fps; generated once per
 * machine beside the other fixtures.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import { FfmpegResolver } from "@rallycache/node"
import { Effect, Layer } from "effect"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fixtureDir } from "./fixtures.js"

export const fps = 25

/** The time of the middle of frame `n`: a rally starting there starts on frame `n`. */
export const at = (frame: number): number => (frame + 0.5) / fps

const stripes = `geq=lum='if(bitand(N\\,pow(2\\,floor(X/32)))\\,235\\,16)':cb=128:cr=128`

/** The path of a frame-coded match of `seconds` seconds (made the first time it is asked for). */
export const frameCodedVideo = async (seconds: number): Promise<string> => {
  const file = path.join(fixtureDir, `frame-coded-320x180-${seconds}s.mp4`)
  if (fs.existsSync(file)) return file
  const ffmpeg = await Effect.runPromise(
    Effect.map(FfmpegResolver.Ffmpeg, (f) => f.ffmpeg.path).pipe(
      Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer)))
    )
  )
  fs.mkdirSync(fixtureDir, { recursive: true })
  const part = `${file}.${process.pid}.part.mp4`
  ChildProcess.execFileSync(ffmpeg, [
    "-nostdin",
    "-y",
    "-v",
    "error",
    "-f",
    "lavfi",
    "-i",
    `color=c=black:s=320x180:r=${fps}:d=${seconds},format=yuv420p,${stripes}`,
    "-f",
    "lavfi",
    "-i",
    `sine=f=440:sample_rate=48000:d=${seconds}`,
    "-c:v",
    "libx264",
    "-preset",
    "veryfast",
    "-g",
    String(2 * fps),
    "-keyint_min",
    String(2 * fps),
    "-sc_threshold",
    "0",
    "-bf",
    "2",
    "-pix_fmt",
    "yuv420p",
    "-c:a",
    "aac",
    "-b:a",
    "64k",
    "-movflags",
    "+faststart",
    part
  ])
  fs.renameSync(part, file)
  return file
}
