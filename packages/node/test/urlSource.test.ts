/**
 * Sources given by URL: a loopback HTTP server with Range support serves the
 * generated test video; the engine opens it by URL (fingerprint from the
 * server's ETag, Last-Modified and length), cuts it with ffmpeg in exact and
 * copy mode (the in-process cutter refuses URLs, saying why), and the clips
 * decode and start where the same cuts of the local file start. A 404, a
 * closed port and a text body are typed errors with one-line messages, an
 * object replaced under the same URL is refused as changed, and nothing is
 * written for any of them.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { RallyCache as Core } from "@rallycache/core"
import { Domain, Exporter } from "@rallycache/core"
import { Effect, Exit, ManagedRuntime, Schema } from "effect"
import * as NodeFs from "node:fs"
import * as NodeHttp from "node:http"
import type { AddressInfo } from "node:net"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { Clip, NodeRallyCache } from "../src/index.js"
import { exporterLayer, frameMd5, Live, silentVideo, testVideo } from "./fixtures.js"

const runtime = ManagedRuntime.make(exporterLayer())
const sampleRuntime = ManagedRuntime.make(Live)

let dir = ""
let local = ""
let server: NodeHttp.Server
let base = ""
let closedPort = 0
/** What `/replaced.mp4` serves: the match, then another video under the same URL. */
let replaced = ""
const seen: Array<{ method: string; range: string | undefined }> = []

/** A static file server with HEAD, ETag, Last-Modified and single byte ranges, as object stores answer. */
const serve = (source: string) =>
  NodeHttp.createServer((req, res) => {
    let file = source
    seen.push({ method: req.method ?? "", range: req.headers.range })
    if (req.url === "/notes.txt") {
      res.writeHead(200, { "content-type": "text/plain", "content-length": 22 })
      res.end(req.method === "HEAD" ? undefined : "these are not pictures")
      return
    }
    // Signed for GET only, as a presigned S3 URL is: HEAD is refused.
    if (req.url?.startsWith("/signed.mp4?") === true && req.method === "HEAD") {
      res.writeHead(403, { "content-length": 0 })
      res.end()
      return
    }
    if (req.url?.startsWith("/signed.mp4?") === true) req.url = "/match.mp4"
    if (req.url === "/replaced.mp4") file = replaced
    else if (req.url !== "/match.mp4") {
      res.writeHead(404, { "content-length": 0 })
      res.end()
      return
    }
    const stat = NodeFs.statSync(file)
    const headers = {
      "content-type": "video/mp4",
      "accept-ranges": "bytes",
      etag: `"${stat.size}-${stat.mtimeMs}"`,
      "last-modified": stat.mtime.toUTCString()
    }
    const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? "")
    let start = 0
    let end = stat.size - 1
    if (range !== null) {
      start = range[1] === "" ? stat.size - Number(range[2]) : Number(range[1])
      end = range[1] !== "" && range[2] !== "" ? Math.min(Number(range[2]), end) : end
      if (start > end) {
        res.writeHead(416, { "content-range": `bytes */${stat.size}` })
        res.end()
        return
      }
      res.writeHead(206, { ...headers, "content-range": `bytes ${start}-${end}/${stat.size}`, "content-length": end - start + 1 })
    } else {
      res.writeHead(200, { ...headers, "content-length": stat.size })
    }
    if (req.method === "HEAD") {
      res.end()
      return
    }
    const stream = NodeFs.createReadStream(file, { start, end })
    stream.pipe(res)
    res.on("close", () => stream.destroy())
  })

const listen = (s: NodeHttp.Server) =>
  new Promise<number>((resolve) => s.listen(0, "127.0.0.1", () => resolve((s.address() as AddressInfo).port)))

beforeAll(async () => {
  dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-url-"))
  local = await sampleRuntime.runPromise(testVideo)
  replaced = local
  server = serve(local)
  base = `http://127.0.0.1:${await listen(server)}`
  // A port that was just free and is closed again: nothing answers there.
  const closed = NodeHttp.createServer()
  closedPort = await listen(closed)
  await new Promise<void>((resolve) => closed.close(() => resolve()))
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  await runtime.dispose()
  await sampleRuntime.dispose()
  NodeFs.rmSync(dir, { recursive: true, force: true })
})

const videoId = Schema.decodeSync(Domain.VideoId)("by-url")
const rally = Schema.decodeSync(Domain.Rally)({ index: 0, start: 2.3, end: 4.1 })

