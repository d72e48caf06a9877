/**
 * Several processes, one cache folder, mixed load: two `rallycache export`
 * CLIs on the same rallies, `rallycache get` CLIs, and the HTTP example
 * serving the same clips, all at once. ffmpeg is wrapped by a script that
 * logs when each export of a key starts and ends (and in which process),
 * so the test sees from outside that a key is never exported by two
 * processes at the same time. At the end the index is consistent: a deep
 * verify removes nothing, every entry is a complete clip, nothing is left
 * in tmp/, and no ffmpeg is left running.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import {
  binaries,
  cliEnv,
  cliRunner,
  collect,
  ffmpegIn,
  jsonOut,
  mediaCheck,
  reloadCheck,
  repoRoot,
  report,
  rng,
  sampleVideo,
  seed,
  tempDir
} from "./support.js"

const loggingFfmpeg = (dir: string, real: string) => {
  const script = NodePath.join(dir, "logging-ffmpeg")
  const log = NodePath.join(dir, "exports.log")
  NodeFs.writeFileSync(log, "")
  NodeFs.writeFileSync(
    script,
    `#!/bin/sh
REAL='${real}'
LOG='${log}'
case " $* " in *" -progress "*) ;; *) exec "$REAL" "$@" ;; esac
for last; do :; done
echo "S $(date +%s%3N) $PPID $$ $last" >> "$LOG"
trap 'echo "E $(date +%s%3N) $PPID $$ $last term" >> "$LOG"; exit 143' TERM INT
"$REAL" "$@" &
wait $!
rc=$?
echo "E $(date +%s%3N) $PPID $$ $last $rc" >> "$LOG"
exit $rc
`,
    { mode: 0o755 }
  )
  const intervals = () => {
    const open = new Map<string, { start: number; owner: string; key: string }>()
    const done: Array<{ key: string; start: number; end: number; owner: string; ok: boolean }> = []
    for (const line of NodeFs.readFileSync(log, "utf8").split("\n")) {
      const [kind, at, owner, pid, out, rc] = line.split(" ")
      if (kind === undefined || pid === undefined || out === undefined) continue
      const key = NodePath.basename(out).split(".")[0] ?? ""
      if (kind === "S") open.set(pid, { start: Number(at), owner: owner ?? "", key })
      else {
        const started = open.get(pid)
        if (started !== undefined) {
          done.push({ key, start: started.start, end: Number(at), owner: started.owner, ok: rc === "0" })
          open.delete(pid)
        }
      }
    }
    // Still open (killed without a trace): they last until now.
    for (const o of open.values()) done.push({ key: o.key, start: o.start, end: Date.now(), owner: o.owner, ok: false })
    return done
  }
  return { script, intervals }
}

/** Start the HTTP example and wait for its URL. */
const startServer = (args: ReadonlyArray<string>, env: Record<string, string>) =>
  Effect.async<{ url: string; child: ReturnType<typeof spawn> }, Error>((resume) => {
    const tsx = NodePath.join(repoRoot, "node_modules", ".bin", "tsx")
    const child = spawn(tsx, [NodePath.join(repoRoot, "examples", "http-server", "src", "main.ts"), ...args], {
      cwd: repoRoot,
      env: cliEnv(env),
      stdio: ["ignore", "pipe", "pipe"]
    })
    let out = ""
    let err = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      out += chunk
      const m = /listening on (http:\/\/\S+)/.exec(out)
      if (m !== null) resume(Effect.succeed({ url: m[1]!, child }))
    })
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk))
    child.on("exit", (code) => resume(Effect.fail(new Error(`http-server exited (${code}): ${err} ${out}`))))
  })

