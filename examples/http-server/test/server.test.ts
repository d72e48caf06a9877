/**
 * The HTTP API against the real service in-process: default Node cache
 * layer, real ffmpeg, a generated video.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Config } from "@rallycache/core"
import { SampleVideo } from "@rallycache/node"
import { Either } from "effect"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { ViewerApi } from "../src/ViewerApi.js"
import { sampleVideo, startServer, type TestServer, workspace } from "./fixtures.js"

interface SseEvent {
  readonly _tag: string
  readonly key?: string
  readonly rallyIndex?: number
  readonly attempt?: number
  readonly clip?: { readonly key: string; readonly rallyIndex: number; readonly path?: string }
}

/** Read `/api/events` in the background; resolves once subscribed. */
const listen = async (url: string) => {
  const controller = new AbortController()
  const response = await fetch(`${url}/api/events`, { signal: controller.signal })
  expect(response.headers.get("content-type")).toContain("text/event-stream")
  const reader = response.body!.getReader()
  const decoder = new TextDecoder()
  const events: Array<SseEvent> = []
  let buffer = ""
  let subscribed: () => void = () => {}
  const ready = new Promise<void>((resolve) => (subscribed = resolve))
  const pump = (async () => {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (block.startsWith("retry:")) subscribed()
        for (const line of block.split("\n")) {
          if (line.startsWith("data: ")) events.push(JSON.parse(line.slice(6)) as SseEvent)
        }
      }
    }
  })().catch(() => {})
  await ready
  return { events, close: () => { controller.abort(); return pump } }
}

/** Byte equality without vitest's element-by-element deep equality (seconds on 60 kB). */
const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b)

