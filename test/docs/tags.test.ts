/**
 * Every export of every package's public modules carries `@since` and
 * `@category` in its JSDoc (the house style, as in Effect's own modules).
 * `node scripts/doc-tags.mjs --fix packages/NAME` adds the missing ones.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { readdirSync } from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const repoRoot = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const packages = readdirSync(path.join(repoRoot, "packages")).map((name) => path.join("packages", name))

describe("doc tags", () => {
  it("every public export has @since and @category", () => {
    expect(packages.length).toBeGreaterThanOrEqual(4)
    const result = spawnSync(process.execPath, ["scripts/doc-tags.mjs", ...packages], { cwd: repoRoot, encoding: "utf8" })
    expect(result.stdout).toMatch(/^0 exports lack @since or @category$/m)
    expect(result.status).toBe(0)
  })

  it("the check finds an export without tags", () => {
    const result = spawnSync(process.execPath, ["scripts/doc-tags.mjs", "test/docs/fixture"], { cwd: repoRoot, encoding: "utf8" })
    expect(result.stdout).toContain("untagged: @since, @category")
    expect(result.status).toBe(1)
  })
})