describe("several processes share one cache folder", () => {
  it.live("two CLI exports, CLI gets and the HTTP example under mixed load: each key exported at most once at a time, consistent index", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const cli = cliRunner(bins)
      const video = yield* sampleVideo({ duration: 8 })
      const dir = tempDir("multi")
      const cacheDir = NodePath.join(dir, "cache")
      const ff = loggingFfmpeg(dir, bins.ffmpeg.path)
      const random = rng(seed)
      const rallies = Array.from({ length: 10 }, (_, i) => {
        const start = Math.round((i * 0.63) * 1000) / 1000
        return { start, end: Math.round((start + 1 + (i % 3) * 0.3) * 1000) / 1000 }
      })
      const ralliesFile = NodePath.join(dir, "rallies.json")
      NodeFs.writeFileSync(ralliesFile, JSON.stringify({ videoId: "shared", rallies }))
      const env = { FFMPEG_PATH: ff.script, FFPROBE_PATH: bins.ffprobe.path, RALLYCACHE_MODE: "accurate" }

      const base = ["--rallies", ralliesFile, "--cache-dir", cacheDir, "--json"]
      const roles = new Map<string, string>()
      const started = (role: string, child: ReturnType<typeof spawn>) => {
        roles.set(String(child.pid), role)
        return collect(child)
      }
      // The gets go first, on an empty cache: each one surely exports its rally (so more than one
      // process exports). Everything else starts once they are exporting, and runs beside them.
      const gets = [7, 3, 9].map((index) =>
        started(`get ${index}`, cli.spawn(["get", video, ...base, "--index", String(index)], env))
      )
      const getPids = [...roles.keys()]
      const exporting = () => new Set(ff.intervals().map((i) => i.owner))
      yield* Effect.promise(async () => {
        const deadline = Date.now() + 60_000
        while (!getPids.every((pid) => exporting().has(pid))) {
          if (Date.now() > deadline) throw new Error(`the gets did not start exporting: ${[...exporting()].join(", ")}`)
          await new Promise((resolve) => setTimeout(resolve, 10))
        }
      })
      const server = yield* startServer(["--port", "0", "--cache-dir", cacheDir, "--video", video, "--rallies", ralliesFile], {
        ...env,
        RALLYCACHE_MEDIA_ROOT: NodePath.dirname(video)
      })
      const exportA = started("export A", cli.spawn(["export", video, ...base], env))
      const exportB = started("export B", cli.spawn(["export", video, ...base], env))
      const order = rallies.map((_, i) => i).sort(() => random.next() - 0.5)
      const http = Promise.all(order.map(async (index) => {
        if (random.next() < 0.5) {
          await fetch(`${server.url}api/videos/shared/navigate`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ index })
          }).then((r) => r.arrayBuffer())
        }
        const response = await fetch(`${server.url}api/videos/shared/rallies/${index}/clip`)
        const body = Buffer.from(await response.arrayBuffer())
        return { index, status: response.status, bytes: body.length, body }
      }))

      const [a, b, ...getResults] = yield* Effect.promise(() => Promise.all([exportA, exportB, ...gets]))
      const served = yield* Effect.promise(() => http)
      server.child.kill("SIGTERM")
      yield* Effect.promise(() => new Promise<void>((resolve) => server.child.once("exit", () => resolve())))

      for (const result of [a!, b!]) {
        expect(result.code, result.stderr).toBe(0)
        const json = jsonOut<{ clips: Array<{ path: string }> }>(result)
        expect(json.clips.length).toBe(rallies.length)
      }
      for (const result of getResults) {
        expect(result.code, result.stderr).toBe(0)
        expect(mediaCheck(bins.ffmpeg.path, bins.ffprobe.path, jsonOut<{ path: string }>(result).path).ok).toBe(true)
      }
      const badResponses: Array<string> = []
      for (const response of served) {
        if (response.status !== 200) badResponses.push(`${response.index}: HTTP ${response.status}`)
        else {
          const file = NodePath.join(dir, `served-${response.index}.mp4`)
          NodeFs.writeFileSync(file, response.body)
          if (!mediaCheck(bins.ffmpeg.path, bins.ffprobe.path, file).ok) badResponses.push(`${response.index}: not playable`)
        }
      }
      expect(badResponses).toEqual([])

      // From the wrapper's log: never two exports of one key at the same time.
      const intervals = ff.intervals()
      const overlaps: Array<string> = []
      const byKey = new Map<string, typeof intervals>()
      for (const i of intervals) byKey.set(i.key, [...(byKey.get(i.key) ?? []), i])
      for (const [key, list] of byKey) {
        const sorted = [...list].sort((x, y) => x.start - y.start)
        for (let k = 1; k < sorted.length; k++) {
          if (sorted[k]!.start < sorted[k - 1]!.end) overlaps.push(`${key}: ${sorted[k - 1]!.owner} and ${sorted[k]!.owner}`)
        }
      }
      const owners = new Set(intervals.map((i) => i.owner))
      // An export stopped before its end (a preempted low job) may run again; one that finished is
      // committed, and no process exports that key again.
      const finishedPerKey = Math.max(...[...byKey.values()].map((list) => list.filter((i) => i.ok).length))

      // The folder afterwards, as the next process sees it.
      const verify = yield* cli.run(["cache", "verify", "--deep", "--json", "--cache-dir", cacheDir])
      expect(verify.code, verify.stderr).toBe(0)
      const verified = jsonOut<{ checked: number; removed: Array<unknown> }>(verify)
      const seen = yield* reloadCheck(cacheDir, bins)

      report("multiprocess", {
        processes: 2 + 3 + 1,
        httpRequests: served.length,
        exports: intervals.length,
        keys: byKey.size,
        exportingProcesses: owners.size,
        exportsByProcess: Object.fromEntries(
          [...owners].map((o) => [roles.get(o) ?? `server (${o})`, intervals.filter((i) => i.owner === o).length])
        ),
        maxExportsOfOneKey: Math.max(...[...byKey.values()].map((l) => l.length)),
        maxFinishedExportsOfOneKey: finishedPerKey,
        overlaps: overlaps.length,
        verifyChecked: verified.checked,
        verifyRemoved: verified.removed.length,
        entries: seen.entries,
        leftUnknownClips: seen.left.unknown.length,
        leftTemp: seen.left.temp.length,
        repairedAtReload: seen.repaired
      })
      expect(overlaps, "a key exported by two processes at once").toEqual([])
      expect(finishedPerKey, "finished exports of one key").toBe(1)
      expect(byKey.size).toBe(rallies.length)
      expect(verified.removed).toEqual([])
      expect(verified.checked).toBe(rallies.length)
      // The three gets exported (at least) their rallies: the work was shared between processes.
      for (const pid of getPids) expect(owners.has(pid), `${roles.get(pid)} exported`).toBe(true)
      expect(owners.size, "processes that ran an export").toBeGreaterThan(1)
      expect(seen.bad).toEqual([])
      // Every process ended cleanly and verify's start ran since: nothing to repair.
      expect(seen.left).toEqual({ unknown: [], temp: [], run: [], locks: [] })
      expect(seen.repaired).toEqual({ dropped: 0, removedUnknown: 0, removedTemp: 0, removedLocks: 0, skippedLines: 0 })
      expect(ffmpegIn(cacheDir)).toEqual([])
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }), { timeout: 300_000 })
})
