/**
 * What a new user meets first, typed as they type it: `pnpm -C repo
 * rallycache ...` from the folder holding their files, `--help` and
 * `--version`, `doctor` on the bundled binaries, the demo's next step, a
 * start that probes no ffmpeg, and the lock of a CLI killed mid-export.
 */
import { describe, expect, it } from "@effect/vitest"
import * as Config from "@rallycache/core/Config"
import { Effect } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { postgresBin } from "../../scripts/postgresBin.mjs"
import { launcher, repoRoot, runCli, sampleVideo, tempDir, writeJson } from "./support.js"

const readJson = (file: string) => JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>

/** The static builds that come with the npm dependencies. */
const bundled = (() => {
  const require = createRequire(path.join(repoRoot, "packages", "node", "package.json"))
  const pathOf = (name: string) => (require(name) as { readonly path: string }).path
  return { FFMPEG_PATH: pathOf("@ffmpeg-installer/ffmpeg"), FFPROBE_PATH: pathOf("@ffprobe-installer/ffprobe") }
})()

/** Environment of a command typed in a shell: no RALLYCACHE_* or npm script variables. */
const shellEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(RALLYCACHE_|npm_|INIT_CWD$|FORCE_COLOR$|FFMPEG_PATH$|FFPROBE_PATH$)/.test(key)) env[key] = value
  }
  return { ...env, ...extra }
}

const exec = (file: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv) =>
  spawnSync(file, args, { cwd, env, encoding: "utf8", timeout: 110_000 })

