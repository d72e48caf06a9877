/**
 * The bin starts through V8's code cache kept next to the bundle: a cache
 * file that is corrupt, truncated, or well framed but not V8's never breaks
 * a start, and the start puts a good one back. With source maps on, the
 * bin skips the cache so that Node maps stack traces to the sources.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as crypto from "node:crypto"
import { cacheFileOf, readCache } from "../../packages/cli/src/internal/codeCache.js"
import { launcher, repoRoot, runCli, tempDir } from "./support.js"

const bundleDir = path.dirname(launcher)
const version = (JSON.parse(fs.readFileSync(path.join(repoRoot, "packages", "cli", "package.json"), "utf8")) as {
  version: string
}).version

/** The program file the bin runs (its name carries the build's hash). */
const program = (): string => {
  const names = fs.readdirSync(bundleDir).filter((name) => name.endsWith(".cjs"))
  expect(names).toHaveLength(1)
  return path.join(bundleDir, names[0]!)
}

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

/** The header the cache file carries: the magic line, then length and SHA-1 of the V8 data. */
const framed = (data: Buffer): Buffer => {
  const magic = Buffer.from("rallycache-v8-cache 2\n", "latin1")
  const length = Buffer.alloc(4)
  length.writeUInt32LE(data.length, 0)
  return Buffer.concat([magic, length, crypto.createHash("sha1").update(data).digest(), data])
}

describe("the bin's code cache", () => {
  it.live("a start writes the cache next to the bundle", () =>
    Effect.gen(function*() {
      const cacheFile = cacheFileOf(program())
      yield* startsWell
      expect(readCache(cacheFile)?.length ?? 0).toBeGreaterThan(100_000)
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
        const cacheFile = cacheFileOf(program())
        yield* runCli(["--version"])
        const good = fs.readFileSync(cacheFile)
        fs.writeFileSync(cacheFile, corrupt(good))
        yield* startsWell
        expect(readCache(cacheFile)?.length ?? 0).toBeGreaterThan(100_000)
      }))
  }

  it.live("with --enable-source-maps, --verbose causes point into the TypeScript sources", () =>
    Effect.gen(function*() {
      const missing = path.join(tempDir("cli-source-maps"), "rallies.json")
      const result = yield* runCli(["export", "match.mp4", "--rallies", missing, "--verbose"], {
        env: { NODE_OPTIONS: "--enable-source-maps" }
      })
      expect(result.code).toBe(2)
      expect(result.stderr).toMatch(/^rallies file .*: not found/m)
      expect(result.stderr).toMatch(/packages\/node\/src\/RalliesFile\.ts:\d+:\d+/)
    }))

  it.live("a cache folder that holds a directory where the file should be: the command still works", () =>
    Effect.gen(function*() {
      const cacheFile = cacheFileOf(program())
      fs.rmSync(cacheFile, { recursive: true, force: true })
      fs.mkdirSync(cacheFile)
      yield* startsWell.pipe(Effect.ensuring(Effect.sync(() => fs.rmSync(cacheFile, { recursive: true, force: true }))))
      yield* runCli(["--version"])
      expect(readCache(cacheFile)).toBeDefined()
    }))
})
