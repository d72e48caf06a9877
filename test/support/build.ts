/**
 * vitest global set-up: brings the packages' `dist/` up to date (`tsc -b`,
 * about half a second when nothing changed, then the CLI's bundle) so that
 * tests which run the compiled CLI never run a stale build. Runs once per vitest process, however
 * many projects ask for it.
 */
import { spawnSync } from "node:child_process"
import { createRequire } from "node:module"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const key = Symbol.for("@rallycache/test/built")

export default function setup(): void {
  const state = globalThis as { [key]?: boolean }
  if (state[key] === true) return
  state[key] = true
  const tsc = createRequire(path.join(root, "package.json")).resolve("typescript/bin/tsc")
  const result = spawnSync(process.execPath, [tsc, "-b", "tsconfig.build.json"], { cwd: root, encoding: "utf8" })
  // tsc still writes the JavaScript when the types are wrong; the type errors
  // are `pnpm typecheck`'s to report, so they are shown here, not fatal.
  if (result.status !== 0) {
    process.stderr.write(`pnpm build reported errors (the tests run what it emitted):\n${result.stdout}${result.stderr}\n`)
  }
  const bundle = spawnSync(process.execPath, [path.join(root, "packages", "cli", "scripts", "bundle.mjs")], {
    cwd: root,
    encoding: "utf8"
  })
  if (bundle.status !== 0) throw new Error(`bundling the CLI failed:\n${bundle.stdout}${bundle.stderr}`)
}
