/**
 * ffmpeg faults, through a fake ffmpeg: a shell script in front of the real
 * binary that, for each export it is asked to run, takes the next line of
 * a plan file and does what it says:
 *
 * | plan line      | what the "ffmpeg" does                                                  |
 * |----------------|-------------------------------------------------------------------------|
 * | `ok`           | runs the real ffmpeg                                                    |
 * | `signal S`     | starts the real ffmpeg, and after S seconds SIGKILLs it and itself      |
 * | `garbage`      | prints random bytes on stderr and stdout, exits 187                     |
 * | `nospace`      | says "No space left on device", exits 1                                 |
 * | `hang`         | ignores SIGTERM and never ends (the export timeout must end it)         |
 *
 * Every attempt is logged (time, pid, mode, output), so the test can check
 * the retry policy from outside: transient faults (signal, hang) are
 * retried with backoff up to `maxRetries`, permanent ones (garbage exit, a
 * full disk) are not; and after all of it no fake or real ffmpeg is left running and
 * no temp file is left behind.
 */
import { describe, expect, it } from "@effect/vitest"
import { RallyCache } from "@rallycache/core"
import { Cause, Context, Effect, Exit, Layer, Option } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { binaries, mediaCheck, nodeStack, processesWith, report, rng, sampleVideo, seed, size, tempDir } from "./support.js"

const fakeFfmpeg = (dir: string, real: string) => {
  const script = NodePath.join(dir, "fake-ffmpeg")
  const plan = NodePath.join(dir, "plan.txt")
  const log = NodePath.join(dir, "attempts.log")
  NodeFs.writeFileSync(plan, "")
  NodeFs.writeFileSync(log, "")
  NodeFs.writeFileSync(
    script,
    `#!/bin/sh
REAL='${real}'
PLAN='${plan}'
LOG='${log}'
case " $* " in *" -progress "*) ;; *) exec "$REAL" "$@" ;; esac
for last; do :; done
line=$(head -n 1 "$PLAN")
if [ -n "$line" ]; then tail -n +2 "$PLAN" > "$PLAN.next"; mv "$PLAN.next" "$PLAN"; else line=ok; fi
mode=\${line%% *}
arg=\${line#* }
echo "$(date +%s%3N) $$ $mode $last" >> "$LOG"
case "$mode" in
  ok) exec "$REAL" "$@" ;;
  signal)
    "$REAL" "$@" &
    child=$!
    sleep "$arg"
    kill -KILL "$child" 2>/dev/null
    kill -KILL $$ ;;
  garbage)
    head -c 300 /dev/urandom >&2
    printf '\\n' >&2
    head -c 100 /dev/urandom
    exit 187 ;;
  nospace)
    echo "[mp4 @ 0x5581] Error writing trailer of $last: No space left on device" >&2
    exit 1 ;;
  hang)
    trap '' TERM INT
    while :; do sleep 0.2; done ;;
esac
exit 99
`,
    { mode: 0o755 }
  )
  const setPlan = (lines: ReadonlyArray<string>) => NodeFs.writeFileSync(plan, lines.map((l) => l + "\n").join(""))
  const attempts = () =>
    NodeFs.readFileSync(log, "utf8").split("\n").filter((l) => l.length > 0).map((l) => {
      const [at, pid, mode, out] = l.split(" ")
      const key = NodePath.basename(out ?? "").split(".")[0] ?? ""
      return { at: Number(at), pid: Number(pid), mode: mode ?? "", key }
    })
  const remaining = () => NodeFs.readFileSync(plan, "utf8").split("\n").filter((l) => l.length > 0)
  return { script, setPlan, attempts, remaining }
}

const transient = new Set(["signal", "hang"])
/** A full disk is not retried at once: the next request for the clip tries again. */
const permanent = new Set(["garbage", "nospace"])

