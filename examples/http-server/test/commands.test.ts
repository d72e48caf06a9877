/**
 * The commands the READMEs show, typed as shown: `pnpm --filter http-server
 * start ...` from the repository root (pnpm runs the script inside the
 * package; relative paths count from where it was typed), and bad
 * arguments, each a real process.
 */
import { describe, expect, it } from "@effect/vitest"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { tempDir } from "../../../test/support/temp.js"
import { sampleVideo, workspace } from "./fixtures.js"

const packageDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const repoRoot = path.join(packageDir, "..", "..")

interface Run {
  readonly child: ChildProcess
  readonly output: () => string
  readonly exited: Promise<number | null>
}

const env = (extra: Record<string, string>) => {
  const out: NodeJS.ProcessEnv = { PORT: "0" }
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith("RALLYCACHE_") && key !== "INIT_CWD" && key !== "PORT") out[key] = value
  }
  return { ...out, ...extra }
}

/** Run a command in its own process group (pnpm starts children of its own). */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, extra: Record<string, string> = {}): Run => {
  const child = spawn(command, args, { cwd, env: env(extra), stdio: ["ignore", "pipe", "pipe"], detached: true })
  let output = ""
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (output += chunk))
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  return { child, output: () => output, exited }
}

/** Wait until the output matches `pattern` (or the process ends first). */
const waitFor = (r: Run, pattern: RegExp) =>
  new Promise<RegExpExecArray>((resolve, reject) => {
    const check = () => {
      const match = pattern.exec(r.output())
      if (match !== null) {
        r.child.stdout!.off("data", check)
        r.child.stderr!.off("data", check)
        resolve(match)
      }
    }
    r.child.stdout!.on("data", check)
    r.child.stderr!.on("data", check)
    void r.exited.then((code) => reject(new Error(`exited with ${code} before ${pattern}:\n${r.output()}`)))
    check()
  })

const stop = async (r: Run) => {
  try {
    process.kill(-r.child.pid!, "SIGTERM")
  } catch {
    // Already gone.
  }
  return r.exited
}

const oneLine = (text: string) => text.split("\n").filter((line) => line.trim() !== "" && !/\[WARN\]/.test(line))

describe("http-server commands", () => {
  it("pnpm --filter http-server start -- --demo (from the root) opens the demo and prints its player URL", async () => {
    const cacheDir = tempDir("http-demo")
    const r = run("pnpm", ["--filter", "http-server", "start", "--", "--demo"], repoRoot, {
      RALLYCACHE_CACHE_DIR: cacheDir
    })
    try {
      const [, url] = await waitFor(r, /player: (http:\/\/\S+\/)\?video=demo/)
      const status = await fetch(`${url}api/videos/demo/status`)
      expect(status.status).toBe(200)
      const body = (await status.json()) as { rallies: Array<unknown> }
      expect(body.rallies).toHaveLength(8)
      expect((await fetch(`${url}api/videos/demo/rallies/0/clip`)).status).toBe(200)
    } finally {
      await stop(r)
    }
  })

  it("--video and --rallies relative to the folder the command was typed in; the media root is that folder", async () => {
    const ws = workspace(await sampleVideo({ duration: 8 }))
    fs.writeFileSync(path.join(ws.mediaRoot, "rallies.json"), JSON.stringify({ videoId: "final", rallies: [{ start: "0:01", end: "0:03.5" }] }))
    // pnpm sets INIT_CWD to where the user typed the command.
    const r = run(process.execPath, ["--import", "tsx", "src/main.ts", "--video", "match.mp4", "--rallies", "rallies.json"], packageDir, {
      INIT_CWD: ws.mediaRoot,
      RALLYCACHE_CACHE_DIR: ws.cacheDir
    })
    try {
      const [, url] = await waitFor(r, /player: (http:\/\/\S+\/)\?video=final/)
      const status = (await (await fetch(`${url}api/videos/final/status`)).json()) as { rallies: Array<{ start: number; end: number }> }
      expect(status.rallies).toMatchObject([{ start: 1, end: 3.5 }])
      // The media root is where the command was typed: a file there can be registered.
      const registered = await fetch(`${url}api/videos`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ path: "match.mp4", rallies: [{ start: 0, end: 1 }], id: "again" })
      })
      expect(registered.status).toBe(201)

      // The README's curl lines, typed against this server (its port for 3000).
      fs.copyFileSync(ws.video, path.join(ws.mediaRoot, "final.mp4"))
      const readme = fs.readFileSync(path.join(packageDir, "README.md"), "utf8")
      const block = /```sh\n(curl -s localhost:3000\/api\/media[\s\S]*?)```/.exec(readme)?.[1]
      expect(block).toBeDefined()
      const address = new URL(url!).host
      const lines = block!.replace(/\\\n\s*/g, "").trim().split("\n").map((line) => line.replaceAll("localhost:3000", address))
      const outputs: Array<string> = []
      for (const line of lines) {
        const r = run("sh", ["-c", line], ws.mediaRoot)
        expect(await r.exited, `${line}: ${r.output()}`).toBe(0)
        outputs.push(r.output())
      }
      const [media, register, list, range, close, openapi] = outputs
      expect(JSON.parse(media!).videos).toEqual(expect.arrayContaining([expect.objectContaining({ path: "final.mp4" })]))
      expect(JSON.parse(register!)).toMatchObject({ id: "final", title: "final.mp4", rallyCount: 2 })
      expect(JSON.parse(list!).map((video: { id: string }) => video.id)).toContain("final")
      expect(range).toMatch(/^HTTP\/1\.1 206/)
      expect(range).toMatch(/content-range: bytes 0-99\//i)
      expect(close!.trim()).toBe("204")
      expect(JSON.parse(openapi!).paths["/api/media"]).toBeDefined()
    } finally {
      await stop(r)
      ws.cleanup()
    }
  })

  it("bad arguments exit 2 with one line; --help exits 0", async () => {
    const dir = tempDir("http-args")
    const cases: Array<[ReadonlyArray<string>, RegExp]> = [
      [["--port", "70000"], /--port \(or PORT\) must be a number/],
      [["--port", "abc"], /--port: 'abc' is not an integer/],
      [["--video", "match.mp4"], /--video: needs --rallies FILE/],
      [["--video", "match.mp4", "--rallies", "missing.json"], /rallies file .*missing\.json: not found/],
      [["--cache-dir", ""], /cache-dir/],
      [["--bogus"], /bogus/]
    ]
    for (const [args, pattern] of cases) {
      const r = run(process.execPath, ["--import", "tsx", "src/main.ts", ...args], packageDir, {
        INIT_CWD: dir,
        RALLYCACHE_CACHE_DIR: path.join(dir, "cache")
      })
      const code = await r.exited
      expect(code, `${args.join(" ")}: ${r.output()}`).toBe(2)
      const lines = oneLine(r.output())
      expect(lines, args.join(" ")).toHaveLength(1)
      expect(lines[0], args.join(" ")).toMatch(pattern)
    }
    // stdout is a pipe here, as in `--help | cat`: plain text, no colour codes.
    const help = run(process.execPath, ["--import", "tsx", "src/main.ts", "--help"], packageDir)
    expect(await help.exited).toBe(0)
    expect(help.output()).toMatch(/--demo/)
    expect(help.output()).toMatch(/\[--port integer\]/)
    expect(help.output()).not.toMatch(/\u001b\[/)
  })
})
