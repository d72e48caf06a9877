/**
 * Running a child process through @effect/platform's Command with what
 * Command lacks: a SIGKILL after a grace period (Command only sends SIGTERM
 * and then waits forever), pausing with SIGSTOP/SIGCONT, a bounded tail of
 * stderr, and line-wise stdout.
 *
 * @internal
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import type { PlatformError } from "@effect/platform/Error"
import { Duration, Effect, Fiber, Stream } from "effect"
import type { SubscriptionRef } from "effect"
import type { Scope } from "effect"
import * as NodeFs from "node:fs"

/** @internal */
export interface RunOptions {
  readonly cwd?: string | undefined
  readonly env?: Record<string, string> | undefined
  /** Called for every stdout line, in order. */
  readonly onStdoutLine?: ((line: string) => Effect.Effect<void>) | undefined
  /** Keep stdout in the result (small outputs only: ffprobe JSON, -version). */
  readonly collectStdout?: boolean | undefined
  /** How many stderr lines to keep (the last ones). */
  readonly stderrLines?: number | undefined
  /** Time between SIGTERM and SIGKILL when the run is interrupted. */
  readonly killGrace?: Duration.DurationInput | undefined
  /** While true, the process group is stopped (SIGSTOP), and continued when it turns false. */
  readonly paused?: SubscriptionRef.SubscriptionRef<boolean> | undefined
  /** Run after each SIGSTOP, once the group is stopped. */
  readonly confirmPaused?: Effect.Effect<void> | undefined
  /** Runs once the process has started, inside the run's scope (e.g. record the pid with a finalizer). */
  readonly onStart?: ((pid: number) => Effect.Effect<void, never, Scope.Scope>) | undefined
}

/** @internal */
export interface RunResult {
  readonly pid: number
  /** `null` when the process was ended by a signal. */
  readonly exitCode: number | null
  readonly signal: string | null
  readonly stdout: string
  readonly stderrTail: ReadonlyArray<string>
}

const signalOf = (error: PlatformError): string | null => {
  const match = /signal: (\w+)/.exec(error.message)
  return match?.[1] ?? null
}

/** Whether a process exists (signal 0 probes without sending anything). @internal */
export const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false
  }
  // A zombie (dead, not yet reaped by its parent) still answers signal 0.
  if (process.platform === "linux") {
    try {
      const stat = NodeFs.readFileSync(`/proc/${pid}/stat`, "utf8")
      const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3)
      return state !== "Z" && state !== "X"
    } catch {
      return false
    }
  }
  return true
}

/**
 * Send a signal to a process group (Command spawns children detached, so the
 * child is its group's leader), falling back to the single process.
 *
 * @internal
 */
export const signalGroup = (pid: number, signal: NodeJS.Signals): boolean => {
  try {
    process.kill(-pid, signal)
    return true
  } catch {
    try {
      process.kill(pid, signal)
      return true
    } catch {
      return false
    }
  }
}

/**
 * End a process: SIGTERM, then SIGKILL if it is still alive after `grace`.
 * A stopped process (paused by preemption) is killed at once: continuing it
 * so that it could act on SIGTERM would give it a CPU beside the exports
 * that hold the slots. Returns once it is gone.
 *
 * @internal
 */
export const terminate = (
  pid: number,
  isRunning: Effect.Effect<boolean>,
  grace: Duration.Duration,
  stopped = false
): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (!(yield* isRunning)) return
    if (stopped) {
      signalGroup(pid, "SIGKILL")
    } else {
      signalGroup(pid, "SIGTERM")
      // In case a stop is under way: a stopped process does not act on SIGTERM.
      signalGroup(pid, "SIGCONT")
    }
    const deadline = Date.now() + Duration.toMillis(grace)
    let delay = 1
    while (yield* isRunning) {
      if (Date.now() >= deadline) {
        signalGroup(pid, "SIGKILL")
        break
      }
      yield* Effect.sleep(Duration.millis(delay))
      delay = Math.min(delay * 2, 25)
    }
  })

