/**
 * Bundles the `rallycache` executable into `dist/bundle/`:
 *
 * - `rallycache-<hash>.cjs`: the whole program (`dist/bin.js` and what it
 *   imports), one CommonJS file, tree-shaken and minified, with a linked
 *   source map for readable stack traces (`node --enable-source-maps`). The
 *   cache layer (manager, store, exporter) is in it but evaluated only by
 *   the commands that open the cache (a dynamic `import()` becomes a lazy
 *   initialiser).
 * - `rallycache.js`: the `bin`, a small ES module that runs the program
 *   through V8's code cache (`src/internal/codeCache.ts`); the cache is made
 *   by the first start and kept next to the program.
 *
 * Run after `tsc -b`: it reads `dist/`. A file whose content did not change
 * is left as it is, and a changed one is replaced by a rename, so a rebuild
 * (`pnpm pack`'s prepack, a test run's set-up) never pulls a file from under
 * a command that is running.
 */
import { build } from "esbuild"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const here = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const dist = path.join(here, "dist")
const outdir = path.join(dist, "bundle")

const program = await build({
  // Paths (and so the content hash in the program's name) are relative to
  // the package, whichever folder the build runs from.
  absWorkingDir: here,
  entryPoints: { rallycache: path.join(dist, "bin.js") },
  entryNames: "[name]-[hash]",
  outdir,
  outExtension: { ".js": ".cjs" },
  write: false,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  minify: true,
  sourcemap: "linked",
  sourcesContent: false,
  logLevel: "warning",
  // The ffmpeg packages compute their binary's path from their own folder:
  // they stay packages, required at run time from this one's dependencies.
  external: ["@ffmpeg-installer/ffmpeg", "@ffprobe-installer/ffprobe", "ffmpeg-static"],
  // The modules resolve files from their own URL (createRequire): in the
  // bundle that is the bundle's.
  define: { "import.meta.url": "__rallycacheUrl" },
  banner: { js: "var __rallycacheUrl=require(\"node:url\").pathToFileURL(__filename).href;" }
})
const main = program.outputFiles.find((file) => file.path.endsWith(".cjs"))
if (main === undefined) throw new Error("esbuild wrote no program file")
// The program is compiled as a function body: no `#!` line (kept as a
// comment of the same length, so the source map still fits).
const mainText = main.text.replace(/^#!/, "//")

const loader = await build({
  stdin: {
    contents: `import { run } from ${JSON.stringify(path.join(dist, "internal", "codeCache.js"))}
import { fileURLToPath } from "node:url"
run(fileURLToPath(new URL(${JSON.stringify(`./${path.basename(main.path)}`)}, import.meta.url)))
`,
    resolveDir: dist,
    sourcefile: "rallycache.js"
  },
  absWorkingDir: here,
  outfile: path.join(outdir, "rallycache.js"),
  write: false,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  minify: true,
  logLevel: "warning",
  banner: { js: "#!/usr/bin/env node" }
})

const outputs = [
  ...program.outputFiles.map((file) => ({ path: file.path, contents: file === main ? Buffer.from(mainText) : file.contents })),
  ...loader.outputFiles.map((file) => ({ path: file.path, contents: file.contents }))
]
fs.mkdirSync(outdir, { recursive: true })
const written = new Set()
for (const file of outputs) {
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
// Files of an older build (a command still running from one keeps it open);
// the code caches of this program stay.
const cachePrefix = `${path.basename(main.path, ".cjs")}.v8-`
for (const name of fs.readdirSync(outdir)) {
  if (!written.has(name) && !name.startsWith(cachePrefix)) fs.rmSync(path.join(outdir, name), { force: true })
}
// The entry's time says when the bundle was last brought up to date (the
// repository's `pnpm rallycache` compares it with the sources').
const now = new Date()
fs.utimesSync(path.join(outdir, "rallycache.js"), now, now)
