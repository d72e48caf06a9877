/**
 * vitest global set-up of the example projects: bundles each entry point
 * that their tests start as a process into one ES module,
 * `<example>/.bundle/<entry>.js`, once per test run, so that a started
 * process loads one file instead of tsx compiling the sources and Node
 * resolving thousands of modules. The tests that type a README's command
 * still run it with tsx, as shown; the others run `node <bundle>`.
 *
 * The bundle is built from what tsx runs (the packages' compiled `dist/`,
 * brought up to date by `build.ts` first) and behaves as those files do:
 * each module's `import.meta.url` stays its own file's (the http-server
 * example finds its `player/` folder beside its sources, `@rallycache/node`
 * looks for the ffmpeg packages from its own folder), and the packages that
 * locate a native binary from their own folder stay packages, imported from
 * where the source imports them.
 *
 * A file whose content did not change is left as it is, and a changed one is
 * replaced by a rename, so a process started from a bundle never has it
 * pulled from under it.
 */
import type * as Esbuild from "esbuild"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import type { TestProject } from "vitest/node"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const key = Symbol.for("@rallycache/test/bundled")

declare module "vitest" {
  export interface ProvidedContext {
    /** The entry points (`src/<entry>.ts`) of the project's example that its tests start as processes. */
    readonly exampleBundles: ReadonlyArray<string>
  }
}

/** The bundle of `src/<entry>.ts` of the example in `exampleRoot`, made by this set-up. */
export const exampleBundle = (exampleRoot: string, entry: string): string =>
  path.join(exampleRoot, ".bundle", `${entry}.js`)

/** Packages that find a native binary from their own folder: never bundled. */
const native = /^(esbuild|@ffmpeg-installer\/ffmpeg|@ffprobe-installer\/ffprobe|ffmpeg-static)$/

const sameAsSource: Esbuild.Plugin = {
  name: "same-as-source",
  setup(build) {
    build.onResolve({ filter: native }, (args) => ({
      path: pathToFileURL(createRequire(args.importer).resolve(args.path)).href,
      external: true
    }))
    build.onLoad({ filter: /\.[cm]?[jt]s$/ }, async (args) => {
      if (!args.path.startsWith(root + path.sep) || args.path.includes(`${path.sep}node_modules${path.sep}`)) return
      const text = await fs.promises.readFile(args.path, "utf8")
      if (!text.includes("import.meta.url")) return
      const loader = /\.[cm]?ts$/.test(args.path) ? "ts" : "js"
      return { contents: text.replaceAll("import.meta.url", JSON.stringify(pathToFileURL(args.path).href)), loader }
    })
  }
}

const writeIfChanged = (file: string, contents: Uint8Array): void => {
  try {
    if (Buffer.compare(fs.readFileSync(file), contents) === 0) return
  } catch {
    // not there yet
  }
  fs.mkdirSync(path.dirname(file), { recursive: true })
  const temp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(temp, contents)
  fs.renameSync(temp, file)
}

/**
 * Bundles `src/<entry>.ts` of the example in `exampleRoot` for each of
 * `entries` into `exampleBundle(exampleRoot, entry)`. For a program that
 * starts an example's processes outside vitest (the bench); vitest's set-up
 * below does it once per run.
 */
export const bundleExample = async (exampleRoot: string, entries: ReadonlyArray<string>): Promise<void> => {
  // Node's own `require`: vitest resolves a set-up file's bare imports from the project's folder.
  const esbuild = createRequire(import.meta.url)("esbuild") as typeof Esbuild
  const result = await esbuild.build({
    entryPoints: Object.fromEntries(entries.map((entry) => [entry, path.join(exampleRoot, "src", `${entry}.ts`)])),
    outdir: path.join(exampleRoot, ".bundle"),
    write: false,
    bundle: true,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
    plugins: [sameAsSource],
    // Bundled CommonJS dependencies call `require` for Node's own modules.
    banner: {
      js: "import { createRequire as __rallycacheRequire } from \"node:module\"; const require = __rallycacheRequire(import.meta.url);"
    }
  })
  for (const file of result.outputFiles) writeIfChanged(file.path, file.contents)
}

export default async function setup(project: TestProject): Promise<void> {
  const state = globalThis as { [key]?: Set<string> }
  const done = (state[key] ??= new Set())
  const exampleRoot = project.config.root
  const todo = (project.config.provide?.exampleBundles ?? []).filter((entry) => !done.has(exampleBundle(exampleRoot, entry)))
  if (todo.length === 0) return
  await bundleExample(exampleRoot, todo)
  for (const entry of todo) done.add(exampleBundle(exampleRoot, entry))
}