describe("rough edges a new user hits", () => {
  it.live("pnpm -C <repo> rallycache export, typed in the folder of the files: found, no rebuild, exact table from the first frame", () =>
    Effect.gen(function*() {
      const dir = tempDir("cli-initcwd")
      fs.copyFileSync(yield* sampleVideo(), path.join(dir, "match.mp4"))
      writeJson(dir, "rallies.json", { rallies: [{ start: 1.5, end: 4 }] })
      const bundle = fs.statSync(launcher).mtimeMs
      const result = exec(
        "pnpm",
        ["-C", repoRoot, "rallycache", "export", "match.mp4", "--rallies", "rallies.json", "--out", "clips"],
        dir,
        shellEnv({ RALLYCACHE_CACHE_DIR: path.join(dir, "cache") })
      )
      expect(result.status, result.stderr).toBe(0)
      expect(fs.existsSync(path.join(dir, "clips", "rally-000.mp4"))).toBe(true)
      // The sample has a keyframe every second: the clip is stored from 1.00 but presents the first
      // frame at or after 1.50 first (1.52 at its 25 fps), which is what the table shows.
      const row = result.stdout.split("\n").find((line) => line.startsWith("0 "))
      expect(row).toMatch(/\s1\.5\d-4\.00\s/)
      // Nothing changed since the test run's build: the launcher did not rebuild.
      expect(fs.statSync(launcher).mtimeMs).toBe(bundle)
    }))

  it.live("export --help: the usage line names rallycache, the video and --rallies are files", () =>
    Effect.gen(function*() {
      const result = yield* runCli(["export", "--help"])
      expect(result.code).toBe(0)
      expect(result.stdout).toMatch(/^\$ rallycache export .*<video>$/m)
      expect(result.stdout).toMatch(/^<video>\n\n  A file\.\n\n  The match video file/m)
      expect(result.stdout).toMatch(/^--rallies FILE\n\n  A file\.\n\n  The rallies JSON file/m)
      const stats = yield* runCli(["cache", "stats", "--help"])
      expect(stats.stdout).toMatch(/^\$ rallycache cache stats /m)
    }))

  it.live("--version prints the version of the package's package.json", () =>
    Effect.gen(function*() {
      const result = yield* runCli(["--version"])
      expect(result.stdout.trim()).toBe(readJson(path.join(repoRoot, "packages", "cli", "package.json"))["version"])
    }))

  it.live("doctor exits 1 on the bundled binaries, saying what they lack; 0 on a full build", () =>
    Effect.gen(function*() {
      const cacheDir = path.join(tempDir("cli-doctor"), "cache")
      const lacking = yield* runCli(["doctor", "--cache-dir", cacheDir], { env: bundled })
      expect(lacking.code).toBe(1)
      expect(lacking.stdout).toContain("cannot read MPEG-TS (crashed: SIGSEGV)")
      expect(lacking.stdout).toContain("cannot put Opus audio in mp4")
      // The 2018 build's noise filter has no drop expression: open-GOP cuts would keep broken leading pictures.
      expect(lacking.stdout).toContain("cannot drop packets with the noise bitstream filter (ffmpeg 5 or later)")
      const lines = lacking.stderr.split("\n").filter((line) => line.trim().length > 0)
      expect(lines).toHaveLength(1)
      expect(lines[0]).toMatch(/^doctor: ffmpeg cannot put Opus audio in mp4 .*; ffprobe cannot read MPEG-TS .*apt-get install ffmpeg/)
      const json = yield* runCli(["doctor", "--json", "--cache-dir", cacheDir], { env: bundled })
      expect(json.code).toBe(1)
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false })
      // The test machine has a full ffmpeg on PATH (scripts/setup.mjs installs it).
      const full = yield* runCli(["doctor", "--json", "--cache-dir", cacheDir])
      expect(full.code, full.stderr).toBe(0)
      expect(JSON.parse(full.stdout)).toMatchObject({ ok: true, ffmpeg: { lacks: [] }, ffprobe: { lacks: [] } })
    }))

  it.live("a start after the first runs no ffmpeg capability probe: what a binary can do is remembered", () =>
    Effect.gen(function*() {
      const dir = tempDir("cli-probes")
      const bin = path.join(dir, "bin")
      const log = path.join(dir, "calls.log")
      fs.mkdirSync(bin)
      for (const tool of ["ffmpeg", "ffprobe"]) {
        const real = spawnSync("sh", ["-c", `command -v ${tool}`], { encoding: "utf8" }).stdout.trim()
        fs.writeFileSync(path.join(bin, tool), `#!/bin/sh\necho "${tool} $*" >> ${log}\nexec ${real} "$@"\n`, { mode: 0o755 })
      }
      const video = yield* sampleVideo()
      const rallies = writeJson(dir, "rallies.json", { rallies: [{ start: 1, end: 3 }] })
      const env = { PATH: `${bin}${path.delimiter}${process.env["PATH"] ?? ""}` }
      const args = ["export", video, "--rallies", rallies, "--cache-dir", path.join(dir, "cache"), "--json"]
      const first = yield* runCli(args, { env })
      expect(first.code, first.stderr).toBe(0)
      const probes = /^ff\S+ -hide_banner -(encoders|decoders|muxers|demuxers|bsfs|version)$/m
      expect(fs.readFileSync(log, "utf8")).toMatch(probes)
      fs.rmSync(log)
      const second = yield* runCli(args, { env })
      expect(second.code, second.stderr).toBe(0)
      const calls = fs.existsSync(log) ? fs.readFileSync(log, "utf8") : ""
      expect(calls).not.toMatch(probes)
    }))

  it.live("the demo runs on the bundled binaries and suggests the command the user ran", () =>
    Effect.gen(function*() {
      const dir = tempDir("cli-demo-next")
      const demo = ["demo", "--dir", dir, "--duration", "4", "--speed", "20"]
      const viaPnpm = yield* runCli(demo, {
        env: {
          ...bundled,
          npm_command: "run-script",
          npm_lifecycle_event: "rallycache",
          npm_execpath: "/usr/lib/node_modules/pnpm/bin/pnpm.cjs"
        }
      })
      expect(viaPnpm.code, viaPnpm.stderr).toBe(0)
      expect(viaPnpm.stdout).toMatch(/^ {2}pnpm rallycache export your-match\.mp4 /m)
      // Installed: the bin is a `rallycache` on PATH.
      const bin = path.join(dir, "bin")
      fs.mkdirSync(bin)
      fs.symlinkSync(launcher, path.join(bin, "rallycache"))
      const installed = exec(path.join(bin, "rallycache"), demo, dir, shellEnv({}))
      expect(installed.status, installed.stderr).toBe(0)
      expect(installed.stdout).toMatch(/^ {2}rallycache export your-match\.mp4 /m)
      expect(installed.stdout).not.toContain("pnpm rallycache")
    }))

  it.live("the per-clip lock of a SIGKILLed CLI is removed by the next command that opens the store", () =>
    Effect.gen(function*() {
      const video = yield* sampleVideo(60)
      const dir = tempDir("cli-lock")
      const cacheDir = path.join(dir, "cache")
      const locks = path.join(cacheDir, "locks")
      const rallies = writeJson(dir, "rallies.json", { rallies: [{ start: 0, end: 40 }] })
      const keyLocks = () => fs.existsSync(locks) ? fs.readdirSync(locks).filter((name) => /^[0-9a-f]+\.lock$/.test(name)) : []
      const child = spawn(process.execPath, [
        launcher,
        "export",
        video,
        "--rallies",
        rallies,
        "--mode",
        "accurate",
        "--cache-dir",
        cacheDir
      ], { env: shellEnv({}), stdio: "ignore" })
      const exited = new Promise<void>((resolve) => child.on("close", () => resolve()))
      yield* Effect.promise(async () => {
        const deadline = Date.now() + 60_000
        while (keyLocks().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      })
      expect(keyLocks()).toHaveLength(1)
      child.kill("SIGKILL")
      yield* Effect.promise(() => exited)
      expect(keyLocks()).toHaveLength(1)
      // A command that only looks (read-only store) removes it.
      const stats = yield* runCli(["cache", "stats", "--cache-dir", cacheDir])
      expect(stats.code, stats.stderr).toBe(0)
      expect(keyLocks()).toEqual([])
    }))

  it("engines: one Node range everywhere, and it covers what @noble/hashes needs", () => {
    const manifests = ["package.json", ...["core", "node", "cli", "cluster"].map((name) => `packages/${name}/package.json`)]
    const ranges = manifests.map((file) => (readJson(path.join(repoRoot, file))["engines"] as { node: string }).node)
    expect(new Set(ranges)).toEqual(new Set([">=20.19"]))
    const noble = readJson(path.join(repoRoot, "packages", "core", "node_modules", "@noble", "hashes", "package.json")) as {
      engines: { node: string }
    }
    expect(noble.engines.node.replace(/\s/g, "").replace(/\.0$/, "")).toBe(">=20.19")
    const node = readJson(path.join(repoRoot, "packages", "node", "package.json"))
    expect(Object.keys(node["dependencies"] as object)).not.toContain("proper-lockfile")
  })

  it("the Postgres binaries are the newest installed version, or PG_BIN", () => {
    const root = tempDir("pg-versions")
    for (const version of ["13", "16", "9.6"]) {
      fs.mkdirSync(path.join(root, version, "bin"), { recursive: true })
      fs.writeFileSync(path.join(root, version, "bin", "initdb"), "")
    }
    expect(postgresBin({}, root)).toBe(path.join(root, "16", "bin"))
    expect(postgresBin({ PG_BIN: "/opt/pg/bin" }, root)).toBe("/opt/pg/bin")
  })

  it("the configuration tables of the root and core READMEs list every option doctor shows", () => {
    for (const [readme, row] of [
      ["README.md", (key: string) => new RegExp(`^\\| ${key} \\|`, "m")],
      ["packages/core/README.md", (key: string) => new RegExp(`^\\| \`${key}\` \\|`, "m")]
    ] as const) {
      const text = fs.readFileSync(path.join(repoRoot, readme), "utf8")
      for (const key of Object.keys(Config.defaults)) expect(text, `${readme} has no row for ${key}`).toMatch(row(key))
    }
  })
})
