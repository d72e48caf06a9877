/**
 * The floors under the bench's goals, each step alone, so that a missed
 * goal can cite what this machine cannot go below:
 * `pnpm exec tsx test/bench/floors.ts [--quick] [--json]`.
 *
 * - the bare copy cut of the export scenario's rally (ffmpeg in a session of its own);
 * - starting any child process from Node (`/bin/true`, same way);
 * - fsync of the new clip; the in-process container check of it;
 * - rename into place + fsync of the folder; one journal line appended + fsync;
 * - the crash-safe, checked export without any cache around it (all of the above in a row),
 *   and its ratio to the bare cut: the floor of `export.copyRatioVsBareCut`;
 * - the probe of the source that `openVideo` runs once per video (streams, duration, first
 *   keyframes), and the reading of every keyframe that the first copy or exact cut needs:
 *   with the bare cuts, the floor of `match.copy.makespanRatioVsPQueue`, whose p-queue side
 *   replays the cuts alone.
 *
 * Steps are interleaved within each repetition and medians reported, as
 * everywhere in the bench.
 */
import { NodeContext } from "@effect/platform-node"
import { Effect } from "effect"
import { appendFileSync, closeSync, fsyncSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as ClipCheck from "../../packages/node/src/internal/media/clipCheck.js"
import { allKeyframes, probeSource } from "../../packages/node/src/internal/media/ffprobe.js"
import { resolveBinaries, runRaw } from "./lib/ffmpeg.js"
import { ensureFixture, fullSpec, quickSpec, smokeSpec } from "./lib/fixture.js"
import { log } from "./lib/log.js"
import { describeMachine, machine } from "./lib/machine.js"
import { smoke } from "./lib/smoke.js"
import { median } from "./lib/stats.js"
import { rallyNear } from "./scenarios/export.js"

const quick = process.argv.includes("--quick")
const json = process.argv.includes("--json")

const timed = <A>(f: () => A): number => {
  const t0 = performance.now()
  f()
  return performance.now() - t0
}

const fsyncPath = (path: string, flag: string) => {
  const fd = openSync(path, flag)
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

const main = async () => {
  const binaries = await resolveBinaries()
  const fixture = await ensureFixture(smoke ? smokeSpec : quick ? quickSpec : fullSpec)
  const rally = fixture.rallies[rallyNear(fixture.rallies, 10)]!
  const dir = mkdtempSync(join(tmpdir(), "rallycache-floors-"))
  const clips = join(dir, "clips")
  mkdirSync(clips)
  const temp = join(dir, "clip.part")
  const journal = join(dir, "index.jsonl")
  const line = `${JSON.stringify({ o: "p", e: { key: "0".repeat(32), videoId: "floors", rallyIndex: 0, sizeBytes: 1 } })}\n`
  // The exporter's copy-mode arguments (see packages/node/src/internal/export/ffmpegArgs.ts).
  const cut = [
    "-nostdin", "-y", "-hide_banner", "-v", "error", "-progress", "pipe:1", "-nostats",
    "-ss", rally.start.toFixed(6), "-i", fixture.path, "-t", (rally.end - rally.start).toFixed(6),
    "-map", "0:v:0?", "-map", "0:a:0?", "-dn", "-sn", "-c", "copy", "-use_editlist", "0",
    "-movflags", "+faststart", "-f", "mp4", temp
  ]
  const steps: Record<string, Array<number>> = {
    bareCut: [], spawn: [], fsyncClip: [], clipCheck: [], renameAndFsyncDir: [], journalAppendFsync: [], crashSafeCut: [],
    sourceProbe: [], allKeyframes: []
  }
  // What openVideo and the first cut read of the source, as the exporter reads it (the same code).
  const probe = () =>
    Effect.runPromise(Effect.gen(function*() {
      const t0 = performance.now()
      const entry = yield* probeSource(binaries.ffprobe, fixture.path, "floors")
      const t1 = performance.now()
      yield* allKeyframes(binaries.ffprobe, entry)
      return { probeMs: t1 - t0, keyframesMs: performance.now() - t1 }
    }).pipe(Effect.provide(NodeContext.layer)))
  const repetitions = smoke ? 1 : quick ? 9 : 21
  try {
    await runRaw(binaries.ffmpeg, cut) // warm-up
    for (let r = 0; r < repetitions; r++) {
      const final = join(clips, `${r}.mp4`)
      const spawnFirst = r % 2 === 0
      if (spawnFirst) steps["spawn"]!.push((await runRaw("/bin/true", [])).ms)
      steps["bareCut"]!.push((await runRaw(binaries.ffmpeg, cut)).ms)
      steps["fsyncClip"]!.push(timed(() => fsyncPath(temp, "r+")))
      steps["clipCheck"]!.push(timed(() => Effect.runSync(ClipCheck.inspect(temp))))
      steps["renameAndFsyncDir"]!.push(timed(() => {
        renameSync(temp, final)
        fsyncPath(clips, "r")
      }))
      steps["journalAppendFsync"]!.push(timed(() => {
        appendFileSync(journal, line)
        fsyncPath(journal, "r+")
      }))
      // All of it in a row: the crash-safe, checked export with no cache around it.
      const t0 = performance.now()
      await runRaw(binaries.ffmpeg, cut)
      fsyncPath(temp, "r+")
      Effect.runSync(ClipCheck.inspect(temp))
      renameSync(temp, final)
      fsyncPath(clips, "r")
      appendFileSync(journal, line)
      fsyncPath(journal, "r+")
      steps["crashSafeCut"]!.push(performance.now() - t0)
      if (!spawnFirst) steps["spawn"]!.push((await runRaw("/bin/true", [])).ms)
      const read = await probe()
      steps["sourceProbe"]!.push(read.probeMs)
      steps["allKeyframes"]!.push(read.keyframesMs)
      rmSync(final, { force: true })
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const medians = Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, median(v)]))
  const floorRatio = medians["crashSafeCut"]! / medians["bareCut"]!
  if (json) {
    process.stdout.write(`${JSON.stringify({ machine: machine(), rallySeconds: rally.end - rally.start, repetitions, medians, crashSafeRatioVsBareCut: floorRatio }, null, 2)}\n`)
    return
  }
  const rows = Object.entries(medians).map(([k, v]) => `| ${k} | ${v.toFixed(2)} ms |`)
  process.stdout.write(
    [
      `floors, ${describeMachine(machine())}, ${(rally.end - rally.start).toFixed(1)} s rally, median of ${repetitions}`,
      "",
      "| step | median |",
      "|---|---:|",
      ...rows,
      `| crashSafeCut / bareCut (floor of export.copyRatioVsBareCut) | ${floorRatio.toFixed(2)}x |`,
      ""
    ].join("\n")
  )
  log("done")
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
