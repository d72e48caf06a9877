/**
 * The README's screenshot command, as typed (from the repository root),
 * into a temp file: it starts the example, opens the page in headless
 * Chromium and writes a PNG of the page's size.
 */
import { describe, expect, it } from "@effect/vitest"
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..")

describe("pnpm --filter http-server screenshot", () => {
  it("writes a PNG of the player page from the running example", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "http-server-screenshot-"))
    try {
      const out = path.join(dir, "page.png")
      const result = ChildProcess.spawnSync("pnpm", ["--filter", "http-server", "screenshot", "--", out], {
        cwd: root,
        encoding: "utf8",
        timeout: 110_000
      })
      expect(result.status, result.stderr).toBe(0)
      expect(result.stdout).toContain(`wrote ${out}`)
      const png = fs.readFileSync(out)
      expect(png.subarray(1, 4).toString("latin1")).toBe("PNG")
      // IHDR: width and height, big-endian, at bytes 16 and 20.
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1280, 860])
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })
})