const decodeLines = <E>(stream: Stream.Stream<Uint8Array, E>): Stream.Stream<string, E> =>
  stream.pipe(Stream.decodeText(), Stream.splitLines)

/**
 * Run `command args...` to completion and return its exit status and output.
 * A non-zero exit or a signal is a result, not a failure: the caller
 * classifies it. Fails only when the process cannot be spawned.
 *
 * Interruption ends the process group (SIGTERM, then SIGKILL after
 * `killGrace`) before Command's own finalizer waits for the exit.
 *
 * @internal
 */
export const run = (
  command: string,
  args: ReadonlyArray<string>,
  options: RunOptions = {}
): Effect.Effect<RunResult, PlatformError, CommandExecutor.CommandExecutor> =>
  Effect.scoped(Effect.gen(function*() {
    let cmd = Command.make(command, ...args)
    if (options.cwd !== undefined) cmd = Command.workingDirectory(cmd, options.cwd)
    if (options.env !== undefined) cmd = Command.env(cmd, options.env)
    const proc = yield* Command.start(cmd)
    const pid = proc.pid
    const grace = Duration.decode(options.killGrace ?? Duration.seconds(2))
    const isRunning = Effect.orElseSucceed(proc.isRunning, () => false)
    // Whether the group is stopped now (the last signal sent was SIGSTOP).
    let stopped = false
    // Added after Command.start, so it runs before Command's release (which
    // sends SIGTERM once and waits for the exit without a deadline).
    yield* Effect.addFinalizer(() => Effect.suspend(() => terminate(pid, isRunning, grace, stopped)))

    const keep = options.stderrLines ?? 20
    const tail: Array<string> = []
    const stderrFiber = yield* decodeLines(proc.stderr).pipe(
      Stream.runForEach((line) =>
        Effect.sync(() => {
          tail.push(line)
          if (tail.length > keep) tail.shift()
        })
      ),
      Effect.ignore,
      Effect.fork
    )
    const out: Array<string> = []
    const onLine = options.onStdoutLine
    const stdoutFiber = yield* decodeLines(proc.stdout).pipe(
      Stream.runForEach((line) =>
        Effect.suspend(() => {
          if (options.collectStdout === true) out.push(line)
          return onLine === undefined ? Effect.void : onLine(line)
        })
      ),
      Effect.ignore,
      Effect.fork
    )
    // After the readers are forked: a process that fails at once (ffmpeg
    // refusing its arguments) has ended its pipes before a slow onStart
    // (the run record's fsync) returns, and what it wrote would be lost.
    if (options.onStart !== undefined) yield* options.onStart(pid)
    if (options.paused !== undefined) {
      yield* options.paused.changes.pipe(
        Stream.changes,
        Stream.runForEach((paused) =>
          Effect.zipRight(
            Effect.sync(() => {
              stopped = paused
              signalGroup(pid, paused ? "SIGSTOP" : "SIGCONT")
            }),
            paused && options.confirmPaused !== undefined ? options.confirmPaused : Effect.void
          )
        ),
        Effect.forkScoped
      )
    }
    const exit = yield* Effect.either(proc.exitCode)
    yield* Fiber.join(stdoutFiber)
    yield* Fiber.join(stderrFiber)
    return {
      pid,
      exitCode: exit._tag === "Right" ? exit.right : null,
      signal: exit._tag === "Left" ? signalOf(exit.left) : null,
      stdout: out.join("\n"),
      stderrTail: tail
    }
  }))

/**
 * Whether `path` is a file this process may execute; `chmod +x` it first
 * when it is not and we own it (@ffprobe-installer ships 0744 binaries).
 *
 * @internal
 */
export const ensureExecutable = (path: string): boolean => {
  try {
    const stat = NodeFs.statSync(path)
    if (!stat.isFile()) return false
  } catch {
    return false
  }
  try {
    NodeFs.accessSync(path, NodeFs.constants.X_OK)
    return true
  } catch {
    try {
      const mode = NodeFs.statSync(path).mode
      NodeFs.chmodSync(path, mode | 0o111)
      NodeFs.accessSync(path, NodeFs.constants.X_OK)
      return true
    } catch {
      return false
    }
  }
}
