/**
 * `rallycache demo [--dir DIR]`: the whole job on embedded defaults, with no
 * setup. Generates a sample match (testsrc2 with a burned-in clock, and
 * audio) and its rallies file, watches it with a live queue display, and
 * ends with a metrics table, where the clips are, and what to run next.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as CacheStore from "@rallycache/core/CacheStore"
import * as Metrics from "@rallycache/core/Metrics"
import * as RalliesGrammar from "@rallycache/core/RalliesGrammar"
import * as RallyCache from "@rallycache/core/RallyCache"
import * as SampleVideo from "@rallycache/node/SampleVideo"
import { Effect, Option } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import * as Common from "../internal/common.js"
import { invokedAs } from "../internal/invocation.js"
import * as Output from "../internal/output.js"
import { ensureDir, outName, place } from "../internal/place.js"
import * as Progress from "../internal/progress.js"
import * as Video from "../internal/video.js"
import * as Watch from "./watch.js"

const dir = Options.directory("dir").pipe(
  Options.withPseudoName("DIR"),
  Options.withDescription("Where to put the sample match, its rallies file and the clips (default: a temp folder)"),
  Options.optional
)

const duration = Options.float("duration").pipe(
  Options.withPseudoName("SECONDS"),
  Options.withDescription("Length of the sample match in seconds (default 120; CI uses a few seconds)"),
  Options.filterMap(
    (x) => Number.isFinite(x) && x >= 2 && x <= 3600 ? Option.some(x) : Option.none(),
    "--duration must be from 2 to 3600 seconds"
  ),
  Options.withDefault(120)
)

const speed = Options.float("speed").pipe(
  Options.withPseudoName("X"),
  Options.withDescription("Playback speed of the simulated viewer (default: about 30 s of watching)"),
  Options.filterMap(
    (x) => Number.isFinite(x) && x > 0 && x <= 10_000 ? Option.some(x) : Option.none(),
    "--speed must be a number above 0"
  ),
  Options.optional
)

const demoVideoId = "demo-match"

/** Seconds of watching the demo aims for, whatever the match length. */
const targetWatchSeconds = 30

/**
 * @since 0.1.0
 */
