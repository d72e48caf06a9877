/**
 * `scripts/setup.mjs` (run by `pnpm test` first): it does nothing when what the
 * tests need is present, installs what is missing through apt-get when it can,
 * and otherwise stops with one line. Run against fake binaries and a fake
 * apt-get on a PATH of their own.
 */
import { afterEach, beforeEach, describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "scripts", "setup.mjs")

let dir: string
let bin: string
let pg: string

const fake = (file: string, body = "exit 0") => {
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 })
}

const run = () => {
  const result = spawnSync(process.execPath, [script], {
    env: { PATH: bin, PG_BIN: pg, HOME: dir },
    encoding: "utf8"
  })
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "rallycache-setup-"))
  bin = path.join(dir, "bin")
  pg = path.join(dir, "pg")
  fs.mkdirSync(bin)
  fs.mkdirSync(pg)
  for (const tool of ["chromium", "firefox-esr", "ffmpeg", "ffprobe", "ps", "curl"]) fake(path.join(bin, tool))
  for (const tool of ["initdb", "pg_ctl", "postgres"]) fake(path.join(pg, tool))
})

afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true })
})

const isRoot = process.getuid?.() === 0

describe("scripts/setup.mjs", () => {
  it("does nothing and says nothing when everything is present", () => {
    expect(run()).toEqual({ code: 0, stdout: "", stderr: "" })
  })

  it("stops with one line naming what to install when it cannot install (no apt-get)", () => {
    fs.rmSync(path.join(bin, "chromium"))
    fs.rmSync(path.join(pg, "pg_ctl"))
    const result = run()
    expect(result.code).toBe(1)
    expect(result.stdout).toBe("")
    const lines = result.stderr.trimEnd().split("\n")
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain("Chromium")
    expect(lines[0]).toContain("PostgreSQL")
    expect(lines[0]).toContain("chromium, postgresql")
    expect(lines[0]).not.toContain("ffmpeg")
  })

  it.skipIf(!isRoot)("installs only what is missing through apt-get, as root", () => {
    fs.rmSync(path.join(bin, "ffmpeg"))
    fs.rmSync(path.join(bin, "chromium"))
    const log = path.join(dir, "apt.log")
    // The fake apt-get records its arguments and "installs" by creating the binaries.
    fake(
      path.join(bin, "apt-get"),
      `echo "$DEBIAN_FRONTEND $*" >> ${log}\ncase "$1" in install) for t in chromium ffmpeg; do printf '#!/bin/sh\\n' > ${bin}/$t; /bin/chmod +x ${bin}/$t; done;; esac`
    )
    const result = run()
    expect(result.code).toBe(0)
    expect(result.stderr.trimEnd().split("\n")).toEqual([
      "installing chromium ffmpeg for the tests (Chromium, ffmpeg and ffprobe missing)..."
    ])
    expect(fs.readFileSync(log, "utf8").trimEnd().split("\n")).toEqual([
      "noninteractive update -qq",
      "noninteractive install -y -qq chromium ffmpeg"
    ])
  })

  it.skipIf(!isRoot)("stops with one line when apt-get fails", () => {
    fs.rmSync(path.join(bin, "ps"))
    fake(path.join(bin, "apt-get"), "exit 100")
    const result = run()
    expect(result.code).toBe(1)
    const lines = result.stderr.trimEnd().split("\n")
    expect(lines).toHaveLength(2)
    expect(lines[1]).toBe("apt-get update -qq failed (exit 100): install procps by hand, then run the tests again")
  })
})
