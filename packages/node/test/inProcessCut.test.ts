/**
 * The in-process mp4/mov cutter against ffmpeg's stream copy of the same
 * plan: for every mp4/mov case of the media corpus, in copy and exact mode,
 * the clip is written without ffmpeg (`cutBy: "in-process"`), presents the
 * same decoded video frames and the same decoded audio samples (per-frame
 * hashes of `ffmpeg -f framemd5`, every track), keeps the same streams,
 * languages, rotation, pixel format and colour tags, and passes the deep
 * check. Fragmented sources (the corpus's, and stream copies of corpus
 * sources with `frag_keyframe+empty_moov`, several audio tracks among them)
 * are opened and cut in process the same way; a malformed or truncated one
 * is refused cleanly.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Domain, Exporter, Metrics, RallyCache } from "@rallycache/core"
import { Chunk, Effect, Exit, FastCheck, Fiber, Schema, Stream } from "effect"
import { ManagedRuntime } from "effect"
import * as NodeChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { cases, type CutCase, encoders, generateArgs, sharedSource, sourcesDir } from "./corpus/corpus.js"
import { facts } from "./corpus/inspect.js"
import { FfmpegResolver, NodeRallyCache } from "../src/index.js"
import { probeSource } from "../src/internal/media/ffprobe.js"
import { cutMp4 } from "../src/internal/media/mp4Cut.js"
import { mp4Probe } from "../src/internal/media/mp4Probe.js"
import { Mp4Unsupported } from "../src/internal/media/mp4Tracks.js"
import { cutAndVerify, exporterLayer, streamHashes } from "./fixtures.js"

const videoId = Schema.decodeSync(Domain.VideoId)("in-process")
const inProcess = ManagedRuntime.make(exporterLayer())
const viaFfmpeg = ManagedRuntime.make(exporterLayer({ inProcess: false }))

/** The corpus cases in mp4/mov, a source derived from another after it. */
const mp4Cases = cases.filter((c): c is CutCase => c._tag === "Cut" && /\.(mp4|mov|m4v)$/.test(c.file))
  .sort((a, b) => Number(a.derivedFrom !== undefined) - Number(b.derivedFrom !== undefined))
/**
 * Corpus sources stream-copied into fragmented mp4 as recorders write it (a fragment per keyframe, empty moov):
 * two audio tracks with languages, rotation, HDR, and one with a sidx indexing the fragments.
 */
const fragmentedCopies: ReadonlyArray<CutCase & { readonly movflags: string }> = [
  ["h264-aac.mp4", "", "frag_keyframe+empty_moov"],
  ["h264-2audio.mp4", "", "frag_keyframe+empty_moov"],
  ["h264-rot90.mp4", "", "frag_keyframe+empty_moov"],
  ["hevc10-hvc1.mp4", "", "frag_keyframe+empty_moov"],
  ["h264-aac.mp4", "sidx", "frag_keyframe+empty_moov+default_base_moof+global_sidx"]
].flatMap(([file, tag, movflags]) =>
  mp4Cases.filter((c) => c.file === file).map((c) => ({
    ...c,
    name: `${c.name}, fragmented${tag === "" ? "" : ` with a ${tag}`}`,
    file: c.file.replace(".mp4", `-fragmented${tag === "" ? "" : `-${tag}`}.mp4`),
    derivedFrom: c.file,
    movflags: movflags!
  }))
)
const fragmented = fragmentedCopies[0]!.file

/** Clips and the files a test breaks on purpose; the sources are the corpus's, shared with its other test files. */
let dir = ""
const source = (file: string) => NodePath.join(sourcesDir, file)
const skipped = new Set<string>()

beforeAll(async () => {
  dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-inprocess-"))
  const available = await inProcess.runPromise(encoders)
  const make = async (c: CutCase) => {
    if (c.encoders.some((e) => !available.has(e))) {
      skipped.add(c.name)
      return
    }
    await inProcess.runPromise(sharedSource(c.file, (path) => generateArgs(c, path, sourcesDir)))
  }
  const base = mp4Cases.filter((c) => c.derivedFrom === undefined)
  for (let i = 0; i < base.length; i += 2) await Promise.all(base.slice(i, i + 2).map(make))
  for (const c of mp4Cases.filter((c) => c.derivedFrom !== undefined)) await make(c)
  for (const c of fragmentedCopies) {
    if (mp4Cases.some((b) => b.file === c.derivedFrom && skipped.has(b.name))) skipped.add(c.name)
    else {
      await inProcess.runPromise(
        sharedSource(c.file, (path) => ["-i", source(c.derivedFrom!), "-map", "0", "-c", "copy", "-movflags", c.movflags, path])
      )
    }
  }
}, 180_000)

