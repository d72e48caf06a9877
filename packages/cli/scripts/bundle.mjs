/**
 * Bundles the `rallycache` executable into `dist/bundle/`: one entry file
 * and the chunks it loads, tree-shaken and minified, so a command starts
 * without resolving and compiling hundreds of modules. The cache layer (the
 * manager, store and exporter) is a chunk of its own, loaded only by the
 * commands that open the cache. Run after `tsc -b`: it reads `dist/bin.js`.
 *
 * A file whose content did not change is left as it is, and a changed one is
 * replaced by a rename, so a rebuild (`pnpm pack`'s prepack, a test run's
 * set-up) never pulls a file from under a command that is running.
 */
import { build } from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const outdir = path.join(here, "dist", "bundle")
const result = await build({
  entryPoints: { rallycache: path.join(here, "dist", "bin.js") },
  outdir,
  write: false,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: true,
  logLevel: "warning",
  // The ffmpeg packages compute their binary's path from their own folder:
  // they stay packages, required at run time from this one's dependencies.
  external: ["@ffmpeg-installer/ffmpeg", "@ffprobe-installer/ffprobe", "ffmpeg-static"],
  // Bundled CommonJS dependencies call `require` for Node's own modules.
  banner: {
    js: "import { createRequire as __rallycacheRequire } from \"node:module\"; const require = __rallycacheRequire(import.meta.url);"
  }
})

fs.mkdirSync(outdir, { recursive: true })
const written = new Set()
for (const file of result.outputFiles) {
  written.add(path.basename(file.path))
  let same = false
  try {
    same = Buffer.compare(fs.readFileSync(file.path), file.contents) === 0
  } catch {
    // not there yet
  }
  if (same) continue
  const temp = `${file.path}.${process.pid}.tmp`
  fs.writeFileSync(temp, file.contents, { mode: file.path.endsWith("rallycache.js") ? 0o755 : 0o644 })
  fs.renameSync(temp, file.path)
}
// Chunks of an older build; a command still running from one keeps it open.
for (const name of fs.readdirSync(outdir)) if (!written.has(name)) fs.rmSync(path.join(outdir, name), { force: true })
// The entry's time says when the bundle was last brought up to date (the
// repository's `pnpm rallycache` compares it with the sources').
const now = new Date()
fs.utimesSync(path.join(outdir, "rallycache.js"), now, now)