const until = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe("http-server API", () => {
  let ws: ReturnType<typeof workspace>
  let server: TestServer
  let id: string
  const rallies = SampleVideo.sampleRallies(8, 4).map(({ start, end }) => ({ start, end }))
  const clipUrl = (n: number) => `${server.url}/api/videos/${id}/rallies/${n}/clip`

  beforeAll(async () => {
    ws = workspace(await sampleVideo({ duration: 8 }))
    server = await startServer({ cacheDir: ws.cacheDir, server: { mediaRoot: ws.mediaRoot } })
    id = (await server.register({ path: "match.mp4", rallies })).id
  })
  afterAll(async () => {
    await server?.dispose()
    ws?.cleanup()
  })

  it("serves a clip as mp4 with Accept-Ranges and an ETag from the cache key; If-None-Match gives 304", async () => {
    const first = await fetch(clipUrl(0))
    expect(first.status).toBe(200)
    expect(first.headers.get("content-type")).toBe("video/mp4")
    expect(first.headers.get("accept-ranges")).toBe("bytes")
    const body = new Uint8Array(await first.arrayBuffer())
    expect(Number(first.headers.get("content-length"))).toBe(body.length)
    // An mp4 starts with an ftyp box.
    expect(new TextDecoder().decode(body.subarray(4, 8))).toBe("ftyp")

    const status = await server.json<{ rallies: Array<{ key: string; state: string }> }>(`/api/videos/${id}/status`)
    const key = status.body.rallies[0]!.key
    expect(status.body.rallies[0]!.state).toBe("cached")
    expect(first.headers.get("etag")).toBe(`"${key}"`)

    const again = await fetch(clipUrl(0), { headers: { "if-none-match": `"${key}"` } })
    expect(again.status).toBe(304)
    const other = await fetch(clipUrl(0), { headers: { "if-none-match": "\"something-else\"" } })
    expect(other.status).toBe(200)
    expect(other.headers.get("x-cache")).toBe("hit")
    expect(sameBytes(new Uint8Array(await other.arrayBuffer()), body)).toBe(true)
  })

  it("answers Range requests: first bytes, middle, open-ended and suffix with 206; invalid with 416", async () => {
    const full = new Uint8Array(await (await fetch(clipUrl(0))).arrayBuffer())
    const size = full.length
    expect(size).toBeGreaterThan(1000)
    const ranged = async (range: string) => {
      const response = await fetch(clipUrl(0), { headers: { range } })
      return { response, body: new Uint8Array(await response.arrayBuffer()) }
    }
    const middle = Math.floor(size / 2)
    const cases: Array<[string, number, number]> = [
      ["bytes=0-99", 0, 99],
      [`bytes=${middle}-${middle + 499}`, middle, middle + 499],
      [`bytes=${size - 300}-`, size - 300, size - 1],
      ["bytes=-256", size - 256, size - 1],
      [`bytes=${size - 10}-${size + 1000}`, size - 10, size - 1]
    ]
    for (const [range, start, end] of cases) {
      const { response, body } = await ranged(range)
      expect(response.status, range).toBe(206)
      expect(response.headers.get("content-range"), range).toBe(`bytes ${start}-${end}/${size}`)
      expect(Number(response.headers.get("content-length")), range).toBe(end - start + 1)
      expect(sameBytes(body, full.subarray(start, end + 1)), range).toBe(true)
    }
    for (const range of [`bytes=${size}-`, "bytes=500-100", "bytes=-0", "bytes=x-y"]) {
      const { response, body } = await ranged(range)
      expect(response.status, range).toBe(416)
      expect(response.headers.get("content-range"), range).toBe(`bytes */${size}`)
      expect(body.length).toBe(0)
    }
    // If-Range with a stale tag: the whole current clip.
    const stale = await fetch(clipUrl(0), { headers: { range: "bytes=0-9", "if-range": "\"stale\"" } })
    expect(stale.status).toBe(200)
    expect(sameBytes(new Uint8Array(await stale.arrayBuffer()), full)).toBe(true)
  })

  it("concurrent requests for one missing clip start a single export and all get the same clip", async () => {
    const sse = await listen(server.url)
    const before = await server.json<{ stats: { exports: number } }>(`/api/videos/${id}/status`)
    const responses = await Promise.all(Array.from({ length: 6 }, () => fetch(clipUrl(3))))
    const bodies = await Promise.all(responses.map(async (r) => new Uint8Array(await r.arrayBuffer())))
    for (const response of responses) expect(response.status).toBe(200)
    for (const body of bodies) expect(sameBytes(body, bodies[0]!)).toBe(true)
    expect(responses.filter((r) => r.headers.get("x-cache") === "miss").length).toBeGreaterThanOrEqual(1)

    const after = await server.json<{ rallies: Array<{ key: string }>; stats: { exports: number } }>(`/api/videos/${id}/status`)
    const key = after.body.rallies[3]!.key
    await until("ClipReady of rally 3", () => sse.events.some((e) => e._tag === "ClipReady" && e.clip?.key === key))
    await sse.close()
    const started = sse.events.filter((e) => e._tag === "JobStarted" && e.key === key && e.attempt === 1)
    const ready = sse.events.filter((e) => e._tag === "ClipReady" && e.clip?.key === key)
    expect(started.length).toBe(1)
    expect(ready.length).toBe(1)
    expect(after.body.stats.exports - before.body.stats.exports).toBe(1)
    // Events never reveal the server's file paths.
    expect(ready[0]!.clip?.path).toBeUndefined()
  })

  it("refuses paths outside the media root with OutsideMediaRoot (403), and a missing file under it with MediaNotFound (404)", async () => {
    const outside = path.join(ws.dir, "outside.mp4")
    fs.copyFileSync(ws.video, outside)
    const link = path.join(ws.mediaRoot, "link.mp4")
    if (!fs.existsSync(link)) fs.symlinkSync(outside, link)
    for (const requested of ["../outside.mp4", outside, "link.mp4", "/etc/passwd", "."]) {
      const result = await server.call((c) => c.videos.register({ payload: { path: requested, rallies } }))
      expect(Either.isLeft(result) && result.left._tag, requested).toBe("OutsideMediaRoot")
      if (Either.isLeft(result)) expect(result.left.message).not.toContain("\n")
      const raw = await server.post("/api/videos", { path: requested, rallies })
      expect(raw.status, requested).toBe(403)
      expect(raw.body["_tag"]).toBe("OutsideMediaRoot")
    }
    const missing = await server.call((c) => c.videos.register({ payload: { path: "nope.mp4", rallies } }))
    expect(Either.isLeft(missing) && missing.left._tag).toBe("MediaNotFound")
    expect((await server.post("/api/videos", { path: "nope.mp4", rallies })).status).toBe(404)
  })

  it("answers malformed bodies with 400 and a one-line message naming the field", async () => {
    const raw = await fetch(`${server.url}/api/videos`, { method: "POST", body: "{not json" })
    expect(raw.status).toBe(400)
    expect(await raw.json()).toMatchObject({ _tag: "HttpApiDecodeError", message: expect.stringMatching(/^body: is not valid JSON/) })
    const cases: Array<[unknown, string]> = [
      [{ rallies }, "path"],
      [{ path: "match.mp4" }, "rallies"],
      [{ path: "match.mp4", rallies: [] }, "rallies"],
      [{ path: "match.mp4", rallies: [{ start: "soon", end: 2 }] }, "rallies[0].start"],
      [{ path: "match.mp4", rallies: [{ start: -1, end: 2 }] }, "rallies[0].start"],
      [{ path: 42, rallies }, "path"],
      [[1, 2], "body"]
    ]
    for (const [body, field] of cases) {
      const response = await server.post("/api/videos", body)
      expect(response.status, JSON.stringify(body)).toBe(400)
      expect(String(response.body["message"]), JSON.stringify(body)).toMatch(new RegExp(`^${field.replace(/[.[\]]/g, "\\$&")}`))
      expect(String(response.body["message"])).not.toContain("\n")
    }
    // Well-formed, but the rally runs past the end of the video.
    const late = await server.call((c) => c.videos.register({ payload: { path: "match.mp4", rallies: [{ start: 1, end: 60 }] } }))
    expect(Either.isLeft(late) && late.left._tag).toBe("InvalidRally")
    expect((await server.post("/api/videos", { path: "match.mp4", rallies: [{ start: 1, end: 60 }] })).status).toBe(400)
    const navigate = await server.post(`/api/videos/${id}/navigate`, { index: -1 })
    expect(navigate.status).toBe(400)
    expect(String(navigate.body["message"])).toMatch(/^index: /)
    // Both ways of giving the rallies at once.
    fs.writeFileSync(path.join(ws.mediaRoot, "both.json"), JSON.stringify({ rallies }))
    const both = await server.post("/api/videos", { path: "match.mp4", rallies, ralliesFile: "both.json" })
    expect(both.status).toBe(400)
    expect(String(both.body["message"])).toMatch(/^ralliesFile: .*either rallies or ralliesFile/)
  })

  it("answers a source with no video stream with 422 UnsupportedSource and a one-line message", async () => {
    const audio = path.join(ws.mediaRoot, "audio-only.m4a")
    const made = spawnSync("/usr/bin/ffmpeg", [
      "-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "aac", audio
    ])
    expect(made.status, String(made.stderr)).toBe(0)
    const response = await server.post("/api/videos", { path: "audio-only.m4a", rallies: [{ start: 0, end: 2 }] })
    expect(response.status).toBe(422)
    expect(response.body["_tag"]).toBe("UnsupportedSource")
    expect(String(response.body["message"])).toContain("no video stream")
    expect(String(response.body["message"])).not.toContain("\n")
  })

  it("answers unknown videos and rallies with 404 and their typed errors", async () => {
    expect((await server.json("/api/videos/nope/status")).status).toBe(404)
    expect((await fetch(`${server.url}/api/videos/nope/rallies/0/clip`)).status).toBe(404)
    expect((await fetch(clipUrl(99))).status).toBe(404)
    expect((await server.post(`/api/videos/${id}/navigate`, { index: 99 })).status).toBe(404)
    const status = await server.call((c) => c.videos.status({ path: { id: "nope" } }))
    expect(Either.isLeft(status) && status.left._tag).toBe("UnknownVideo")
    const rally = await server.call((c) => c.videos.navigate({ path: { id }, payload: { index: 99 } }))
    expect(Either.isLeft(rally) && rally.left._tag).toBe("RallyNotFound")
    if (Either.isLeft(rally)) expect(rally.left.message).toMatch(/valid indexes are 0 to 3/)
    const clip = await server.call((c) => c.clips.clip({ path: { id, n: 99 }, headers: {} }))
    expect(Either.isLeft(clip) && clip.left._tag).toBe("RallyNotFound")
  })

  it("navigate preloads the next rallies, and status reports each rally's state and the queue", async () => {
    const moved = await server.call((c) => c.videos.navigate({ path: { id }, payload: { index: 1 } }))
    expect(moved).toEqual(Either.right({ videoId: id, current: 1 }))
    const status = () => server.call((c) => c.videos.status({ path: { id } })).then(Either.getOrThrow)
    await until("rally 2 cached after navigate(1)", async () => (await status()).rallies[2]?.state === "cached")
    const reply = await status()
    expect(reply.current).toBe(1)
    expect(reply.preloadAhead).toBe(Config.defaults.preloadAhead)
    expect(reply.rallies.map((r) => r.index)).toEqual([0, 1, 2, 3])
    expect(reply.rallies.map((r) => ({ start: r.start, end: r.end }))).toEqual(rallies)
    expect(Object.keys(reply.queue).sort()).toEqual(["high", "low", "normal", "running"])
  })

  it("exposes Prometheus text at /metrics, with the cache's and the server's metrics", async () => {
    // Its own requests, counted from a reading taken before them: no earlier test's traffic is needed.
    const scrape = async () => {
      const response = await fetch(`${server.url}/metrics`)
      expect(response.status).toBe(200)
      expect(response.headers.get("content-type")).toContain("text/plain")
      return response.text()
    }
    const count = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? 0)
    const hits = /^rallycache_cache_hits\w*\{[^}]*\} (\d+)/m
    const partial = /^rallycache_http_clip_responses_total\{status="206",cache="hit"[^}]*\} (\d+)/m
    const unsatisfiable = /^rallycache_http_clip_responses_total\{status="416",cache="hit"[^}]*\} (\d+)/m
    await (await fetch(clipUrl(0))).arrayBuffer() // cached from here on
    const before = await scrape()
    expect((await fetch(clipUrl(0), { headers: { range: "bytes=0-9" } })).status).toBe(206)
    expect((await fetch(clipUrl(0), { headers: { range: "bytes=-0" } })).status).toBe(416)
    const after = await scrape()
    expect(after).toMatch(/^# TYPE rallycache_cache_hits\w* \w+$/m)
    expect(count(after, hits)).toBeGreaterThanOrEqual(count(before, hits) + 2)
    expect(count(after, partial)).toBe(count(before, partial) + 1)
    expect(count(after, unsatisfiable)).toBe(count(before, unsatisfiable) + 1)
  })

  it("serves the player page and its script", async () => {
    const page = await fetch(`${server.url}/`)
    expect(page.status).toBe(200)
    expect(page.headers.get("content-type")).toContain("text/html")
    expect(await page.text()).toContain("/player.js")
    const script = await fetch(`${server.url}/player.js`)
    expect(script.status).toBe(200)
    expect(script.headers.get("content-type")).toContain("javascript")
    expect(await script.text()).toContain("EventSource")
  })

  it("Range per RFC 9110: empty list elements and whitespace ignored, ranges coalesced, unsatisfiable ones dropped", async () => {
    const full = new Uint8Array(await (await fetch(clipUrl(0))).arrayBuffer())
    const size = full.length
    const ranged = async (range: string) => {
      const response = await fetch(clipUrl(0), { headers: { range } })
      return { response, body: new Uint8Array(await response.arrayBuffer()) }
    }
    const partial: Array<[string, number, number]> = [
      ["bytes=0-10,", 0, 10],
      ["bytes=,0-10", 0, 10],
      ["bytes= 0-10 , ,", 0, 10],
      ["bytes=0-10, 5-20", 0, 20],
      ["bytes=100-199, 0-99", 0, 199],
      [`bytes=0-9, ${size}-`, 0, 9],
      [`bytes=-100, ${size + 5}-${size + 9}`, size - 100, size - 1]
    ]
    for (const [range, start, end] of partial) {
      const { body, response } = await ranged(range)
      expect(response.status, range).toBe(206)
      expect(response.headers.get("content-range"), range).toBe(`bytes ${start}-${end}/${size}`)
      expect(sameBytes(body, full.subarray(start, end + 1)), range).toBe(true)
    }
    // Ranges far apart: one part cannot carry them, so the whole clip.
    const apart = await ranged(`bytes=0-9, ${size - 10}-`)
    expect(apart.response.status).toBe(200)
    expect(sameBytes(apart.body, full)).toBe(true)
    for (const range of [`bytes=${size}-, ${size + 1}-`, "bytes=,", "bytes=0-10,x"]) {
      const { body, response } = await ranged(range)
      expect(response.status, range).toBe(416)
      expect(response.headers.get("content-range"), range).toBe(`bytes */${size}`)
      expect(body.length).toBe(0)
    }
    // Another unit is ignored.
    expect((await ranged("items=0-5")).response.status).toBe(200)
    // Through the derived client: the typed 206 body and the typed 416.
    const part = await server.call((c) => c.clips.clip({ path: { id, n: 0 }, headers: { range: "bytes=0-99," } }))
    expect(Either.isRight(part) && part.right instanceof Uint8Array && sameBytes(part.right, full.subarray(0, 100))).toBe(true)
    const refused = await server.call((c) => c.clips.clip({ path: { id, n: 0 }, headers: { range: `bytes=${size}-` } }))
    expect(Either.isLeft(refused) && refused.left._tag).toBe("RangeNotSatisfiable")
  })

  it("lists the registered videos with their titles, and closes one", async () => {
    const extra = await server.register({ path: "match.mp4", rallies: rallies.slice(0, 2), id: "to-close", mode: "copy" })
    expect(extra).toMatchObject({ id: "to-close", title: "match.mp4", rallyCount: 2, mode: "copy" })
    const listed = Either.getOrThrow(await server.call((c) => c.videos.list()))
    const entry = listed.find((video) => video.id === "to-close")
    expect(entry).toEqual({ id: "to-close", title: "match.mp4", duration: extra.duration, rallyCount: 2, mode: "copy" })
    expect(entry!.duration).toBeGreaterThan(7)
    expect(listed.some((video) => video.id === id)).toBe(true)
    const read = Either.getOrThrow(await server.call((c) => c.videos.get({ path: { id: "to-close" } })))
    expect(read.rallies.map((r) => r.index)).toEqual([0, 1])

    expect((await server.call((c) => c.videos.close({ path: { id: "to-close" } })))._tag).toBe("Right")
    const after = Either.getOrThrow(await server.call((c) => c.videos.list()))
    expect(after.map((video) => video.id)).not.toContain("to-close")
    const gone = await server.call((c) => c.videos.status({ path: { id: "to-close" } }))
    expect(Either.isLeft(gone) && gone.left._tag).toBe("UnknownVideo")
    expect((await fetch(`${server.url}/api/videos/to-close/rallies/0/clip`)).status).toBe(404)
    const again = await fetch(`${server.url}/api/videos/to-close`, { method: "DELETE" })
    expect(again.status).toBe(404)
    expect(await again.json()).toMatchObject({ _tag: "UnknownVideo" })
  })

  it("lists the files under the media root and registers a video by choosing a file and a rallies file", async () => {
    fs.mkdirSync(path.join(ws.mediaRoot, "finals", ".hidden"), { recursive: true })
    fs.copyFileSync(ws.video, path.join(ws.mediaRoot, "finals", "final.mp4"))
    fs.writeFileSync(
      path.join(ws.mediaRoot, "finals", "final.json"),
      JSON.stringify({ videoId: "final", rallies: [{ start: "0:01", end: "0:02.5" }, { start: 3, end: 5 }] })
    )
    fs.writeFileSync(path.join(ws.mediaRoot, "finals", "broken.json"), "{\"rallies\": [{\"start\": 1}]}")
    fs.writeFileSync(path.join(ws.mediaRoot, "finals", ".hidden", "secret.mp4"), "x")
    fs.writeFileSync(path.join(ws.mediaRoot, "notes.txt"), "not media")
    fs.writeFileSync(path.join(ws.dir, "outside.json"), JSON.stringify({ rallies: [{ start: 0, end: 1 }] }))
    const linked = path.join(ws.mediaRoot, "outside-link.json")
    if (!fs.existsSync(linked)) fs.symlinkSync(path.join(ws.dir, "outside.json"), linked)

    const media = Either.getOrThrow(await server.call((c) => c.media.list()))
    const videos = media.videos.map((file) => file.path)
    expect(videos).toContain("match.mp4")
    expect(videos).toContain("finals/final.mp4")
    expect(videos.some((file) => file.includes("secret") || file.includes("link"))).toBe(false)
    expect(media.videos.find((file) => file.path === "match.mp4")!.sizeBytes).toBe(fs.statSync(ws.video).size)
    const files = new Map(media.ralliesFiles.map((file) => [file.path, file]))
    expect(files.get("finals/final.json")).toMatchObject({ rallyCount: 2, videoId: "final" })
    expect(files.get("finals/broken.json")?.problem).toMatch(/rallies\[0\]\.end: is missing/)
    expect(files.has("outside-link.json")).toBe(false)
    expect(media.truncated).toBe(false)

    const chosen = Either.getOrThrow(
      await server.call((c) => c.videos.register({ payload: { path: "finals/final.mp4", ralliesFile: "finals/final.json" } }))
    )
    expect(chosen).toMatchObject({ id: "final", title: "final.mp4", rallyCount: 2 })
    expect(chosen.rallies).toEqual([{ index: 0, start: 1, end: 2.5 }, { index: 1, start: 3, end: 5 }])
    expect((await fetch(`${server.url}/api/videos/final/rallies/1/clip`)).status).toBe(200)

    const broken = await server.post("/api/videos", { path: "finals/final.mp4", ralliesFile: "finals/broken.json" })
    expect(broken.status).toBe(400)
    expect(String(broken.body["message"])).toMatch(/^ralliesFile finals\/broken\.json: rallies\[0\]\.end: is missing/)
    expect(String(broken.body["message"])).not.toContain(ws.mediaRoot)
    const outside = await server.call((c) =>
      c.videos.register({ payload: { path: "match.mp4", ralliesFile: "outside-link.json" } })
    )
    expect(Either.isLeft(outside) && outside.left._tag).toBe("OutsideMediaRoot")
    const missing = await server.call((c) => c.videos.register({ payload: { path: "match.mp4", ralliesFile: "none.json" } }))
    expect(Either.isLeft(missing) && missing.left._tag).toBe("MediaNotFound")
  })

  it("serves /openapi.json listing every route of ViewerApi, and the documentation page at /docs", async () => {
    const response = await fetch(`${server.url}/openapi.json`)
    expect(response.status).toBe(200)
    expect(response.headers.get("content-type")).toContain("application/json")
    const spec = (await response.json()) as {
      openapi: string
      info: { title: string }
      paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
      components: { schemas: Record<string, unknown> }
    }
    expect(spec.openapi).toMatch(/^3\./)
    expect(spec.info.title).toBe("rallycache HTTP example")
    const routes: Array<string> = []
    for (const group of Object.values(ViewerApi.groups)) {
      for (const endpoint of Object.values(group.endpoints)) {
        routes.push(`${endpoint.method} ${endpoint.path.replace(/:(\w+)/g, "{$1}")}`)
      }
    }
    expect(routes).toEqual(expect.arrayContaining([
      "GET /api/videos",
      "POST /api/videos",
      "GET /api/videos/{id}",
      "DELETE /api/videos/{id}",
      "POST /api/videos/{id}/navigate",
      "GET /api/videos/{id}/status",
      "GET /api/videos/{id}/rallies/{n}/clip",
      "GET /api/media",
      "GET /api/events",
      "GET /metrics"
    ]))
    const documented = Object.entries(spec.paths).flatMap(([route, methods]) =>
      Object.keys(methods).map((method) => `${method.toUpperCase()} ${route}`)
    )
    expect(documented.sort()).toEqual([...routes].sort())
    const clip = spec.paths["/api/videos/{id}/rallies/{n}/clip"]!["get"]!
    expect(Object.keys(clip.responses)).toEqual(expect.arrayContaining(["200", "206", "304", "400", "404", "416", "504"]))
    expect(Object.keys(spec.paths["/api/videos"]!["post"]!.responses)).toEqual(
      expect.arrayContaining(["201", "400", "403", "404", "411", "413", "422"])
    )
    // Every reference resolves.
    const refs = JSON.stringify(spec).match(/"\$ref":"#\/components\/schemas\/[^"]+"/g) ?? []
    expect(refs.length).toBeGreaterThan(0)
    for (const ref of refs) {
      const name = decodeURIComponent(ref.slice('"$ref":"#/components/schemas/'.length, -1))
      expect(spec.components.schemas[name], ref).toBeDefined()
    }
    const docs = await fetch(`${server.url}/docs`)
    expect(docs.status).toBe(200)
    expect(docs.headers.get("content-type")).toContain("text/html")
    const html = await docs.text()
    expect(html).toContain("rallycache HTTP example")
    expect(html).not.toMatch(/<script[^>]+src="https?:/)
  })
})