afterAll(async () => {
  await inProcess.dispose()
  await viaFfmpeg.dispose()
  if (dir !== "") NodeFs.rmSync(dir, { recursive: true, force: true })
})

/** Cuts `source` (a path) into this file's folder. */
const cut = (runtime: typeof inProcess, path: string, rally: CutCase["rally"], mode: Domain.ExportMode, tag: string) =>
  cutAndVerify(runtime, { dir, videoId, source: path, rally, mode, tag, extension: "mp4" })


describe("opening an mp4/mov without ffprobe", () => {
  it("reads what ffprobe reads: duration, start, streams, frame rate, keyframes", async () => {
    for (const c of [...mp4Cases, ...fragmentedCopies]) {
      if (skipped.has(c.name)) continue
      const path = source(c.file)
      const mine = mp4Probe(path, "f")
      // ProRes (its packet list is not modelled in process) is opened by ffprobe.
      if (/prores/.test(c.file)) {
        expect(mine, c.name).toBeUndefined()
        continue
      }
      expect(mine, c.name).toBeDefined()
      const theirs = await inProcess.runPromise(Effect.gen(function*() {
        const { ffprobe } = yield* FfmpegResolver.Ffmpeg
        return yield* probeSource(ffprobe.path, path, "f")
      }))
      const say = `${c.name}`
      expect(mine!.layout, say).toEqual(theirs.layout)
      expect(mine!.format, say).toBe(theirs.format)
      expect(mine!.startTime, say).toBeCloseTo(theirs.startTime, 5)
      expect(mine!.info.duration, say).toBeCloseTo(theirs.info.duration, 3)
      expect(mine!.info.frameRate ?? 0, say).toBeCloseTo(theirs.info.frameRate ?? 0, 2)
      expect([mine!.info.hasVideo, mine!.info.hasAudio], say).toEqual([theirs.info.hasVideo, theirs.info.hasAudio])
      // ffprobe's probe reads the first 10 s only (null with one keyframe there); the tables list them all.
      if (theirs.info.keyframeInterval !== null) expect(mine!.info.keyframeInterval, say).toBe(theirs.info.keyframeInterval)
      expect(mine!.keyframes?.length, say).toBeGreaterThan(0)
    }
  }, 120_000)
})

