/**
 * How the user started this command, to suggest next commands they can
 * type as they are: `pnpm rallycache` from a package script, `npx
 * rallycache`, `rallycache` when installed (globally or on PATH), or `node
 * path/to/rallycache.js` when started through node.
 *
 * @internal
 */
import * as NodePath from "node:path"

/** @internal */
export const invokedAs = (
  env: NodeJS.ProcessEnv = process.env,
  argv: ReadonlyArray<string> = process.argv,
  cwd: string = process.cwd()
): string => {
  const event = env["npm_lifecycle_event"]
  const runner = NodePath.basename(env["npm_execpath"] ?? "")
  if (event === "rallycache" || event === "demo") {
    if (runner.startsWith("pnpm")) return "pnpm rallycache"
    if (runner.startsWith("yarn")) return "yarn rallycache"
    return "npm run rallycache --"
  }
  if (event === "npx") return "npx rallycache"
  const script = argv[1] ?? "rallycache"
  if (NodePath.basename(script) === "rallycache") return "rallycache"
  const relative = NodePath.relative(cwd, script)
  return `node ${relative.startsWith("..") || NodePath.isAbsolute(relative) ? script : relative}`
}
