/**
 * Defects found by attacking the HTTP example from outside (issues 12, 13):
 * request bodies are limited, a rally index is decimal digits only, and a
 * fresh server lists every rallycache metric, described, at zero.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { SampleVideo } from "@rallycache/node"
import * as http from "node:http"
import { contentType } from "../src/Clips.js"
import { sampleVideo, startServer, type TestServer, workspace } from "./fixtures.js"

/**
 * POST `declared` bytes of body but write only `sent` of them, and resolve
 * with the answer: a server that waited for the whole body would never
 * answer.
 */
const postPartial = (url: string, options: { declared?: number; sent: number }) =>
  new Promise<{ status: number; body: string; connection: string | undefined }>((resolve, reject) => {
    const headers: Record<string, string | number> = { "content-type": "application/json" }
    if (options.declared !== undefined) headers["content-length"] = options.declared
    const request = http.request(url, { method: "POST", headers, agent: false }, (response) => {
      let body = ""
      response.setEncoding("utf8").on("data", (chunk: string) => (body += chunk))
      response.on("end", () => {
        request.destroy()
        resolve({ status: response.statusCode ?? 0, body, connection: response.headers.connection })
      })
    })
    // The server may close the connection after answering, while we still
    // write: that is fine once the answer is in; before, it is the failure.
    request.on("error", reject)
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    let written = 0
    const pump = () => {
      while (written < options.sent) {
        const size = Math.min(chunk.length, options.sent - written)
        written += size
        if (!request.write(chunk.subarray(0, size))) return void request.once("drain", pump)
      }
      // A chunked body (no length declared) ends; a declared one stays short.
      if (options.declared === undefined) request.end()
    }
    pump()
  })

describe("http-server limits", () => {
  let ws: ReturnType<typeof workspace>
  let server: TestServer

  beforeAll(async () => {
    ws = workspace(await sampleVideo({ duration: 8 }))
    server = await startServer({ cacheDir: ws.cacheDir, server: { mediaRoot: ws.mediaRoot } })
  })
  afterAll(async () => {
    await server?.dispose()
    ws?.cleanup()
  })

  it("a fresh server lists every rallycache metric at zero, each described, and no effect_* runtime metric", async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text()
    const families = [
      "rallycache_cache_hits_total",
      "rallycache_cache_misses_total",
      "rallycache_cache_hit_rate",
      "rallycache_exports_total",
      "rallycache_export_duration_ms",
      "rallycache_export_failures_total",
      "rallycache_export_retries_total",
      "rallycache_validations_total",
      "rallycache_queue_depth",
      "rallycache_queue_running",
      "rallycache_cache_bytes",
      "rallycache_cache_entries",
      "rallycache_evictions_total",
      "rallycache_heap_used_bytes",
      "rallycache_http_clip_responses_total"
    ]
    for (const family of families) {
      const help = new RegExp(`^# HELP ${family}\\b (.*)$`, "m").exec(text)
      expect(help, family).not.toBeNull()
      expect(help![1], family).not.toMatch(/description missing/)
      expect(text, family).toMatch(new RegExp(`^${family}(_bucket|_count|_sum)?(\\{[^}]*\\})? \\d`, "m"))
    }
    expect(text).toMatch(/^rallycache_exports_total\{mode="copy",priority="high"[^}]*\} 0$/m)
    expect(text).toMatch(/^rallycache_evictions_total\{reason="size"[^}]*\} 0$/m)
    expect(text).not.toMatch(/^# HELP effect_/m)
    expect(text).not.toMatch(/description missing/)
  })

  it("a JSON body over the limit is refused with 413 (411 without a length) before it is read", async () => {
    // 200 MB declared, 256 KiB sent: the answer comes without the rest.
    const declared = await postPartial(`${server.url}/api/videos`, { declared: 200 * 1024 * 1024, sent: 256 * 1024 })
    expect(declared.status).toBe(413)
    expect(JSON.parse(declared.body)).toMatchObject({ _tag: "BodyTooLarge" })
    // A client still sending is told to stop.
    expect(declared.connection).toBe("close")
    // Chunked (no length declared): refused before reading, with 411.
    const chunked = await postPartial(`${server.url}/api/videos`, { sent: 1024 * 1024 })
    expect(chunked.status).toBe(411)
    expect(JSON.parse(chunked.body)).toMatchObject({ _tag: "LengthRequired" })
    expect(chunked.connection).toBe("close")
    const navigate = await postPartial(`${server.url}/api/videos/x/navigate`, { declared: 10 * 1024 * 1024, sent: 1024 })
    expect(navigate.status).toBe(413)
    expect(JSON.parse(navigate.body)).toMatchObject({ _tag: "BodyTooLarge" })
    // The server still answers.
    const ok = await server.post("/api/videos", { path: "match.mp4", rallies: [{ start: 0, end: 2 }] })
    expect(ok.status).toBe(201)
  })

  it("a rally index is decimal digits only: 0x1, 1e0, 1.0, -1 and ' 1' are 400", async () => {
    const rallies = SampleVideo.sampleRallies(8, 2).map(({ end, start }) => ({ start, end }))
    const { id } = await server.register({ path: "match.mp4", rallies })
    for (const n of ["0x1", "1e0", "1.0", "-1", "%201", "+1", "1_0"]) {
      const response = await fetch(`${server.url}/api/videos/${id}/rallies/${n}/clip`)
      expect(response.status, n).toBe(400)
      const body = (await response.json()) as { _tag: string; message: string }
      expect(body._tag, n).toBe("HttpApiDecodeError")
      expect(body.message, n).toMatch(/^n: /)
    }
    expect((await fetch(`${server.url}/api/videos/${id}/rallies/1/clip`)).status).toBe(200)
  })

  it("a clip's content type follows its container", () => {
    expect(contentType("/c/clips/0123.mp4")).toBe("video/mp4")
    expect(contentType("/c/clips/0123.mkv")).toBe("video/x-matroska")
    expect(contentType("/c/clips/0123.webm")).toBe("video/webm")
  })
})
