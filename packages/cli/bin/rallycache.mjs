#!/usr/bin/env node
// The `rallycache` command.
//
// The package ships TypeScript source. Loading it through tsx's loader costs
// about 2 s per start (thousands of modules, each through a loader hook), so
// this launcher runs a single-file esbuild bundle of the sources instead
// (about 0.3 s), kept under `.cache/` and rebuilt whenever a source file of
// core, node or cli is newer than it. If the bundle cannot be built, it falls
// back to tsx.
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const here = path.dirname(fileURLToPath(import.meta.url))
const pkg = path.resolve(here, "..")
const entry = path.join(pkg, "src", "bin.ts")
// Inside the cli package, so the bundle resolves the packages it loads at
// run time (the ffmpeg binaries) from the cli's own dependencies.
const bundle = path.join(pkg, ".cache", "rallycache.mjs")

const newestSource = () => {
  let newest = 0
  const walk = (dir) => {
    let entries
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const entry of entries) {
      const file = path.join(dir, entry.name)
      if (entry.isDirectory()) walk(file)
      else if (entry.name.endsWith(".ts") || entry.name === "package.json") {
        newest = Math.max(newest, fs.statSync(file).mtimeMs)
      }
    }
  }
  for (const name of ["core", "node", "cli"]) {
    const root = fs.realpathSync(path.join(pkg, "..", name))
    walk(path.join(root, "src"))
    newest = Math.max(newest, fs.statSync(path.join(root, "package.json")).mtimeMs)
  }
  return newest
}

const fresh = () => {
  try {
    return fs.statSync(bundle).mtimeMs >= newestSource()
  } catch {
    return false
  }
}

const rebuild = async () => {
  const { build } = await import("esbuild")
  fs.mkdirSync(path.dirname(bundle), { recursive: true })
  // Each process writes its own file and renames it: two CLIs starting at
  // once never run a half-written bundle.
  const temp = `${bundle}.${process.pid}.tmp`
  await build({
    entryPoints: [entry],
    outfile: temp,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "silent",
    // Binaries are located at run time from these packages' folders.
    external: ["ffmpeg-static", "@ffmpeg-installer/ffmpeg", "@ffprobe-installer/ffprobe"],
    banner: { js: "import { createRequire as __rallycacheRequire } from 'node:module'; const require = __rallycacheRequire(import.meta.url);" }
  })
  fs.renameSync(temp, bundle)
}

let target = bundle
if (!fresh()) {
  try {
    await rebuild()
  } catch {
    const { register } = await import("tsx/esm/api")
    register()
    target = entry
  }
}
await import(pathToFileURL(target).href)
