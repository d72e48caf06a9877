/**
 * The progress display. On a TTY (stderr), a live block redrawn ten times a
 * second: a bar per running export, the queue, and an overall bar. Without
 * a TTY, plain lines as exports start, finish and fail.
 *
 * The live block reads `RallyCache.status` (the manager's own view of each
 * rally), the plain lines read the event stream.
 *
 * @internal
 */
import type * as RallyCacheModule from "@rallycache/core/RallyCache"
import * as CacheEvent from "@rallycache/core/CacheEvent"
import * as RallyCache from "@rallycache/core/RallyCache"
import { Duration, Effect, Option, Schedule, Stream } from "effect"
import type { Scope } from "effect"
import * as Output from "./output.js"

/** @internal */
export interface Display {
  readonly tty: boolean
  /** A permanent line (above the live block on a TTY). */
  readonly log: (line: string) => Effect.Effect<void>
  /** Replace the live block (TTY only). */
  readonly render: (lines: ReadonlyArray<string>) => Effect.Effect<void>
  /** Remove the live block. */
  readonly clear: Effect.Effect<void>
}

const width = (): number => Math.max(40, (process.stderr.columns ?? 100) - 1)

const fit = (line: string): string => {
  const w = width()
  // Count visible characters only; cut the rest (ANSI codes are kept whole).
  let visible = 0
  let out = ""
  for (let i = 0; i < line.length; i++) {
    if (line[i] === "\u001b") {
      const m = /^\u001b\[[0-9;]*[A-Za-z]/.exec(line.slice(i))
      if (m !== null) {
        out += m[0]
        i += m[0].length - 1
        continue
      }
    }
    if (visible >= w) break
    out += line[i]
    visible++
  }
  return out
}

/**
 * A display on stderr. The live block is cleared (and the cursor shown
 * again) when the scope closes.
 *
 * @internal
 */
export const makeDisplay = (options: { readonly tty: boolean; readonly plain: boolean }) =>
  Effect.gen(function*() {
    let height = 0
    let last: ReadonlyArray<string> = []
    const write = (text: string) => process.stderr.write(text)
    const erase = () => {
      if (height > 0) write(`\u001b[${height}F\u001b[J`)
      height = 0
    }
    const draw = (lines: ReadonlyArray<string>) => {
      if (lines.length === 0) return
      write(lines.map(fit).join("\n") + "\n")
      height = lines.length
    }
    const display: Display = options.tty
      ? {
        tty: true,
        log: (line) =>
          Effect.sync(() => {
            erase()
            write(line + "\n")
            draw(last)
          }),
        render: (lines) =>
          Effect.sync(() => {
            last = lines
            erase()
            draw(lines)
          }),
        clear: Effect.sync(() => {
          last = []
          erase()
        })
      }
      : {
        tty: false,
        log: (line) => options.plain ? Output.stderr(line) : Effect.void,
        render: () => Effect.void,
        clear: Effect.void
      }
    if (options.tty) {
      yield* Effect.acquireRelease(Effect.sync(() => write("\u001b[?25l")), () =>
        Effect.sync(() => {
          erase()
          write("\u001b[?25h")
        }))
    }
    return display
  })

const shortPriority = (priority: string): string =>
  priority === "high" ? Output.red(priority) : priority === "normal" ? Output.yellow(priority) : Output.dim(priority)

/**
 * Lines describing the queue of one video: a bar per running export, the
 * queued counts, and an overall bar over `indexes`.
 *
 * @internal
 */
export const statusLines = (
  status: RallyCacheModule.VideoStatus,
  indexes: ReadonlyArray<number>
): Array<string> => {
  const lines: Array<string> = []
  const queued = { high: 0, normal: 0, low: 0 }
  let ready = 0
  let failed = 0
  status.rallies.forEach((state, index) => {
    switch (state._tag) {
      case "Running":
        lines.push(
          `  rally ${String(index).padStart(3)} ${Output.cyan(Output.bar(state.progress, 20))} ${
            Output.formatPercent(state.progress).padStart(4)
          }  ${shortPriority(state.priority)}`
        )
        break
      case "Queued":
        queued[state.priority]++
        break
      default:
        break
    }
  })
  for (const index of indexes) {
    const state = status.rallies[index]
    if (state?._tag === "Cached") ready++
    if (state?._tag === "Failed") failed++
  }
  const total = indexes.length
  lines.push(
    `  overall   ${Output.green(Output.bar(total === 0 ? 1 : ready / total, 20))} ${ready}/${total} ready${
      failed > 0 ? `, ${Output.red(`${failed} failed`)}` : ""
    } · queued ${queued.high} high, ${queued.normal} normal, ${queued.low} low`
  )
  return lines
}

/**
 * One character per rally: cached, running, queued, failed or idle, with
 * the current rally marked.
 *
 * @internal
 */
export const strip = (status: RallyCacheModule.VideoStatus, current: number | null): string =>
  status.rallies.map((state, index) => {
    const ch = state._tag === "Cached"
      ? Output.green("■")
      : state._tag === "Running"
      ? Output.cyan("▶")
      : state._tag === "Queued"
      ? Output.yellow("·")
      : state._tag === "Failed"
      ? Output.red("✗")
      : Output.dim("□")
    return index === current ? `[${ch}]` : ch
  }).join("")

/**
 * Follow the cache's events for `videoId` while the scope is open:
 * `onEvent` sees each one (for export times), and without a TTY the
 * display gets a plain line per started, finished or failed export.
 *
 * @internal
 */
export const follow = (
  videoId: string,
  display: Display,
  onEvent: (event: CacheEvent.CacheEvent) => void = () => {}
): Effect.Effect<void, never, Scope.Scope | CacheEvent.CacheEvents> =>
  Effect.gen(function*() {
    const events = yield* CacheEvent.CacheEvents
    const stream = yield* events.subscribe
    yield* stream.pipe(
      Stream.runForEach((event) => {
        const own = event._tag === "ClipReady" ? event.clip.videoId === videoId : "videoId" in event
          ? event.videoId === videoId
          : true
        if (!own) return Effect.void
        onEvent(event)
        switch (event._tag) {
          case "JobStarted":
            return display.log(
              `exporting rally ${event.rallyIndex} (${event.priority}${
                event.attempt > 1 ? `, attempt ${event.attempt}` : ""
              })`
            )
          case "ClipReady":
            return display.log(
              `ready     rally ${event.clip.rallyIndex} in ${Output.formatMs(event.exportMs)} (${
                Output.formatBytes(event.clip.sizeBytes)
              })`
            )
          case "JobFailed":
            return display.log(
              `failed    rally ${event.rallyIndex}: ${event.reason}${event.willRetry ? " (will retry)" : ""}`
            )
          case "Evicted":
            return display.log(`evicted   rally ${event.rallyIndex} (${event.reason})`)
          default:
            return Effect.void
        }
      }),
      Effect.forkScoped
    )
  })

/**
 * Redraw the live block every 100 ms while the scope is open, from
 * `RallyCache.status` and the `header` lines the caller supplies.
 *
 * @internal
 */
export const live = (
  videoId: string,
  display: Display,
  lines: (status: RallyCacheModule.VideoStatus) => ReadonlyArray<string>
): Effect.Effect<void, never, Scope.Scope | RallyCache.RallyCache> =>
  Effect.gen(function*() {
    if (!display.tty) return
    const rc = yield* RallyCache.RallyCache
    yield* rc.status(videoId).pipe(
      Effect.option,
      Effect.flatMap((status) => Option.isSome(status) ? display.render(lines(status.value)) : Effect.void),
      Effect.repeat(Schedule.spaced(Duration.millis(100))),
      Effect.ensuring(display.clear),
      Effect.forkScoped
    )
  })