export const command = Command.make(
  "demo",
  { ...Common.common, dir, duration, speed, mode: Video.mode, concurrency: Video.concurrency },
  (options) =>
    Effect.gen(function*() {
      const demoDir = NodePath.resolve(Option.getOrElse(options.dir, () => NodePath.join(NodeOs.tmpdir(), "rallycache-demo")))
      // The demo keeps its clips in a cache of its own, under DIR, unless the
      // user names a cache folder.
      const ownCache = Option.isNone(options.cacheDir) && process.env["RALLYCACHE_CACHE_DIR"] === undefined
      const cacheDir = ownCache ? NodePath.join(demoDir, "cache") : yield* Common.resolveCacheDir(options.cacheDir)
      yield* ensureDir(demoDir)
      const say = (line: string) => options.json ? Effect.void : Output.stdout(line)

      yield* Common.withCache({ ...options, cacheDir: Option.some(cacheDir) }, Video.settings(options), () =>
        Effect.scoped(Effect.gen(function*() {
          const rc = yield* RallyCache.RallyCache
          const store = yield* CacheStore.CacheStore
          const metrics = yield* Metrics.Metrics

          // Start from no demo clip, so preloading has work to show (other videos' clips stay).
          for (const entry of yield* store.list) {
            if (entry.videoId === demoVideoId) yield* store.remove(entry.key, "manual")
          }
          yield* say(Output.bold("rallycache demo"))
          yield* say(`generating a ${RalliesGrammar.formatTime(options.duration, 0)} sample match in ${demoDir} ...`)
          const started = yield* Output.nowMs
          const videoPath = yield* SampleVideo.cached({ duration: options.duration, dir: demoDir, width: 320, height: 240 })
          const generatedMs = (yield* Output.nowMs) - started
          const sample = SampleVideo.sampleRallies(options.duration, Math.max(3, Math.round(options.duration / 8)))
          const ralliesPath = NodePath.join(demoDir, "rallies.json")
          const file = {
            videoId: demoVideoId,
            rallies: sample.map((r) => ({ start: RalliesGrammar.formatTime(r.start, 1), end: RalliesGrammar.formatTime(r.end, 1) }))
          }
          NodeFs.writeFileSync(ralliesPath, JSON.stringify(file, null, 2) + "\n")
          yield* say(`  video   ${videoPath} (${Output.formatMs(generatedMs)})`)
          yield* say(`  rallies ${ralliesPath} (${sample.length} rallies)`)

          const opened = yield* Video.open({
            path: videoPath,
            file: { videoId: file.videoId, rallies: sample.map((r) => ({ start: r.start, end: r.end })) },
            videoId: Option.none(),
            mode: options.mode
          })
          const played = opened.rallies.reduce((sum, r) => sum + (r.end - r.start), 0)
          const speedValue = Option.getOrElse(options.speed, () => Math.max(1, Math.ceil(played / targetWatchSeconds)))
          yield* say(
            `\nwatching ${opened.rallies.length} rallies (${RalliesGrammar.formatTime(played, 0)} of play) at ${speedValue}x, ${opened.mode} mode, cache ${cacheDir}\n`
          )

          const display = yield* Progress.makeDisplay({ tty: Output.isTTY() && !options.json, plain: !options.json })
          yield* Progress.follow(opened.source.id, display)
          const report = yield* Watch.session({
            videoId: opened.source.id,
            rallies: opened.rallies,
            speed: speedValue,
            display
          })
          yield* display.clear
          yield* Watch.record(cacheDir, report)

          // Every clip, placed beside the sample so they are easy to open.
          const clipsDir = NodePath.join(demoDir, "clips")
          yield* ensureDir(clipsDir)
          const placed: Array<string> = []
          for (const rally of opened.rallies) {
            const clip = yield* rc.getClip(opened.source.id, rally.index)
            const name = outName(rally.index, clip.path)
            yield* place(clip.path, clipsDir, name)
            placed.push(name)
          }

          const snapshot = yield* metrics.snapshot
          const usage = yield* store.usage
          if (options.json) {
            return yield* Output.json({
              video: videoPath,
              rallies: ralliesPath,
              clips: clipsDir,
              cacheDir,
              ...report,
              exportMs: snapshot.exportMs,
              cache: usage
            })
          }
          yield* say(Watch.summary(report) + "\n")
          yield* say(Output.table([
            ["metric", "value"],
            ["hit rate", `${Output.formatPercent(report.hitRate)} of ${Output.count(report.navigations.length, "navigation")}`],
            ["wait", `p50 ${Output.formatMs(report.p50WaitMs)}, p99 ${Output.formatMs(report.p99WaitMs)}`],
            [
              "export time",
              snapshot.exportMs.count === 0
                ? "no export"
                : `${snapshot.exportMs.count} exports, p50 ${Output.formatMs(snapshot.exportMs.p50)}, p99 ${
                  Output.formatMs(snapshot.exportMs.p99)
                }`
            ],
            ["export failures", `${snapshot.exportFailures} (${snapshot.exportRetries} retries)`],
            ["cache usage", `${usage.entries} clips, ${Output.formatBytes(usage.bytes)}`]
          ], { header: true }))
          yield* say(`\nclips:   ${clipsDir} (${placed[0] ?? "no clip"} ...)`)
          yield* say(`cache:   ${cacheDir}`)
          yield* say(`\nnext, on your own video (rallies file format: see ${ralliesPath}):`)
          const rallycache = invokedAs()
          yield* say(`  ${rallycache} export your-match.mp4 --rallies your-rallies.json --out ./clips`)
          yield* say(`  ${rallycache} watch your-match.mp4 --rallies your-rallies.json --speed 4`)
        })))
    })
).pipe(Command.withDescription("Generate a sample match and watch it through the cache, with live progress"))
