/**
 * The bin starts through V8's code cache kept next to the bundle: a cache
 * file that is corrupt, truncated, or well framed but not V8's never breaks
 * a start, and the start puts a good one back. With source maps on, the
 * bin skips the cache so that Node maps stack traces to the sources.
 *
 * The tests run a copy of the built bin in a folder of their own, laid out
 * as an install (the package's manifest beside `dist/bundle`, its
 * `node_modules` linked), so other test files running the repository's bin
 * at the same time neither see these broken caches nor replace them.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { cacheFileOf, readCache, userCacheFileOf } from "../../packages/cli/src/internal/codeCache.js"
import { launcher, repoRoot, tempDir } from "./support.js"

const cliPackage = path.join(repoRoot, "packages", "cli")
const version = (JSON.parse(fs.readFileSync(path.join(cliPackage, "package.json"), "utf8")) as {
  version: string
}).version

/** The copy: the bin and the program file it runs (its name carries the build's hash). */
const install = (() => {
  const root = tempDir("cli-code-cache-install")
  fs.copyFileSync(path.join(cliPackage, "package.json"), path.join(root, "package.json"))
  fs.symlinkSync(path.join(cliPackage, "node_modules"), path.join(root, "node_modules"))
  const bundleDir = path.join(root, "dist", "bundle")
  fs.mkdirSync(bundleDir, { recursive: true })
  const built = path.dirname(launcher)
  for (const name of fs.readdirSync(built).filter((name) => /\.(js|cjs|map)$/.test(name))) {
    fs.copyFileSync(path.join(built, name), path.join(bundleDir, name))
  }
  const programs = fs.readdirSync(bundleDir).filter((name) => name.endsWith(".cjs"))
  if (programs.length !== 1) throw new Error(`expected one program file in ${built}, found ${programs.join(", ")}`)
  const program = path.join(bundleDir, programs[0]!)
  return { bin: path.join(bundleDir, "rallycache.js"), program, cacheFile: cacheFileOf(program) }
})()
const cacheFile = install.cacheFile

/** Run the copied bin as a user does (no RALLYCACHE_* variable from the test's environment). */
const runCli = (
  args: ReadonlyArray<string>,
  extraEnv: Record<string, string> = {},
  user?: { readonly uid: number; readonly gid: number }
) =>
  Effect.sync(() => {
    const env: NodeJS.ProcessEnv = {}
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("RALLYCACHE_")) env[key] = value
    const result = spawnSync(process.execPath, [install.bin, ...args], {
      cwd: repoRoot,
      env: { ...env, ...extraEnv },
      encoding: "utf8",
      timeout: 110_000,
      ...user
    })
    return { code: result.status, stdout: result.stdout, stderr: result.stderr }
  })

/** `--version` and `--help` still print what they always print. */
const startsWell = Effect.gen(function*() {
  const result = yield* runCli(["--version"])
  expect(result.code, result.stderr).toBe(0)
  expect(result.stdout.trim()).toBe(version)
  expect(result.stderr).toBe("")
  const help = yield* runCli(["--help"])
  expect(help.code, help.stderr).toBe(0)
  expect(help.stdout).toMatch(/^\$ rallycache$/m)
  expect(help.stdout).toMatch(/^  - cache /m)
})

/** The header the cache file carries: the magic line, a subcommand's (1) or not, length and SHA-1 of the V8 data. */
const framed = (data: Buffer): Buffer => {
  const magic = Buffer.from("rallycache-v8-cache 3\n", "latin1")
  const length = Buffer.alloc(5)
  length[0] = 1
  length.writeUInt32LE(data.length, 1)
  return Buffer.concat([magic, length, crypto.createHash("sha1").update(data).digest(), data])
}

