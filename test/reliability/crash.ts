/**
 * The body of the crash-safety files (`crash.cli*.test.ts`): `rallycache
 * export` (accurate mode, so ffmpeg works long enough to be caught
 * mid-encode) on a small generated video, SIGKILLed many times in a row in
 * one cache folder: every other kill at a random moment of the whole export,
 * the others at a random moment while one of its encodes runs (so that some
 * kills land mid-encode however loaded the machine is). Split in files of their own cache
 * folder and seed so that vitest runs them side by side. After each kill:
 * - no ffmpeg of the dead CLI stays alive;
 * - the next start (`cache verify --deep`) removes no invalid entry: no
 *   entry was ever served as valid without being a complete clip. The one
 *   thing it may drop is an entry whose clip is missing: an eviction removes
 *   the clip, then records the removal (so that a clip of the same key
 *   written meanwhile by another process is never deleted), and a kill
 *   between the two leaves such an entry, which is never served (every hit
 *   stats its clip) and is counted;
 * - after that start, tmp/ and run/ are empty;
 * - a fresh process finds every index entry complete and playable;
 * - an export run afterwards completes the set.
 * Not a test file.
 */
import { expect } from "@effect/vitest"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import {
  binaries,
  cliRunner,
  collect,
  ffmpegIn,
  jsonOut,
  mediaCheckOnce,
  reloadCheck,
  report,
  rng,
  sampleVideo,
  tempDir
} from "./support.js"

const ralliesOf = (set: number) =>
  Array.from({ length: 8 }, (_, k) => {
    const start = Math.round(((k * 0.61 + set * 0.037) % 4.6) * 1000) / 1000
    return { start, end: Math.round((start + 0.8 + (k % 3) * 0.2) * 1000) / 1000 }
  })

const waitUntil = (predicate: () => boolean, timeoutMs: number) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!predicate() && Date.now() < deadline) yield* Effect.sleep("20 millis")
    return predicate()
  })

/**
 * `kills` SIGKILLs in a row in one new cache folder, their moments drawn
 * from `seedValue`; `firstSet` numbers this file's rallies sets apart from
 * the other file's. Reports its figures as `name`.
 */