describe("in-process mp4/mov cuts", () => {
  for (const c of [...mp4Cases, ...fragmentedCopies]) {
    for (const mode of ["copy", "exact"] as const) {
      it(`${c.name}, ${mode}: the frames and audio samples of ffmpeg's stream copy`, async () => {
        if (skipped.has(c.name)) {
          console.warn(`in-process: ${c.name} skipped, the installed ffmpeg cannot make it`)
          return
        }
        const [mine, theirs] = await Promise.all([
          cut(inProcess, source(c.file), c.rally, mode, "in-process"),
          cut(viaFfmpeg, source(c.file), c.rally, mode, "ffmpeg")
        ])
        expect(theirs.result.cutBy).toBe("ffmpeg")
        // Only what ffmpeg itself stream-copies into mp4/mov is the in-process cutter's.
        const copied = (theirs.result.fellBack?.to ?? mode) !== "accurate" &&
          (theirs.result.container === undefined || String(theirs.result.container) === "mov")
        if (!copied) {
          expect(mine.result.cutBy).toBe("ffmpeg")
          return
        }
        expect(mine.result.inProcessRefused).toBeUndefined()
        expect(mine.result.cutBy).toBe("in-process")
        expect(mine.result.fellBack).toEqual(theirs.result.fellBack)
        expect({ ...mine.result, sizeBytes: 0, cutBy: "" }).toEqual({ ...theirs.result, sizeBytes: 0, cutBy: "" })
        expect(mine.verified).toEqual({ _tag: "Valid" })

        const [mineFacts, theirFacts] = await Promise.all([
          inProcess.runPromise(facts(mine.out)),
          inProcess.runPromise(facts(theirs.out))
        ])
        expect(mineFacts.streams).toEqual(theirFacts.streams)
        const maps = ["0:v:0", ...Array.from({ length: c.audioTracks }, (_, a) => `0:a:${a}`)]
        const [ours, ffmpegs] = await Promise.all([streamHashes(mine.out, maps), streamHashes(theirs.out, maps)])
        for (const [i, map] of maps.entries()) {
          expect(ours[i]!.length, map).toBeGreaterThan(0)
          expect(ours[i], map).toEqual(ffmpegs[i])
        }
      }, 60_000)
    }
  }

  it.skipIf(process.getuid?.() !== 0)("a disk that fills during an in-process cut: no space left, one line, nothing left", async () => {
    const rally = { start: 0.5, end: 3.5 }
    const whole = await cut(inProcess, source("h264-aac.mp4"), rally, "copy", "roomy")
    expect(whole.result.cutBy).toBe("in-process")
    const mount = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-inprocess-full-"))
    const size = (Math.floor(whole.result.sizeBytes / 4096) - 2) * 4096
    const mounted = NodeChildProcess.spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mount])
    try {
      if (mounted.status !== 0) return
      const exit = await inProcess.runPromiseExit(Effect.gen(function*() {
        const exporter = yield* Exporter.Exporter
        const path = source("h264-aac.mp4")
        const info = yield* exporter.probe(path)
        return yield* exporter.export({
          source: new Domain.VideoSource({ id: videoId, path, fingerprint: info.fingerprint }),
          rally: new Domain.Rally({ index: 0, ...rally }),
          mode: "copy",
          priority: "high",
          tempPath: NodePath.join(mount, "tmp", "clip.part"),
          outputPath: NodePath.join(mount, "clips", "clip.mp4")
        })
      }))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit) && exit.cause._tag === "Fail" && exit.cause.error._tag === "ExportFailed") {
        expect([exit.cause.error.reason, exit.cause.error.detail, exit.cause.error.transient])
          .toEqual(["no-space", "no space left on device", false])
      } else {
        expect.fail(`expected ExportFailed, got ${String(exit)}`)
      }
      const left = NodeFs.readdirSync(mount, { recursive: true, encoding: "utf8" })
      expect(left.filter((name) => name.endsWith(".part") || name.endsWith(".mp4"))).toEqual([])
    } finally {
      NodeChildProcess.spawnSync("umount", [mount])
      NodeFs.rmSync(mount, { recursive: true, force: true })
    }
  }, 60_000)

  it("refuses a fragmented mp4 whose track run is malformed, and ffmpeg cuts or refuses it with a typed error", async () => {
    const bytes = NodeFs.readFileSync(source(fragmented))
    // The second fragment's first track run claims far more samples than it holds.
    const second = bytes.indexOf("moof", bytes.indexOf("moof") + 4)
    const trun = bytes.indexOf("trun", second)
    const broken = NodePath.join(dir, "broken-trun-fragmented.mp4")
    const copy = Buffer.from(bytes)
    copy.writeUInt32BE(0x0fffffff, trun + 8)
    NodeFs.writeFileSync(broken, copy)
    expect(mp4Probe(broken, "f")).toBeUndefined()
    await expect(cutMp4(broken, NodePath.join(dir, "broken.mp4"), { keyframe: 0, present: 0, presented: 1, startTime: 0 }))
      .rejects.toBeInstanceOf(Mp4Unsupported)
    expect(NodeFs.existsSync(NodePath.join(dir, "broken.mp4"))).toBe(false)

    const exit = await inProcess.runPromiseExit(Effect.gen(function*() {
      const exporter = yield* Exporter.Exporter
      const info = yield* exporter.probe(broken)
      return yield* exporter.export({
        source: new Domain.VideoSource({ id: videoId, path: broken, fingerprint: info.fingerprint }),
        rally: new Domain.Rally({ index: 0, start: 0.5, end: 1.5 }),
        mode: "exact",
        priority: "high",
        tempPath: NodePath.join(dir, "tmp", "broken.part"),
        outputPath: NodePath.join(dir, "clips", "broken.mp4")
      })
    }))
    if (Exit.isSuccess(exit)) {
      expect(exit.value.cutBy).toBe("ffmpeg")
      expect(exit.value.inProcessRefused).toMatch(/trun/)
    } else {
      // A typed error (ffmpeg's own reading of the broken file), never a defect.
      expect(exit.cause._tag).toBe("Fail")
    }
  }, 60_000)

  it("a cache opening a fragmented recording cuts its rallies in process (default exact mode): no refusal event, counted as in-process", async () => {
    const cacheDir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-inprocess-cache-"))
    try {
      const program = Effect.gen(function*() {
        const cache = yield* RallyCache.RallyCache
        let ready = 0
        const events = yield* cache.events.pipe(
          Stream.takeUntil((e) => e._tag === "ClipReady" && ++ready === 2),
          Stream.runCollect,
          Effect.fork
        )
        // The forked fiber subscribes before it first waits for an event.
        yield* Effect.yieldNow()
        const video = yield* cache.openVideo({
          path: source("h264-aac-frag.mp4"),
          rallies: [{ start: 0.5, end: 1.3 }, { start: 1.34, end: 2.5 }]
        })
        const clips = [yield* cache.getClip(video.source.id, 0), yield* cache.getClip(video.source.id, 1)]
        const seen = Chunk.toReadonlyArray(yield* Fiber.join(events)).map((e) => e._tag)
        const snapshot = yield* (yield* Metrics.Metrics).snapshot
        return { clips, snapshot, seen }
      })
      const { clips, seen, snapshot } = await Effect.runPromise(
        program.pipe(Effect.provide(NodeRallyCache.layer({ cacheDir, maxBytes: 64 * 1024 * 1024 })), Effect.scoped)
      )
      expect(clips.map((c) => c.sizeBytes > 0)).toEqual([true, true])
      expect([snapshot.inProcessCuts, snapshot.inProcessRefusals ?? 0]).toEqual([2, 0])
      expect(seen.filter((tag) => tag === "ClipReady")).toHaveLength(2)
      expect(seen).not.toContain("InProcessCutRefused")
    } finally {
      NodeFs.rmSync(cacheDir, { recursive: true, force: true })
    }
  }, 60_000)

  it("a fragmented mp4 with corrupted bytes in its fragments is opened or left to ffprobe, cut or refused before writing", async () => {
    const bytes = NodeFs.readFileSync(source(fragmented))
    const fragments = bytes.indexOf("moof") - 4
    const path = NodePath.join(dir, "corrupt-fragmented.mp4")
    const out = NodePath.join(dir, "corrupt.mp4")
    const change = FastCheck.tuple(FastCheck.integer({ min: fragments, max: bytes.length - 1 }), FastCheck.integer({ min: 0, max: 255 }))
    await FastCheck.assert(
      FastCheck.asyncProperty(FastCheck.array(change, { minLength: 1, maxLength: 3 }), async (changes) => {
        const copy = Buffer.from(bytes)
        for (const [at, value] of changes) copy[at] = value
        NodeFs.writeFileSync(path, copy)
        NodeFs.rmSync(out, { force: true })
        const entry = mp4Probe(path, "f")
        try {
          await cutMp4(path, out, { keyframe: 1, present: 1.32, presented: 1.1, startTime: entry?.startTime ?? 0 }, undefined, entry)
          expect(NodeFs.statSync(out).size).toBeGreaterThan(0)
        } catch (error) {
          expect(error).toBeInstanceOf(Mp4Unsupported)
          expect(NodeFs.existsSync(out)).toBe(false)
        }
      }),
      { numRuns: 300 }
    )
  }, 60_000)

  it("cuts a fragmented mp4 cut short in process up to its last whole fragment, and refuses rallies past it", async () => {
    const bytes = NodeFs.readFileSync(source(fragmented))
    const short = NodePath.join(dir, "short-fragmented.mp4")
    // Cut inside the last fragment's media data (its keyframe first): its moof is whole, its samples are not there.
    NodeFs.writeFileSync(short, bytes.subarray(0, bytes.lastIndexOf("mdat") + 100))
    const entry = mp4Probe(short, "f")
    expect(entry?.truncated).toBeDefined()
    const { result, verified } = await cut(inProcess, short, { start: 0.5, end: 1.2 }, "exact", "short")
    expect(result.cutBy).toBe("in-process")
    expect(verified).toEqual({ _tag: "Valid" })
    const past = await inProcess.runPromiseExit(Effect.gen(function*() {
      const exporter = yield* Exporter.Exporter
      const info = yield* exporter.probe(short)
      return yield* exporter.export({
        source: new Domain.VideoSource({ id: videoId, path: short, fingerprint: info.fingerprint }),
        rally: new Domain.Rally({ index: 0, start: 3, end: 3.9 }),
        mode: "exact",
        priority: "high",
        tempPath: NodePath.join(dir, "tmp", "short.part"),
        outputPath: NodePath.join(dir, "clips", "short-past.mp4")
      })
    }))
    expect(Exit.isFailure(past) && past.cause._tag === "Fail").toBe(true)
  }, 60_000)
})