describe("the bin's code cache", () => {
  it.live("a start writes the cache next to the bundle", () =>
    Effect.gen(function*() {
      yield* startsWell
      expect(readCache(cacheFile)?.data.length ?? 0).toBeGreaterThan(100_000)
    }))

  it.live("a cache made by --help is replaced once by a subcommand's, which --help then keeps", () =>
    Effect.gen(function*() {
      fs.rmSync(cacheFile, { recursive: true, force: true })
      expect((yield* runCli(["--help"])).code).toBe(0)
      const light = readCache(cacheFile)
      expect(light?.bySubcommand).toBe(false)
      const stats = yield* runCli(["cache", "stats", "--cache-dir", path.join(tempDir("cli-code-cache"), "cache")])
      expect(stats.code, stats.stderr).toBe(0)
      const full = readCache(cacheFile)
      expect(full?.bySubcommand).toBe(true)
      // It also holds the store's functions.
      expect(full!.data.length).toBeGreaterThan(light!.data.length)
      expect((yield* runCli(["--help"])).code).toBe(0)
      expect(readCache(cacheFile)?.data.equals(full!.data)).toBe(true)
    }))

  const corruptions: ReadonlyArray<readonly [string, (good: Buffer) => Buffer]> = [
    ["random bytes", () => Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251))],
    ["empty", () => Buffer.alloc(0)],
    ["truncated", (good) => good.subarray(0, Math.floor(good.length / 2))],
    // V8 does not check its data's integrity: these bytes given to it abort Node (checked by hand).
    ["flipped every 64 KiB", (good) => {
      const bad = Buffer.from(good)
      for (let at = 4096; at < bad.length; at += 65536) bad[at]! ^= 0xff
      return bad
    }],
    // Passes the file's own checks: only V8's can refuse it.
    ["well framed, not V8's", (good) => framed(Buffer.alloc(good.length, 0x5a))]
  ]
  for (const [name, corrupt] of corruptions) {
    it.live(`a cache file that is ${name} is ignored, the command works, and a good cache is written back`, () =>
      Effect.gen(function*() {
          yield* runCli(["--version"])
        const good = fs.readFileSync(cacheFile)
        fs.writeFileSync(cacheFile, corrupt(good))
        yield* startsWell
        expect(readCache(cacheFile)?.data.length ?? 0).toBeGreaterThan(100_000)
      }))
  }

  it.live("with --enable-source-maps, --verbose causes point into the TypeScript sources", () =>
    Effect.gen(function*() {
      const missing = path.join(tempDir("cli-source-maps"), "rallies.json")
      const result = yield* runCli(["export", "match.mp4", "--rallies", missing, "--verbose"], {
        NODE_OPTIONS: "--enable-source-maps"
      })
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/^rallies file .*: not found/m)
      expect(result.stderr).toMatch(/\/RalliesFile\.ts:\d+:\d+/)
    }))

  it.live("an install the user cannot write to: the command works and leaves nothing there", () =>
    Effect.gen(function*() {
      const bundleDir = path.dirname(cacheFile)
      fs.rmSync(cacheFile, { recursive: true, force: true })
      // As root, another user (root writes anywhere); otherwise a folder without write permission.
      const asRoot = process.getuid?.() === 0
      fs.chmodSync(path.dirname(path.dirname(bundleDir)), 0o755)
      fs.chmodSync(bundleDir, asRoot ? 0o755 : 0o555)
      const before = fs.readdirSync(bundleDir).sort()
      // Never the real home's cache folder: one this user cannot write either (a root-owned temp folder, or none).
      const env = { XDG_CACHE_HOME: asRoot ? tempDir("cli-code-cache-closed") : "/nonexistent-rallycache-cache" }
      const result = yield* runCli(["--version"], env, asRoot ? { uid: 65534, gid: 65534 } : undefined).pipe(
        Effect.ensuring(Effect.sync(() => fs.chmodSync(bundleDir, 0o755)))
      )
      expect(result.code, result.stderr).toBe(0)
      expect(result.stdout.trim()).toBe(version)
      expect(fs.readdirSync(bundleDir).sort()).toEqual(before)
      yield* runCli(["--version"])
      expect(readCache(cacheFile)).toBeDefined()
    }))

  it.live("an install the user cannot write to: the cache goes to the user's cache folder, and the next start reads it", () =>
    Effect.gen(function*() {
      const bundleDir = path.dirname(cacheFile)
      fs.rmSync(cacheFile, { recursive: true, force: true })
      const userCache = tempDir("cli-code-cache-user")
      fs.chmodSync(userCache, 0o777)
      const env = { XDG_CACHE_HOME: userCache }
      const expected = path.join(userCache, "rallycache", "code-cache", path.basename(cacheFile))
      expect(userCacheFileOf(install.program, env)).toBe(expected)
      const asRoot = process.getuid?.() === 0
      fs.chmodSync(bundleDir, asRoot ? 0o755 : 0o555)
      const before = fs.readdirSync(bundleDir).sort()
      const user = asRoot ? { uid: 65534, gid: 65534 } : undefined
      const first = yield* runCli(["--version"], env, user).pipe(
        Effect.ensuring(Effect.sync(() => fs.chmodSync(bundleDir, 0o755)))
      )
      expect(first.code, first.stderr).toBe(0)
      expect(first.stdout.trim()).toBe(version)
      expect(fs.readdirSync(bundleDir).sort()).toEqual(before)
      expect(readCache(expected)).toBeDefined()
      const firstInode = fs.statSync(expected).ino
      fs.chmodSync(bundleDir, asRoot ? 0o755 : 0o555)
      const second = yield* runCli(["--version"], env, user).pipe(
        Effect.ensuring(Effect.sync(() => fs.chmodSync(bundleDir, 0o755)))
      )
      expect(second.code, second.stderr).toBe(0)
      // Read and accepted: the second start did not replace it (a rejected or unread cache is written anew at exit).
      expect(fs.statSync(expected).ino).toBe(firstInode)
    }))

  it.live("a cache folder that holds a directory where the file should be: the command still works", () =>
    Effect.gen(function*() {
      fs.rmSync(cacheFile, { recursive: true, force: true })
      fs.mkdirSync(cacheFile)
      yield* startsWell.pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(cacheFile, { recursive: true, force: true }))))
      yield* runCli(["--version"])
      expect(readCache(cacheFile)).toBeDefined()
    }))
})