export const killsInARow = (options: {
  readonly name: string
  readonly kills: number
  readonly seedValue: number
  readonly firstSet: number
}) =>
  Effect.gen(function*() {
    const { kills, firstSet } = options
    const bins = yield* binaries
    const cli = cliRunner(bins)
    const video = yield* sampleVideo({ duration: 6 })
    const dir = tempDir("crash")
    const cacheDir = NodePath.join(dir, "cache")
    const random = rng(options.seedValue)
    // A small cache (clips are 50-150 kB: about 15 fit, two sets), so that eviction runs too and
    // each deep verify has a bounded amount of work.
    const env = { RALLYCACHE_MAX_BYTES: "1500000" }
    const exportArgs = (set: number) => {
      const file = NodePath.join(dir, `rallies-${set}.json`)
      if (!NodeFs.existsSync(file)) NodeFs.writeFileSync(file, JSON.stringify({ videoId: "crash-match", rallies: ralliesOf(set) }))
      return ["export", video, "--rallies", file, "--cache-dir", cacheDir, "--mode", "accurate", "--json"]
    }

    // A full run first: how long a set takes here, so the kills spread over all of it.
    const started = Date.now()
    const warm = yield* cli.run(exportArgs(1000 + firstSet), env)
    const fullMs = Date.now() - started
    expect(warm.code, warm.stderr).toBe(0)

    const figures = {
      kills: 0,
      finishedBeforeKill: 0,
      killsWithFfmpegRunning: 0,
      orphansAfterKill: 0,
      verifyRemoved: 0,
      verifyMissing: 0,
      verifyChecked: 0,
      tempAfterStart: 0,
      runRecordsAfterStart: 0,
      unplayableEntries: 0,
      unknownClips: 0,
      locksAfterStart: 0,
      completions: 0,
      delaysMs: [] as Array<number>
    }
    for (let i = 0; i < kills; i++) {
      const child = cli.spawn(exportArgs(firstSet + i), env)
      const done = collect(child)
      let exited = false
      void done.then(() => (exited = true))
      const spawnedAt = Date.now()
      if (i % 2 === 0) {
        // At a random moment of the whole export: start-up, probe, encodes, commits.
        yield* Effect.sleep(random.int(30, Math.max(400, Math.round(fullMs * 1.1))))
      } else {
        // While an encode runs, whatever the machine's load makes of the timings: once an ffmpeg of
        // this export is seen, a random moment of the next 400 ms.
        yield* waitUntil(() => exited || ffmpegIn(cacheDir).length > 0, fullMs * 3)
        yield* Effect.sleep(random.int(0, 400))
      }
      figures.delaysMs.push(Date.now() - spawnedAt)
      if (ffmpegIn(cacheDir).length > 0) figures.killsWithFfmpegRunning++
      if (exited) figures.finishedBeforeKill++
      child.kill("SIGKILL")
      yield* Effect.promise(() => done)
      figures.kills++

      // ffmpeg dies with its parent (pdeathsig); give the kernel a moment.
      const gone = yield* waitUntil(() => ffmpegIn(cacheDir).length === 0, 3000)
      if (!gone) figures.orphansAfterKill += ffmpegIn(cacheDir).length
      expect(ffmpegIn(cacheDir), `ffmpeg orphans after kill ${i}`).toEqual([])

      // The next start: a deep verify of every entry.
      const verify = yield* cli.run(["cache", "verify", "--deep", "--json", "--cache-dir", cacheDir], env)
      expect(verify.code, verify.stderr).toBe(0)
      const verified = jsonOut<{ checked: number; valid: number; removed: Array<{ key: string; reason: string }> }>(verify)
      figures.verifyChecked += verified.checked
      // An entry whose clip is gone (a kill inside an eviction) is dropped, never served; any
      // other removal is an invalid clip that was recorded as complete.
      const missing = verified.removed.filter((r) => r.reason.startsWith("missing:"))
      figures.verifyMissing += missing.length
      figures.verifyRemoved += verified.removed.length - missing.length
      expect(verified.removed.filter((r) => !missing.includes(r)), `invalid entries found after kill ${i}`).toEqual([])

      // What a fresh process sees.
      // What the start of `cache verify` left: looked at before the next store repairs anything.
      const seen = yield* reloadCheck(cacheDir, bins)
      figures.tempAfterStart += seen.left.temp.length
      figures.runRecordsAfterStart += seen.left.run.length
      figures.unplayableEntries += seen.bad.length
      figures.unknownClips += seen.left.unknown.length
      figures.locksAfterStart += seen.left.locks.length
      expect(seen.left.temp, `temp files after the start following kill ${i}`).toEqual([])
      expect(seen.left.run, `pid records after the start following kill ${i}`).toEqual([])
      expect(seen.left.unknown, `unknown clips after the start following kill ${i}`).toEqual([])
      expect(seen.left.locks, `key locks after the start following kill ${i}`).toEqual([])
      expect(seen.repaired).toMatchObject({ dropped: 0, removedUnknown: 0, removedTemp: 0, removedLocks: 0 })
      expect(seen.bad).toEqual([])

      // And an export afterwards completes the set.
      const complete = yield* cli.run(exportArgs(firstSet + i), env)
      expect(complete.code, complete.stderr).toBe(0)
      const json = jsonOut<{ clips: Array<{ path: string }> }>(complete)
      expect(json.clips.length).toBe(8)
      for (const clip of json.clips) expect(mediaCheckOnce(bins.ffmpeg.path, bins.ffprobe.path, clip.path).ok).toBe(true)
      figures.completions++
    }

    report(options.name, {
      kills: figures.kills,
      fullExportMs: fullMs,
      killDelayMs: { min: Math.min(...figures.delaysMs), max: Math.max(...figures.delaysMs) },
      killsWithFfmpegRunning: figures.killsWithFfmpegRunning,
      finishedBeforeKill: figures.finishedBeforeKill,
      orphansAfterKill: figures.orphansAfterKill,
      verifyChecked: figures.verifyChecked,
      verifyRemoved: figures.verifyRemoved,
      verifyMissing: figures.verifyMissing,
      tempAfterStart: figures.tempAfterStart,
      runRecordsAfterStart: figures.runRecordsAfterStart,
      unplayableEntries: figures.unplayableEntries,
      unknownClips: figures.unknownClips,
      locksAfterStart: figures.locksAfterStart,
      completions: figures.completions,
      cli: process.env["RELIABILITY_TSX"] === "1" ? "tsx" : "dist bundle"
    })
    expect(figures.killsWithFfmpegRunning, "some kills must land while ffmpeg runs").toBeGreaterThan(0)
    NodeFs.rmSync(dir, { recursive: true, force: true })
  })