describe("ffmpeg faults (fake ffmpeg)", () => {
  it.live("transient faults are retried with backoff, permanent ones are not, a hang is ended by the timeout", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const video = yield* sampleVideo({ duration: 6 })
      const dir = tempDir("ffmpeg")
      const cacheDir = NodePath.join(dir, "cache")
      const fake = fakeFfmpeg(dir, bins.ffmpeg.path)
      const maxRetries = 3
      const baseMs = 200
      const timeoutMs = 1500
      const soak = size(12, 60)
      const rallies = Array.from({ length: 6 + soak }, (_, i) => {
        const start = Math.round(((i * 0.29) % 4.5) * 1000) / 1000
        return { start, end: Math.round((start + 0.8 + (i % 4) * 0.15) * 1000) / 1000 }
      })
      const stack = nodeStack({
        cacheDir,
        ffmpeg: { ffmpeg: { ...bins.ffmpeg, path: fake.script }, ffprobe: bins.ffprobe },
        config: { concurrency: 1, maxRetries, retryBaseDelay: baseMs, exportTimeout: timeoutMs },
        // The fake ffmpeg is the point: every cut goes through it, none through the in-process cutter.
        exporter: { timeout: timeoutMs, killGrace: 300, inProcess: false }
      })

      yield* Effect.scoped(Effect.gen(function*() {
        const cache = Context.get(yield* Layer.build(stack), RallyCache.RallyCache)
        const videoId = (yield* cache.openVideo({ path: video, rallies, id: "ffmpeg-faults" })).source.id

        /** Run rally `index` through the plan; return its exit and its attempts (from the log). */
        const attempt = (index: number, plan: ReadonlyArray<string>) =>
          Effect.gen(function*() {
            fake.setPlan(plan)
            const before = fake.attempts().length
            const exit = yield* Effect.exit(cache.getClip(videoId, index))
            const tries = fake.attempts().slice(before)
            return { exit, tries }
          })

        const gapsOk = (tries: ReadonlyArray<{ readonly at: number; readonly mode: string }>, minFirst: number) =>
          tries.slice(1).every((t, k) => t.at - tries[k]!.at >= minFirst * 2 ** k * 0.8 - 5)

        // 1. Killed by a signal once, then fine: retried after a backoff.
        const killed = yield* attempt(0, ["signal 0.05", "ok"])
        expect(Exit.isSuccess(killed.exit)).toBe(true)
        expect(killed.tries.map((t) => t.mode)).toEqual(["signal", "ok"])
        expect(gapsOk(killed.tries, baseMs)).toBe(true)

        // 2. Killed twice: two retries, each backoff twice the previous one.
        const twice = yield* attempt(1, ["signal 0", "signal 0.02", "ok"])
        expect(Exit.isSuccess(twice.exit)).toBe(true)
        expect(twice.tries.map((t) => t.mode)).toEqual(["signal", "signal", "ok"])
        expect(gapsOk(twice.tries, baseMs)).toBe(true)

        // 3. Exits non-zero with garbage: permanent, not retried, one-line typed error.
        const garbage = yield* attempt(2, ["garbage", "ok"])
        expect(garbage.tries.map((t) => t.mode)).toEqual(["garbage"])
        expect(fake.remaining()).toEqual(["ok"])
        const garbageError = Exit.isFailure(garbage.exit) ? Cause.failureOption(garbage.exit.cause) : Option.none()
        expect(Option.map(garbageError, (e) => e._tag)).toEqual(Option.some("ExportFailed"))
        if (Option.isSome(garbageError) && garbageError.value._tag === "ExportFailed") {
          expect(garbageError.value.transient).toBe(false)
          expect(garbageError.value.reason).toBe("exit")
          expect(garbageError.value.message).not.toContain("\n")
        }

        // 4. No space left: one attempt, and one line that says so.
        const nospace = yield* attempt(3, ["nospace", "ok"])
        expect(nospace.tries.map((t) => t.mode)).toEqual(["nospace"])
        const nospaceError = Exit.isFailure(nospace.exit) ? Cause.failureOption(nospace.exit.cause) : Option.none()
        expect(Option.map(nospaceError, (e) => e._tag)).toEqual(Option.some("ExportFailed"))
        if (Option.isSome(nospaceError) && nospaceError.value._tag === "ExportFailed") {
          expect([nospaceError.value.reason, nospaceError.value.transient]).toEqual(["no-space", false])
          expect(nospaceError.value.message).toMatch(/^export failed \(no-space\): no space left on device \(/)
          expect(nospaceError.value.message).not.toContain("\n")
        }

        // 5. Hangs and ignores SIGTERM: the timeout ends it (SIGKILL after the grace), then a retry.
        const hang = yield* attempt(4, ["hang", "ok"])
        expect(Exit.isSuccess(hang.exit)).toBe(true)
        expect(hang.tries.map((t) => t.mode)).toEqual(["hang", "ok"])
        expect(hang.tries[1]!.at - hang.tries[0]!.at).toBeGreaterThanOrEqual(timeoutMs)
        expect(processesWith(fake.script), "hung fake ffmpeg still alive").toEqual([])

        // 6. Transient every time: maxRetries retries, then a typed transient failure.
        const exhausted = yield* attempt(5, Array.from({ length: maxRetries + 2 }, () => "signal 0"))
        expect(exhausted.tries.length).toBe(maxRetries + 1)
        const exhaustedError = Exit.isFailure(exhausted.exit) ? Cause.failureOption(exhausted.exit.cause) : Option.none()
        expect(Option.map(exhaustedError, (e) => e._tag)).toEqual(Option.some("ExportFailed"))

        // 7. Random faults: the attempts of each rally must follow the policy.
        const random = rng(seed)
        const plan = Array.from({ length: soak * (maxRetries + 2) }, () => {
          const r = random.next()
          return r < 0.45
            ? "ok"
            : r < 0.7
            ? `signal ${(random.next() * 0.15).toFixed(3)}`
            : r < 0.82
            ? "nospace"
            : r < 0.94
            ? "garbage"
            : "hang"
        })
        fake.setPlan(plan)
        const before = fake.attempts().length
        const outcomes: Array<{ index: number; ok: boolean; tag: string }> = []
        for (let index = 6; index < 6 + soak; index++) {
          const exit = yield* Effect.exit(cache.getClip(videoId, index))
          if (Exit.isSuccess(exit)) {
            expect(mediaCheck(bins.ffmpeg.path, bins.ffprobe.path, exit.value.path).ok).toBe(true)
            outcomes.push({ index, ok: true, tag: "" })
          } else {
            const failure = Cause.failureOption(exit.cause)
            expect(Option.isSome(failure), "a typed failure, not a defect").toBe(true)
            outcomes.push({ index, ok: false, tag: Option.isSome(failure) ? failure.value._tag : "defect" })
          }
        }
        const tries = fake.attempts().slice(before)
        const byKey = new Map<string, Array<string>>()
        for (const t of tries) byKey.set(t.key, [...(byKey.get(t.key) ?? []), t.mode])
        const violations: Array<string> = []
        for (const modes of byKey.values()) {
          modes.forEach((mode, i) => {
            const last = i === modes.length - 1
            if (permanent.has(mode) && !last) violations.push(`retried a permanent failure: ${modes.join(",")}`)
            if (transient.has(mode) && last && modes.length < maxRetries + 1) {
              violations.push(`gave up on a transient failure early: ${modes.join(",")}`)
            }
          })
          if (modes.length > maxRetries + 1) violations.push(`too many attempts: ${modes.join(",")}`)
        }
        expect(violations).toEqual([])
        expect(byKey.size).toBe(soak)

        const modeCount: Record<string, number> = {}
        for (const t of tries) modeCount[t.mode] = (modeCount[t.mode] ?? 0) + 1
        report("faults.ffmpeg", {
          scriptedCases: 6,
          randomExports: soak,
          randomAttempts: tries.length,
          faultsByMode: modeCount,
          succeeded: outcomes.filter((o) => o.ok).length,
          failedTyped: outcomes.filter((o) => !o.ok).length,
          policyViolations: violations.length,
          firstBackoffMs: killed.tries[1]!.at - killed.tries[0]!.at,
          hangEndedAfterMs: hang.tries[1]!.at - hang.tries[0]!.at
        })
      }))

      // After shutdown: nothing running, nothing half-written.
      expect(processesWith(fake.script)).toEqual([])
      expect(processesWith(cacheDir)).toEqual([])
      expect(NodeFs.readdirSync(NodePath.join(cacheDir, "tmp"))).toEqual([])
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }), { timeout: 240_000 })
})
