/**
 * The ffmpeg binaries the suite uses, and a raw runner for the baselines:
 * `child_process.spawn` with nothing in between, timed from spawn to exit.
 * Started the way rallycache's Command starts its children: detached, so in
 * a session (and, where the kernel has them, an autogroup) of its own, and
 * with all three pipes, so that both sides are scheduled alike.
 */
import { NodeContext } from "@effect/platform-node"
import { FfmpegResolver } from "@rallycache/node"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync } from "node:fs"
import { dirname } from "node:path"
import * as ClipCheck from "../../../packages/node/src/internal/media/clipCheck.js"

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
    const child = spawn(binary, args, { stdio: ["pipe", "pipe", "pipe"], detached: true })
    child.stdin.end()
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

export interface CheckedCut {
  /** The bare cut, from spawn to exit. */
  readonly cutMs: number
  /** The cut plus what a crash-safe, checked export cannot skip. */
  readonly ms: number
}

/**
 * A cut as a crash-safe cache must finish it, without the cache: ffmpeg
 * writes `temp` (the last argument), then fsync of the clip, the same
 * in-process container check rallycache runs, rename to `final` and fsync
 * of its folder. The baseline of "rallycache vs the same work by hand".
 */
export const runCheckedCut = async (binary: string, args: ReadonlyArray<string>, final: string): Promise<CheckedCut> => {
  const temp = args.at(-1)!
  const started = performance.now()
  const cut = await runRaw(binary, args)
  const fd = openSync(temp, "r+")
  fsyncSync(fd)
  closeSync(fd)
  const checked = Effect.runSync(Effect.either(ClipCheck.inspect(temp)))
  if (checked._tag === "Left") throw new Error(`the raw cut fails the clip check: ${checked.left.detail}`)
  mkdirSync(dirname(final), { recursive: true })
  renameSync(temp, final)
  const dir = openSync(dirname(final), "r")
  fsyncSync(dir)
  closeSync(dir)
  return { cutMs: cut.ms, ms: performance.now() - started }
}
