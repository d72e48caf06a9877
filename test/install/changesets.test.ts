/**
 * The release flow: in a copy of the workspace's manifests, changesets'
 * `changeset version` turns a changeset into one new version for the four
 * packages together (a `fixed` group) and a new entry in each package's
 * CHANGELOG.md, and leaves the private examples alone.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"
import { tempDir } from "../support/temp.js"

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const packages = ["core", "node", "cli", "cluster"]
const changeset = path.join(repoRoot, "node_modules", "@changesets", "cli", "bin.js")

describe("changesets", () => {
  it("changeset version bumps the four packages together and writes each CHANGELOG.md", () => {
    const root = tempDir("changesets")
    const copy = (file: string) => {
      fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
      fs.copyFileSync(path.join(repoRoot, file), path.join(root, file))
    }
    for (const file of ["package.json", "pnpm-workspace.yaml", ".changeset/config.json"]) copy(file)
    for (const name of packages) for (const file of ["package.json", "CHANGELOG.md"]) copy(`packages/${name}/${file}`)
    copy("examples/batch-export/package.json")
    const before = JSON.parse(fs.readFileSync(path.join(root, "packages/core/package.json"), "utf8")) as { version: string }
    fs.writeFileSync(
      path.join(root, ".changeset", "quick-start.md"),
      `---\n"@rallycache/cli": patch\n---\n\nThe command starts in a fraction of the time.\n`
    )
    const result = spawnSync(process.execPath, [changeset, "version"], { cwd: root, encoding: "utf8" })
    expect(result.status, result.stderr + result.stdout).toBe(0)
    const [major, minor, patch] = before.version.split(".").map(Number)
    const next = `${major}.${minor}.${patch! + 1}`
    for (const name of packages) {
      const manifest = JSON.parse(fs.readFileSync(path.join(root, "packages", name, "package.json"), "utf8")) as {
        version: string
      }
      expect(manifest.version, name).toBe(next)
      const changelog = fs.readFileSync(path.join(root, "packages", name, "CHANGELOG.md"), "utf8")
      expect(changelog.startsWith(`# @rallycache/${name}\n\n## ${next}\n`), changelog).toBe(true)
      expect(changelog).toContain(`## ${before.version}`)
    }
    expect(fs.readFileSync(path.join(root, "packages", "cli", "CHANGELOG.md"), "utf8")).toContain(
      "The command starts in a fraction of the time."
    )
    expect(fs.existsSync(path.join(root, ".changeset", "quick-start.md"))).toBe(false)
    expect(fs.existsSync(path.join(root, "examples", "batch-export", "CHANGELOG.md"))).toBe(false)
  })
})