describe("a source by URL", () => {
  it("is probed from the server: the same streams and duration as the file, a fingerprint from its headers", async () => {
    const url = `${base}/match.mp4`
    const [remote, file] = await runtime.runPromise(Effect.all([Clip.probe(url), Clip.probe(local)]))
    expect(remote.duration).toBeCloseTo(file.duration, 2)
    expect(remote.hasAudio).toBe(file.hasAudio)
    expect(remote.keyframeInterval).toBeCloseTo(file.keyframeInterval ?? 0, 2)
    expect(remote.fingerprint).toMatch(new RegExp(`^s${NodeFs.statSync(local).size}-u[0-9a-f]{16}$`))
    expect(seen.some((r) => r.method === "HEAD")).toBe(true)
  })

  it("is opened by a one-byte ranged GET where HEAD is refused, as presigned URLs do", async () => {
    seen.length = 0
    const [signed, plain] = await runtime.runPromise(
      Effect.all([Clip.probe(`${base}/signed.mp4?X-Amz-Signature=abc`), Clip.probe(`${base}/match.mp4`)])
    )
    expect(seen.some((r) => r.method === "GET" && r.range === "bytes=0-0")).toBe(true)
    expect(signed.fingerprint).toBe(plain.fingerprint)
    expect(signed.duration).toBe(plain.duration)
  })

  for (const mode of ["exact", "copy"] as const) {
    it(`is cut by ffmpeg in ${mode} mode, starting where the cut of the local file starts`, async () => {
      seen.length = 0
      const fromUrl = NodePath.join(dir, `url-${mode}.mp4`)
      const fromFile = NodePath.join(dir, `file-${mode}.mp4`)
      const [remote, file] = await runtime.runPromise(Effect.all([
        Clip.exportRallyTo(`${base}/match.mp4`, rally, fromUrl, { mode }),
        Clip.exportRallyTo(local, rally, fromFile, { mode })
      ]))
      // ffmpeg read the source with ranged requests.
      expect(seen.some((r) => r.method === "GET" && r.range !== undefined)).toBe(true)
      expect(remote.cutBy).toBe("ffmpeg")
      expect(remote.inProcessRefused).toMatch(/URL/)
      expect(remote.clipStart).toBeCloseTo(file.clipStart, 3)
      expect(remote.clipEnd).toBeCloseTo(file.clipEnd, 3)
      expect(remote.firstFrame ?? remote.clipStart).toBeCloseTo(file.firstFrame ?? file.clipStart, 3)
      const [a, b] = await sampleRuntime.runPromise(Effect.all([frameMd5(fromUrl), frameMd5(fromFile)]))
      expect(a).toMatch(/^MD5=[0-9a-f]{32}$/)
      expect(a).toBe(b)
    })
  }

  it.live("opens in the engine by URL and serves a clip that decodes and starts at the rally", () =>
    Effect.gen(function*() {
      const cache = yield* Core.RallyCache
      const video = yield* cache.openVideo({ path: `${base}/match.mp4`, rallies: [{ start: 2.3, end: 4.1 }] })
      const clip = yield* cache.getClip(video.source.id, 0)
      expect(clip.cached).toBe(false)
      expect(clip.clipStart).toBeLessThanOrEqual(2.3)
      // The in-process cutter refused the URL through its usual event and metric; ffmpeg cut it.
      const stats = yield* cache.stats
      expect(stats.metrics.inProcessRefusals).toBe(1)
      expect(stats.metrics.inProcessCuts ?? 0).toBe(0)
      const fromFile = NodePath.join(dir, "engine-file.mp4")
      yield* Clip.exportRallyTo(local, rally, fromFile, { mode: "exact" })
      const [a, b] = yield* Effect.all([frameMd5(clip.path), frameMd5(fromFile)])
      expect(a).toMatch(/^MD5=/)
      expect(a).toBe(b)
    }).pipe(
      Effect.provide(
        NodeRallyCache.layer({ cacheDir: NodePath.join(dir, "cache"), mode: "exact", maxBytes: 50 * 1024 * 1024 })
      )
    ), 60_000)

  it("refuses to cut a URL whose object was replaced since it was opened, writing nothing", async () => {
    const url = `${base}/replaced.mp4`
    const out = NodePath.join(dir, "replaced", "clip.mp4")
    const info = await runtime.runPromise(Clip.probe(url))
    replaced = await sampleRuntime.runPromise(silentVideo)
    const exit = await runtime.runPromiseExit(Effect.flatMap(Exporter.Exporter, (exporter) =>
      exporter.export({
        source: new Domain.VideoSource({ id: videoId, path: url, fingerprint: info.fingerprint }),
        rally,
        mode: "copy",
        priority: "high",
        tempPath: `${out}.tmp`,
        outputPath: out
      })))
    expect(Exit.isFailure(exit) && exit.cause._tag === "Fail" ? exit.cause.error.message : "no failure").toMatch(
      /the resource changed since it was opened \(open the video again\)/
    )
    expect(NodeFs.existsSync(NodePath.dirname(out)) ? NodeFs.readdirSync(NodePath.dirname(out)) : []).toEqual([])
  })

  const failure = async (url: string) => {
    const out = NodePath.join(dir, "bad", "clip.mp4")
    NodeFs.mkdirSync(NodePath.dirname(out), { recursive: true })
    const exit = await runtime.runPromiseExit(Clip.exportRallyTo(url, rally, out))
    expect(NodeFs.readdirSync(NodePath.dirname(out))).toEqual([])
    if (!Exit.isFailure(exit) || exit.cause._tag !== "Fail") throw new Error(`expected a typed failure for ${url}`)
    const error = exit.cause.error
    expect(error.message).not.toContain("\n")
    return error
  }

  it("answers a 404 with SourceNotFound", async () => {
    const error = await failure(`${base}/missing.mp4?X-Amz-Signature=secret`)
    expect(error._tag).toBe("SourceNotFound")
    expect(error.message).toContain(`${base}/missing.mp4`)
    expect(error.message).not.toContain("secret")
    expect(error.message).toMatch(/\(check the URL\)$/)
  })

  it("answers a server that is not there with SourceUnreadable", async () => {
    const error = await failure(`http://127.0.0.1:${closedPort}/match.mp4`)
    expect(error._tag).toBe("SourceUnreadable")
    expect(error.message).toMatch(/cannot reach the server \(ECONNREFUSED\) \(check that it is a readable URL\)$/)
  })

  it("answers a body that is not a video with NotMediaFile", async () => {
    const error = await failure(`${base}/notes.txt`)
    expect(error._tag).toBe("NotMediaFile")
  })
})
