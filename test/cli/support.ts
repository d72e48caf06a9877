/**
 * Running the `rallycache` CLI as a real process in tests, and a small
 * generated match video.
 */
import { NodeContext } from "@effect/platform-node"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
// The command as published (the package's `bin`, the bundle), run by node
// directly: not `pnpm rallycache`, since pnpm adds a warning line to stderr.
export const launcher = path.join(repoRoot, "packages", "cli", "dist", "bundle", "rallycache.js")

export interface CliResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Environment of a CLI run: no inherited RALLYCACHE_* variable, no TTY. */
const baseEnv = (): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("RALLYCACHE_") && key !== "FORCE_COLOR") env[key] = value
  }
  return env
}

export const runCli = (
  args: ReadonlyArray<string>,
  options: {
    readonly env?: Record<string, string>
    readonly cwd?: string
    readonly timeoutMs?: number
    /** Run as this user and group (the test runs as root). */
    readonly user?: { readonly uid: number; readonly gid: number }
  } = {}
): Effect.Effect<CliResult> =>
  Effect.async<CliResult>((resume) => {
    const child = spawn(process.execPath, [launcher, ...args], {
      cwd: options.cwd ?? repoRoot,
      env: { ...baseEnv(), ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
      ...options.user
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 110_000)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resume(Effect.succeed({ code, signal, stdout, stderr }))
    })
    return Effect.sync(() => {
      clearTimeout(timer)
      child.kill("SIGKILL")
    })
  })

/** Parse stdout as exactly one JSON object. */
export const parseJson = (result: CliResult): Record<string, unknown> => {
  const text = result.stdout.trim()
  if (text.length === 0 || text.includes("\n")) {
    throw new Error(`expected one JSON line on stdout, got ${JSON.stringify(result.stdout)} (stderr: ${result.stderr})`)
  }
  return JSON.parse(text) as Record<string, unknown>
}

/** A new temp folder, removed after the test file's last test. */
export { tempDir } from "../support/temp.js"

const platform = FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))

/** A 6 s 320x240 match (keyframe every second), generated once per machine. */
export const sampleVideo = (duration = 6): Effect.Effect<string> =>
  SampleVideo.cached({ duration, dir: path.join(os.tmpdir(), "rallycache-fixtures") }).pipe(
    Effect.provide(platform),
    Effect.orDie
  )

export const ffmpegPath: Effect.Effect<string> = Effect.map(FfmpegResolver.Ffmpeg, (f) => f.ffmpeg.path).pipe(
  Effect.provide(platform),
  Effect.orDie
)

export const ffprobePath: Effect.Effect<string> = Effect.map(FfmpegResolver.Ffmpeg, (f) => f.ffprobe.path).pipe(
  Effect.provide(platform),
  Effect.orDie
)

/** Duration in seconds of a media file, read with ffprobe (0 when unreadable). */
export const probeDuration = (ffprobe: string, file: string): number => {
  const result = spawnSync(ffprobe, ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file], {
    encoding: "utf8"
  })
  return result.status === 0 ? Number(result.stdout.trim()) : 0
}

export const writeJson = (dir: string, name: string, value: unknown): string => {
  const file = path.join(dir, name)
  fs.writeFileSync(file, typeof value === "string" ? value : JSON.stringify(value))
  return file
}

/** stderr without blank lines. */
export const errorLines = (result: { readonly stderr: string }): Array<string> =>
  result.stderr.split("\n").filter((line) => line.trim().length > 0)
