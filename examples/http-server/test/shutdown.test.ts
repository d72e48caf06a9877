/**
 * SIGTERM in the middle of a download, against the server as a real
 * process: the response in flight is finished, new connections are refused,
 * running exports end with the process (no ffmpeg left, no partial file), and
 * the cache index is intact for the next start.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { type ChildProcess, execFileSync, spawn } from "node:child_process"
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as http from "node:http"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { exampleBundle } from "../../../test/support/bundle.js"
import { sampleVideo, workspace } from "./fixtures.js"

const packageDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")

interface Running {
  readonly child: ChildProcess
  readonly url: string
  readonly output: () => string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const start = (env: Record<string, string>): Promise<Running> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [exampleBundle(packageDir, "main")], {
      cwd: packageDir,
      env: { ...process.env, PORT: "0", ...env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.once("exit", (code, signal) => done({ code, signal }))
    )
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /listening on (http:\/\/\S+?)\/?\s/.exec(output)
      if (match !== null) resolve({ child, url: match[1]!, output: () => output, exited })
    }
    child.stdout!.on("data", onData)
    child.stderr!.on("data", onData)
    void exited.then(({ code }) => reject(new Error(`server exited with ${code} before listening:\n${output}`)))
  })

const post = async (url: string, body: unknown) => {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  const json = (await response.json()) as Record<string, unknown>
  if (!response.ok) throw new Error(`${url}: ${response.status} ${JSON.stringify(json)}`)
  return json
}

/** A GET whose body is read only when `resume` is called. */
const pausedDownload = (url: string) =>
  new Promise<{
    readonly headers: http.IncomingHttpHeaders
    readonly received: () => number
    readonly resume: () => Promise<Buffer>
  }>((resolve, reject) => {
    const request = http.get(url, { agent: false }, (response) => {
      const chunks: Array<Buffer> = []
      let received = 0
      const ended = new Promise<Buffer>((done, fail) => {
        response.on("end", () => done(Buffer.concat(chunks)))
        response.on("error", fail)
        response.on("aborted", () => fail(new Error("response aborted")))
      })
      response.on("data", (chunk: Buffer) => {
        chunks.push(chunk)
        received += chunk.length
      })
      response.once("data", () => {
        response.pause()
        resolve({ headers: response.headers, received: () => received, resume: () => (response.resume(), ended) })
      })
    })
    request.on("error", reject)
  })

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const filesUnder = (dir: string): Array<string> =>
  fs.readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name))

/** Processes whose command line mentions `text` (ffmpeg writes under the cache folder). */
const processesMentioning = (text: string): Array<string> =>
  execFileSync("ps", ["-eo", "pid=,args="], { encoding: "utf8" })
    .split("\n")
    .filter((line) => line.includes(text) && !line.includes("ps -eo"))

describe("graceful shutdown", () => {
  let ws: ReturnType<typeof workspace>
  const servers: Array<Running> = []

  beforeAll(async () => {
    // Big enough (tens of MB) that a paused client leaves the server mid-response.
    ws = workspace(await sampleVideo({ duration: 24, width: 1280, height: 720, preset: "ultrafast", clock: false }))
  }, 300_000)
  afterAll(() => {
    for (const server of servers) if (server.child.exitCode === null) server.child.kill("SIGKILL")
    ws?.cleanup()
  })

  it("finishes the download in flight on SIGTERM, ends exports, and keeps the index", async () => {
    const env = {
      RALLYCACHE_CACHE_DIR: ws.cacheDir,
      RALLYCACHE_MEDIA_ROOT: ws.mediaRoot,
      RALLYCACHE_SHUTDOWN_GRACE: "2 minutes"
    }
    const server = await start(env)
    servers.push(server)
    const rallies = [{ start: 1, end: 22 }, { start: 2, end: 23 }, { start: 3, end: 23.5 }]
    await post(`${server.url}/api/videos`, { path: "match.mp4", rallies, id: "copy" })
    const warm = await fetch(`${server.url}/api/videos/copy/rallies/0/clip`)
    expect(warm.status).toBe(200)
    await warm.arrayBuffer()
    // Background work to be running at shutdown: accurate (re-encoding) exports.
    await post(`${server.url}/api/videos`, { path: "match.mp4", rallies, id: "accurate", mode: "accurate" })
    await post(`${server.url}/api/videos/accurate/navigate`, { index: 0 })
    const deadline = Date.now() + 60_000
    for (;;) {
      const status = await fetch(`${server.url}/api/videos/accurate/status`).then((r) => r.json()) as {
        rallies: Array<{ state: string }>
      }
      if (status.rallies.some((r) => r.state === "running")) break
      if (Date.now() > deadline) throw new Error("no accurate export started")
      await sleep(50)
    }

    const download = await pausedDownload(`${server.url}/api/videos/copy/rallies/0/clip`)
    const size = Number(download.headers["content-length"])
    expect(size).toBeGreaterThan(8 * 1024 * 1024)
    const key = String(download.headers["etag"]).replaceAll("\"", "")

    server.child.kill("SIGTERM")
    // The shutdown has begun (it says so) and the listener is closed (a new connection is refused):
    // waited for, not slept on. The bound only names a hang.
    const shutdownDeadline = Date.now() + 60_000
    const refused = () => fetch(`${server.url}/api/videos/copy/status`).then((r) => r.arrayBuffer().then(() => false), () => true)
    while (!(server.output().includes("shutting down") && (await refused()))) {
      if (Date.now() > shutdownDeadline) throw new Error(`the server did not stop accepting:\n${server.output()}`)
      await sleep(20)
    }
    // Still serving the paused response.
    expect(server.child.exitCode).toBeNull()
    expect(download.received()).toBeLessThan(size)

    const body = await download.resume()
    expect(body.length).toBe(size)
    const { code, signal } = await server.exited
    expect({ code, signal }).toEqual({ code: 0, signal: null })
    expect(server.output()).toContain("shutting down")

    // The bytes are the cached clip's, and nothing was left behind.
    const clipFile = filesUnder(ws.cacheDir).find((file) => path.basename(file).startsWith(key) && file.endsWith(".mp4"))
    expect(clipFile).toBeDefined()
    const digest = (data: Buffer) => crypto.createHash("sha256").update(data).digest("hex")
    expect(digest(body)).toBe(digest(fs.readFileSync(clipFile!)))
    expect(filesUnder(ws.cacheDir).filter((file) => file.endsWith(".part"))).toEqual([])
    expect(processesMentioning(ws.cacheDir)).toEqual([])

    // The next start finds the clip in its index: a hit, same bytes.
    const again = await start(env)
    servers.push(again)
    await post(`${again.url}/api/videos`, { path: "match.mp4", rallies, id: "copy" })
    const response = await fetch(`${again.url}/api/videos/copy/rallies/0/clip`)
    expect(response.status).toBe(200)
    expect(response.headers.get("x-cache")).toBe("hit")
    expect(digest(Buffer.from(await response.arrayBuffer()))).toBe(digest(body))
    // With nothing in flight, SIGTERM ends the process on its own.
    again.child.kill("SIGTERM")
    expect(await again.exited).toEqual({ code: 0, signal: null })
  }, 240_000)
})
