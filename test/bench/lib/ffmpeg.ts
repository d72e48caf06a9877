/**
 * The ffmpeg binaries the suite uses, and a raw runner for the baselines:
 * `child_process.spawn` with nothing in between, timed from spawn to exit.
 */
import { NodeContext } from "@effect/platform-node"
import { FfmpegResolver } from "@rallycache/node"
import { Effect } from "effect"
import { spawn } from "node:child_process"

export interface Binaries {
  readonly ffmpeg: string
  readonly ffprobe: string
}

/**
 * The binaries @rallycache/node's `FfmpegResolver` picks, so the raw
 * baselines run the very binary rallycache runs.
 */
export const resolveBinaries = (): Promise<Binaries> =>
  Effect.runPromise(
    FfmpegResolver.resolve.pipe(
      Effect.map(({ ffmpeg, ffprobe }) => ({ ffmpeg: ffmpeg.path, ffprobe: ffprobe.path })),
      Effect.provide(NodeContext.layer)
    )
  )

export interface RunResult {
  readonly ms: number
  readonly code: number | null
  readonly stderr: string
  readonly stdout: string
}

/** Run a binary to completion; fails when it exits non-zero. */
export const runRaw = (binary: string, args: ReadonlyArray<string>): Promise<RunResult> =>
  new Promise((resolve, reject) => {
    const started = performance.now()
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] })
    let stderr = ""
    let stdout = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      if (stdout.length < 1 << 20) stdout += chunk
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      if (stderr.length < 1 << 16) stderr += chunk
    })
    child.on("error", reject)
    child.on("close", (code) => {
      const ms = performance.now() - started
      if (code !== 0) {
        reject(new Error(`${binary} ${args.join(" ")} exited ${code}: ${stderr.trim().split("\n").slice(-3).join(" / ")}`))
      } else {
        resolve({ ms, code, stderr, stdout })
      }
    })
  })
