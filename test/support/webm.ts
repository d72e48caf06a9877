/**
 * A small VP8 + Vorbis webm source for tests: streams that do not fit mp4,
 * so a copy cut of it is a webm clip.
 */
import { spawnSync } from "node:child_process"

/** Write a `seconds`-long 160x90 webm with a sine tone to `path`; throws with ffmpeg's output when it cannot. */
export const makeWebm = (ffmpeg: string, path: string, seconds: number): void => {
  const made = spawnSync(ffmpeg, [
    "-v", "error", "-y",
    "-f", "lavfi", "-i", `testsrc2=size=160x90:rate=25:duration=${seconds}`,
    "-f", "lavfi", "-i", `sine=frequency=440:duration=${seconds}`,
    "-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-g", "25", "-b:v", "200k",
    "-c:a", "libvorbis", "-q:a", "2",
    path
  ], { encoding: "utf8" })
  if (made.status !== 0) throw new Error(`ffmpeg could not make the webm source: ${made.stderr}`)
}
