#!/usr/bin/env node
// `pnpm rallycache ...` in the repository: runs the bundled command
// (packages/cli/dist/bundle), building it first only when a source, tsconfig
// or package manifest of core, node or cli is newer than the bundle. A check
// of the file times costs a few milliseconds; the build, when needed, is
// `pnpm build`'s own (tsc -b, then the bundle).
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const bundle = path.join(root, "packages", "cli", "dist", "bundle", "rallycache.js")

const newest = (entry) => {
  let stat
  try {
    stat = fs.statSync(entry)
  } catch {
    return 0
  }
  if (!stat.isDirectory()) return stat.mtimeMs
  let time = stat.mtimeMs
  for (const name of fs.readdirSync(entry)) time = Math.max(time, newest(path.join(entry, name)))
  return time
}

const inputs = ["core", "node", "cli"].flatMap((name) => {
  const dir = path.join(root, "packages", name)
  return ["src", "package.json", "tsconfig.build.json", "scripts"].map((entry) => path.join(dir, entry))
})

const stale = () => {
  let built
  try {
    built = fs.statSync(bundle).mtimeMs
  } catch {
    return true
  }
  return inputs.some((input) => newest(input) > built)
}

if (stale()) {
  const step = (args) => {
    const result = spawnSync(process.execPath, args, { cwd: root, stdio: ["ignore", "inherit", "inherit"] })
    if (result.status !== 0) process.exit(result.status ?? 1)
  }
  step([path.join(root, "node_modules", "typescript", "bin", "tsc"), "-b", "tsconfig.build.json"])
  step([path.join(root, "packages", "cli", "scripts", "bundle.mjs")])
}

await import(pathToFileURL(bundle).href)