describe("http-server preload window", () => {
  it("reports the preload window set by RALLYCACHE_PRELOAD_AHEAD in the status, as the page reads it", async () => {
    const ws = workspace(await sampleVideo({ duration: 8 }))
    const before = process.env["RALLYCACHE_PRELOAD_AHEAD"]
    process.env["RALLYCACHE_PRELOAD_AHEAD"] = "1"
    // The cache reads its settings once, when its layer is built.
    const server = await startServer({ cacheDir: ws.cacheDir, server: { mediaRoot: ws.mediaRoot } }).finally(() => {
      if (before === undefined) delete process.env["RALLYCACHE_PRELOAD_AHEAD"]
      else process.env["RALLYCACHE_PRELOAD_AHEAD"] = before
    })
    try {
      const { id } = await server.register({ path: "match.mp4", rallies: [{ start: 0, end: 2 }, { start: 3, end: 5 }] })
      const status = await server.call((c) => c.videos.status({ path: { id } })).then(Either.getOrThrow)
      expect(status.preloadAhead).toBe(1)
      const raw = await server.json(`/api/videos/${id}/status`)
      expect(raw.body["preloadAhead"]).toBe(1)
    } finally {
      await server.dispose()
      ws.cleanup()
    }
  })
})

describe("http-server clip timeout", () => {
  it("answers 504 when a miss is not exported within the server's clip timeout", async () => {
    const ws = workspace(await sampleVideo({ duration: 8 }))
    const server = await startServer({
      cacheDir: ws.cacheDir,
      cache: { mode: "accurate" },
      server: { mediaRoot: ws.mediaRoot, clipTimeout: "1 millis" }
    })
    try {
      const { id } = await server.register({ path: "match.mp4", rallies: [{ start: 0, end: 6 }] })
      const response = await server.json(`/api/videos/${id}/rallies/0/clip`)
      expect(response.status).toBe(504)
      expect(response.body["_tag"]).toBe("ClipTimeout")
      const typed = await server.call((c) => c.clips.clip({ path: { id, n: 0 }, headers: {} }))
      expect(Either.isLeft(typed) && typed.left._tag).toBe("ClipTimeout")
    } finally {
      await server.dispose()
      ws.cleanup()
    }
  })
})
