/**
 * `rallycache watch <video> --rallies FILE [--speed X] [--limit N] [--json]`:
 * simulate a viewer who plays each rally in turn while preloading runs in
 * the background, and report each navigation (hit or miss, and the wait).
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as Domain from "@rallycache/core/Domain"
import * as RalliesGrammar from "@rallycache/core/RalliesGrammar"
import * as RallyCache from "@rallycache/core/RallyCache"
import { Duration, Effect, Option, Schema } from "effect"
import * as CliStats from "../internal/cliStats.js"
import * as Common from "../internal/common.js"
import * as Output from "../internal/output.js"
import * as Progress from "../internal/progress.js"
import * as Video from "../internal/video.js"

/**
 * One navigation of the simulated viewer.
 *
 * @since 0.1.0
 */
export const Navigation = Schema.Struct({ index: Schema.Int, hit: Schema.Boolean, waitMs: Schema.Number })
/** @since 0.1.0 */
export type Navigation = typeof Navigation.Type

/**
 * The `--json` output of `watch`.
 *
 * @since 0.1.0
 */
export const WatchReport = Schema.Struct({
  navigations: Schema.Array(Navigation),
  hitRate: Schema.Number,
  p50WaitMs: Schema.Number,
  p99WaitMs: Schema.Number
})
/** @since 0.1.0 */
export type WatchReport = typeof WatchReport.Type

/**
 * Summarise navigations.
 *
 * @since 0.1.0
 */
export const report = (navigations: ReadonlyArray<Navigation>): WatchReport => {
  const waits = navigations.map((n) => n.waitMs)
  return {
    navigations,
    hitRate: navigations.length === 0 ? 0 : Output.round(navigations.filter((n) => n.hit).length / navigations.length, 4),
    p50WaitMs: Output.round(Output.percentile(waits, 50), 2),
    p99WaitMs: Output.round(Output.percentile(waits, 99), 2)
  }
}

/**
 * Play `rallies` of an open video in order at `speed` times real time:
 * navigate, get the clip (timing the wait), play it, move on.
 *
 * @since 0.1.0
 */
export const session = (input: {
  readonly videoId: string
  readonly rallies: ReadonlyArray<Domain.Rally>
  readonly speed: number
  readonly display: Progress.Display
}) =>
  Effect.gen(function*() {
    const rc = yield* RallyCache.RallyCache
    const { display, rallies, speed, videoId } = input
    const navigations: Array<Navigation> = []
    const playing = { index: -1, startedAt: 0, duration: 0 }
    const total = rallies.length

    yield* Progress.live(videoId, display, (status) => {
      const hits = navigations.filter((n) => n.hit).length
      const elapsed = playing.index < 0 ? 0 : Math.min(playing.duration, (performance.now() - playing.startedAt) / 1000 * speed)
      return [
        `${Output.bold(`▶ rally ${playing.index}`)} (${navigations.length}/${total}) · playing ${RalliesGrammar.formatTime(elapsed, 1)} / ${
          RalliesGrammar.formatTime(playing.duration, 1)
        } at ${speed}x · hits ${hits}/${navigations.length}${
          navigations.length > 0 ? ` (${Output.formatPercent(hits / navigations.length)})` : ""
        }`,
        `  ${Progress.strip(status, playing.index)}`,
        ...Progress.statusLines(status, rallies.map((r) => r.index))
      ]
    })

    for (const rally of rallies) {
      yield* rc.navigate(videoId, rally.index)
      const started = yield* Output.nowMs
      const clip = yield* rc.getClip(videoId, rally.index)
      const waitMs = Output.round((yield* Output.nowMs) - started, 2)
      const navigation: Navigation = { index: rally.index, hit: clip.cached, waitMs }
      navigations.push(navigation)
      yield* display.log(
        `rally ${String(rally.index).padStart(3)}  ${navigation.hit ? Output.green("hit ") : Output.red("miss")}  wait ${
          Output.formatMs(waitMs)
        }`
      )
      playing.index = rally.index
      playing.duration = rally.end - rally.start
      playing.startedAt = performance.now()
      yield* Effect.sleep(Duration.millis((playing.duration * 1000) / speed))
    }
    return report(navigations)
  })

/**
 * Add a session's hits and misses to the cache folder's CLI statistics.
 *
 * @since 0.1.0
 */
export const record = (cacheDir: string, r: WatchReport) => {
  const hits = r.navigations.filter((n) => n.hit).length
  return CliStats.add(cacheDir, { hits, misses: r.navigations.length - hits })
}

/**
 * A watch report for people.
 *
 * @since 0.1.0
 */
export const summary = (r: WatchReport): string => {
  const hits = r.navigations.filter((n) => n.hit).length
  return `${Output.count(r.navigations.length, "navigation")}: ${Output.count(hits, "hit")}, ${
    Output.count(r.navigations.length - hits, "miss", "misses")
  }, hit rate ${
    Output.formatPercent(r.hitRate)
  } · wait p50 ${Output.formatMs(r.p50WaitMs)}, p99 ${Output.formatMs(r.p99WaitMs)}`
}

/** @since 0.1.0 */
export const speed = Options.float("speed").pipe(
  Options.withPseudoName("X"),
  Options.withDescription("Playback speed: 1 is real time, 4 plays four times faster"),
  Options.filterMap(
    (x) => Number.isFinite(x) && x > 0 && x <= 10_000 ? Option.some(x) : Option.none(),
    "--speed must be a number above 0 (and at most 10000)"
  ),
  Options.withDefault(1)
)

const limit = Options.integer("limit").pipe(
  Options.withPseudoName("N"),
  Options.withDescription("Watch only the first N rallies"),
  Options.filterMap((n) => n >= 1 ? Option.some(n) : Option.none(), "--limit must be at least 1"),
  Options.optional
)

/**
 * @since 0.1.0
 */
export const command = Command.make(
  "watch",
  {
    ...Common.common,
    video: Video.video,
    rallies: Video.rallies,
    speed,
    limit,
    mode: Video.mode,
    concurrency: Video.concurrency,
    videoId: Video.videoId
  },
  (options) =>
    Effect.gen(function*() {
      const file = yield* Common.readRallies(options.rallies)
      const source = yield* Video.checkSource(options.video)
      yield* Common.withCache(options, Video.settings(options), (cacheDir) =>
        Effect.scoped(Effect.gen(function*() {
          const opened = yield* Video.open({ path: source, file, videoId: options.videoId, mode: options.mode })
          const display = yield* Progress.makeDisplay({ tty: Output.isTTY(), plain: !options.json })
          const rallies = Option.match(options.limit, {
            onNone: () => opened.rallies,
            onSome: (n) => opened.rallies.slice(0, n)
          })
          yield* Progress.follow(opened.source.id, display)
          const result = yield* session({ videoId: opened.source.id, rallies, speed: options.speed, display })
          yield* display.clear
          yield* record(cacheDir, result)
          yield* options.json ? Output.json(result) : Output.stdout(summary(result))
        })))
    })
).pipe(Command.withDescription("Simulate a viewer playing each rally in turn, and report hits and waits"))
