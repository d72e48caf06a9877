/**
 * The packages as a user gets them: `pnpm pack` core, node and cli, install
 * the tarballs with npm into a fresh project outside the repository, and there
 * run the root README's library example (its exact text) with plain `node`,
 * `npx rallycache --help` and `npx rallycache doctor`, and compile the example
 * with `tsc --noEmit` against the packed declarations.
 *
 * Needs pnpm on PATH and the npm registry (or npm's cache) for effect and the
 * other dependencies.
 */
import { NodeContext } from "@effect/platform-node"
import { FfmpegResolver, SampleVideo } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { spawn, spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { beforeAll, describe, expect, it } from "vitest"
import { tempDir } from "../support/temp.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const packages = ["core", "node", "cli"] as const

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const exec = (file: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Result> =>
  new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd,
      env: { ...process.env, NO_COLOR: "1", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk))
    child.on("error", reject)
    child.on("close", (code) => resolve({ code, stdout, stderr }))
  })

const ok = async (file: string, args: ReadonlyArray<string>, cwd: string, env?: NodeJS.ProcessEnv) => {
  const result = await exec(file, args, cwd, env)
  if (result.code !== 0) {
    throw new Error(`${file} ${args.join(" ")} exited ${result.code}:\n${result.stdout}\n${result.stderr}`)
  }
  return result
}

/** The first ```ts block of the root README's "Library use" section, verbatim. */
const readmeExample = (): string => {
  const readme = fs.readFileSync(path.join(repoRoot, "README.md"), "utf8")
  const section = readme.slice(readme.indexOf("## Library use"))
  const match = /```ts\n([\s\S]*?)```/.exec(section)
  if (match?.[1] === undefined) throw new Error("README.md has no ```ts block under \"## Library use\"")
  return match[1]
}

let root: string
let app: string
let tarballs: Array<string>
let install: Result
let packOutput = ""

