/**
 * A source whose streams do not fit mp4 (VP8 + Vorbis) is cut in copy mode
 * into a webm clip: cached as `<key>.webm`, kept across a restart of the
 * service (journal reload and reconciliation), and served as `video/webm`.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { makeWebm } from "../../../test/support/webm.js"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startServer, workspace } from "./fixtures.js"

describe("http-server clip containers", () => {
  let ws: ReturnType<typeof workspace>
  beforeAll(() => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "http-server-webm-"))
    try {
      const source = path.join(dir, "match.webm")
      makeWebm("/usr/bin/ffmpeg", source, 6)
      ws = workspace(source, "match.webm")
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }, 120_000)
  afterAll(() => ws?.cleanup())

  it("a VP8 + Vorbis webm cut in copy mode is cached as <key>.webm, survives a restart and is served as video/webm", async () => {
    const clipsDir = path.join(ws.cacheDir, "clips")
    const register = async (server: Awaited<ReturnType<typeof startServer>>) => {
      const response = await server.post("/api/videos", {
        path: "match.webm",
        rallies: [{ start: 1, end: 3 }],
        mode: "copy"
      })
      expect(response.status, JSON.stringify(response.body)).toBe(201)
      return String(response.body["id"])
    }
    const fetchClip = async (server: Awaited<ReturnType<typeof startServer>>, id: string) => {
      const response = await fetch(`${server.url}/api/videos/${id}/rallies/0/clip`)
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toBe("video/webm")
      const bytes = Buffer.from(await response.arrayBuffer())
      // EBML magic: the bytes are Matroska/WebM, not an mp4 under another name.
      expect(bytes.subarray(0, 4).toString("hex")).toBe("1a45dfa3")
      return { etag: response.headers.get("etag"), bytes }
    }

    const first = await startServer({ cacheDir: ws.cacheDir, server: { mediaRoot: ws.mediaRoot } })
    let served: { etag: string | null; bytes: Buffer }
    try {
      served = await fetchClip(first, await register(first))
    } finally {
      await first.dispose()
    }
    const names = fs.readdirSync(clipsDir)
    expect(names).toEqual([`${served.etag!.slice(1, -1)}.webm`])
    const inode = fs.statSync(path.join(clipsDir, names[0]!)).ino

    const second = await startServer({ cacheDir: ws.cacheDir, server: { mediaRoot: ws.mediaRoot } })
    try {
      const again = await fetchClip(second, await register(second))
      expect(again.etag).toBe(served.etag)
      expect(again.bytes.equals(served.bytes)).toBe(true)
    } finally {
      await second.dispose()
    }
    // Served from the cache, not exported again: the same file, still under its webm name.
    expect(fs.readdirSync(clipsDir)).toEqual(names)
    expect(fs.statSync(path.join(clipsDir, names[0]!)).ino).toBe(inode)
  })
})