describe("the packed packages, installed with npm in a fresh project", () => {
  beforeAll(async () => {
    root = tempDir("pack")
    app = path.join(root, "app")
    const out = path.join(root, "tarballs")
    fs.mkdirSync(app)
    fs.mkdirSync(out)
    // The packages' `prepack` is `tsc -b`, which the run's global set-up has
    // already done before any test: run again here it could rewrite `dist/`
    // while other files run the CLI from it, so lifecycle scripts are off.
    for (const name of packages) {
      const pack = await ok("pnpm", ["pack", "--pack-destination", out], path.join(repoRoot, "packages", name), {
        PNPM_CONFIG_IGNORE_SCRIPTS: "true"
      })
      packOutput += pack.stdout + pack.stderr
    }
    tarballs = fs.readdirSync(out).filter((name) => name.endsWith(".tgz")).map((name) => path.join(out, name)).sort()
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    install = await ok("npm", [
      "install",
      "--no-audit",
      "--no-fund",
      "--prefer-offline",
      ...tarballs,
      // What the README's example imports besides rallycache: the peers.
      "effect@3.22.4",
      "@effect/platform@0.97.2",
      "@effect/platform-node@0.108.2",
      "typescript@5.9.3",
      "@types/node@20"
    ], app)
    // The example's video: 2 minutes, small frames.
    await Effect.runPromise(
      SampleVideo.generate({
        output: path.join(app, "final-2026.mp4"),
        duration: 120,
        width: 160,
        height: 120,
        fps: 10,
        gop: 2,
        clock: false
      }).pipe(Effect.provide(FfmpegResolver.layer.pipe(Layer.provideMerge(NodeContext.layer))))
    )
  }, 300_000)

  it("each tarball holds dist (JS, declarations, maps), the sources they map to and no tests", () => {
    expect(tarballs.map((file) => path.basename(file))).toEqual([
      "rallycache-cli-0.1.0.tgz",
      "rallycache-core-0.1.0.tgz",
      "rallycache-node-0.1.0.tgz"
    ])
    for (const name of packages) {
      const dir = path.join(app, "node_modules", "@rallycache", name)
      const files = fs.readdirSync(dir, { recursive: true, encoding: "utf8" })
      expect(files).toEqual(expect.arrayContaining([
        "package.json",
        "README.md",
        "dist/index.js",
        "dist/index.js.map",
        "dist/index.d.ts",
        "dist/index.d.ts.map",
        "src/index.ts"
      ]))
      expect(files.filter((file) => /(^|\/)(test|fixtures)(\/|$)|\.test\.|tsbuildinfo|tsconfig/.test(file))).toEqual([])
      if (name === "cli") {
        expect(files).toContain("dist/bundle/rallycache.js")
        // The bin's V8 code cache belongs to the Node that made it: each install makes its own.
        const tarball = tarballs.find((file) => path.basename(file).startsWith("rallycache-cli-"))!
        const packed = spawnSync("tar", ["-tzf", tarball], { encoding: "utf8" }).stdout.split("\n")
        expect(packed).toContain("package/dist/bundle/rallycache.js")
        expect(packed.filter((file) => file.startsWith("package/dist/bundle/") && !/\.(js|cjs|map)$/.test(file)))
          .toEqual([])
      }
      expect(files).toContain("CHANGELOG.md")
      const manifest = fs.readFileSync(path.join(dir, "package.json"), "utf8")
      // The workspace's source condition and protocol do not leak into the package.
      expect(manifest).not.toContain("@rallycache/source")
      expect(manifest).not.toContain("workspace:")
    }
  })

  it("packing rebuilt nothing (other files run the CLI from dist/ meanwhile)", () => {
    expect(packOutput).toContain("Tarball Contents")
    expect(packOutput).not.toMatch(/prepack|tsc -b/)
  })

  it("the install prints no error or stack trace", () => {
    expect(install.stderr).not.toMatch(/\n\s+at |Error:/)
  })

  it.concurrent("the README's library example runs with plain node", async () => {
    fs.writeFileSync(path.join(app, "example.mjs"), readmeExample())
    const result = await ok(process.execPath, ["example.mjs"], app)
    const lines = result.stdout.trim().split("\n")
    expect(lines).toHaveLength(2)
    for (const line of lines) {
      const [clip, cached] = line.split(" ")
      expect(["true", "false"]).toContain(cached)
      expect(fs.statSync(path.resolve(app, clip!)).size).toBeGreaterThan(0)
      // The cache folder of the README, then the store's clips/ (not clips/clips).
      expect(path.dirname(path.resolve(app, clip!))).toBe(path.join(app, ".cache", "rallycache", "clips"))
    }
  }, 120_000)

  it.concurrent("the README's library example compiles against the packed declarations", async () => {
    fs.writeFileSync(path.join(app, "example.ts"), readmeExample())
    fs.writeFileSync(
      path.join(app, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          types: ["node"]
        },
        files: ["example.ts"]
      })
    )
    await ok(process.execPath, [path.join(app, "node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.json"], app)
  }, 120_000)

  it.concurrent("the demo runs on the bundled ffmpeg and ffprobe alone (a machine without ffmpeg)", async () => {
    const bundled = (name: string) =>
      path.join(app, "node_modules", `@${name}-installer`, `${process.platform}-${process.arch}`, name)
    const dir = path.join(root, "demo")
    const demo = await ok("npx", ["--no", "--", "rallycache", "demo", "--dir", dir, "--duration", "8", "--speed", "8"], app, {
      RALLYCACHE_CACHE_DIR: path.join(dir, "cache"),
      FFMPEG_PATH: bundled("ffmpeg"),
      FFPROBE_PATH: bundled("ffprobe")
    })
    expect(demo.stdout).toContain("hit rate")
    expect(fs.readdirSync(path.join(dir, "clips")).filter((name) => name.endsWith(".mp4")).length).toBeGreaterThan(0)
  }, 180_000)

  it.concurrent("npx rallycache --help and npx rallycache doctor work", async () => {
    const env = { RALLYCACHE_CACHE_DIR: path.join(root, "cache") }
    const help = await ok("npx", ["--no", "--", "rallycache", "--help"], app, env)
    expect(help.stdout).toContain("rallycache")
    expect(help.stdout).toContain("doctor")
    const doctor = await ok("npx", ["--no", "--", "rallycache", "doctor"], app, env)
    expect(doctor.stdout).toMatch(/^ffmpeg\s+\//m)
    expect(doctor.stdout).toMatch(/^ffprobe\s+\//m)
    expect(doctor.stdout).toContain(path.join(root, "cache"))
    // Each binary: where it comes from, and what it lacks (or that it lacks nothing).
    expect(doctor.stdout.match(/^\s+(can do everything rallycache asks|lacks: .+)$/gm)).toHaveLength(2)
    // The bundled ffprobe, named explicitly: doctor says plainly what it cannot do, and exits 1.
    const bundled = await exec("npx", ["--no", "--", "rallycache", "doctor"], app, {
      ...env,
      FFPROBE_PATH: path.join(app, "node_modules", "@ffprobe-installer", `${process.platform}-${process.arch}`, "ffprobe")
    })
    expect(bundled.code).toBe(1)
    // The bin is the bundle, and with no ffmpeg on PATH it finds the static builds its package depends on.
    const bin = path.join(app, "node_modules", "@rallycache", "cli", "dist", "bundle", "rallycache.js")
    const alone = await exec(process.execPath, [bin, "doctor", "--json"], app, { ...env, PATH: "" })
    expect(JSON.parse(alone.stdout)).toMatchObject({
      ok: false,
      ffmpeg: { source: "@ffmpeg-installer/ffmpeg" },
      ffprobe: { source: "@ffprobe-installer/ffprobe" }
    })
    expect(bundled.stderr).toMatch(/^doctor: ffprobe cannot read MPEG-TS/m)
    expect(bundled.stdout).toMatch(/^ffprobe .*\n\s+set by FFPROBE_PATH\n.*\n\s+lacks: .*cannot read MPEG-TS \(crashed: SIGSEGV\)/m)
  }, 120_000)
})
