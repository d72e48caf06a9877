/**
 * The in-process mp4/mov cutter against ffmpeg's stream copy of the same
 * plan: for every mp4/mov case of the media corpus, in copy and exact mode,
 * the clip is written without ffmpeg (`cutBy: "in-process"`), presents the
 * same decoded video frames and the same decoded audio samples (per-frame
 * hashes of `ffmpeg -f framemd5`, every track), keeps the same streams,
 * languages, rotation, pixel format and colour tags, and passes the deep
 * check. Fragmented sources are refused and cut by ffmpeg, saying why.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Domain, Exporter } from "@rallycache/core"
import { Effect, Exit, Schema } from "effect"
import { ManagedRuntime } from "effect"
import * as NodeChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { cases, type CutCase, generateArgs } from "./corpus/corpus.js"
import { facts } from "./corpus/inspect.js"
import { FfmpegResolver } from "../src/index.js"
import { probeSource } from "../src/internal/media/ffprobe.js"
import { mp4Probe } from "../src/internal/media/mp4Probe.js"
import { exporterLayer } from "./fixtures.js"

const videoId = Schema.decodeSync(Domain.VideoId)("in-process")
const inProcess = ManagedRuntime.make(exporterLayer())
const viaFfmpeg = ManagedRuntime.make(exporterLayer({ inProcess: false }))

/** The corpus cases in mp4/mov, a source derived from another after it. */
const mp4Cases = cases.filter((c): c is CutCase => c._tag === "Cut" && /\.(mp4|mov|m4v)$/.test(c.file))
  .sort((a, b) => Number(a.derivedFrom !== undefined) - Number(b.derivedFrom !== undefined))
const fragmented = "h264-aac-fragmented.mp4"
/** Sources the in-process cutter refuses (ffmpeg cuts them). */
const refusedLayout = /frag/

const ffmpeg = (args: ReadonlyArray<string>) =>
  new Promise<string>((resolve, reject) =>
    NodeChildProcess.execFile(
      "ffmpeg",
      ["-nostdin", "-hide_banner", "-v", "error", ...args],
      { maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => error === null ? resolve(stdout) : reject(new Error(`${error.message} ${stderr}`))
    )
  )

let dir = ""
const skipped = new Set<string>()

beforeAll(async () => {
  dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-inprocess-"))
  const encoders = await ffmpeg(["-encoders"])
  const make = async (c: CutCase) => {
    if (c.encoders.some((e) => !new RegExp(`\\s${e}\\s`).test(encoders))) {
      skipped.add(c.name)
      return
    }
    await ffmpeg(["-y", ...generateArgs(c, NodePath.join(dir, c.file), dir)])
  }
  const base = mp4Cases.filter((c) => c.derivedFrom === undefined)
  for (let i = 0; i < base.length; i += 2) await Promise.all(base.slice(i, i + 2).map(make))
  for (const c of mp4Cases.filter((c) => c.derivedFrom !== undefined)) await make(c)
  await ffmpeg([
    "-y",
    "-i",
    NodePath.join(dir, "h264-aac.mp4"),
    "-c",
    "copy",
    "-movflags",
    "frag_keyframe+empty_moov",
    NodePath.join(dir, fragmented)
  ])
}, 180_000)

afterAll(async () => {
  await inProcess.dispose()
  await viaFfmpeg.dispose()
  if (dir !== "") NodeFs.rmSync(dir, { recursive: true, force: true })
})

const cut = (runtime: typeof inProcess, file: string, rally: CutCase["rally"], mode: Domain.ExportMode, tag: string) =>
  runtime.runPromise(Effect.gen(function*() {
    const exporter = yield* Exporter.Exporter
    const source = NodePath.join(dir, file)
    const info = yield* exporter.probe(source)
    const out = NodePath.join(dir, "clips", `${file}.${mode}.${tag}.mp4`)
    const result = yield* exporter.export({
      source: new Domain.VideoSource({ id: videoId, path: source, fingerprint: info.fingerprint }),
      rally: new Domain.Rally({ index: 0, ...rally }),
      mode,
      priority: "high",
      tempPath: NodePath.join(dir, "tmp", `${file}.${mode}.${tag}.part`),
      outputPath: out
    })
    const verified = yield* exporter.verify(out)
    return { out, result, verified }
  }))

/** Per-frame hashes of the decoded stream (edit lists applied, as a player shows it); no timestamps. */
const hashes = async (path: string, map: string) =>
  (await ffmpeg(["-i", path, "-map", map, "-f", "framemd5", "-"]))
    .split("\n")
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => line.split(",").slice(3).join(",").trim())

describe("opening an mp4/mov without ffprobe", () => {
  it("reads what ffprobe reads: duration, start, streams, frame rate, keyframes", async () => {
    for (const c of mp4Cases) {
      if (skipped.has(c.name)) continue
      const path = NodePath.join(dir, c.file)
      const mine = mp4Probe(path, "f")
      // ProRes (its packet list is not modelled in process) and fragments are opened by ffprobe.
      if (/prores|frag/.test(c.file)) {
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
  for (const c of mp4Cases) {
    for (const mode of ["copy", "exact"] as const) {
      it(`${c.name}, ${mode}: the frames and audio samples of ffmpeg's stream copy`, async () => {
        if (skipped.has(c.name)) {
          console.warn(`in-process: ${c.name} skipped, the installed ffmpeg cannot make it`)
          return
        }
        const [mine, theirs] = await Promise.all([
          cut(inProcess, c.file, c.rally, mode, "in-process"),
          cut(viaFfmpeg, c.file, c.rally, mode, "ffmpeg")
        ])
        expect(theirs.result.cutBy).toBe("ffmpeg")
        // Only what ffmpeg itself stream-copies into mp4/mov is the in-process cutter's.
        const copied = (theirs.result.fellBack?.to ?? mode) !== "accurate" &&
          (theirs.result.container === undefined || String(theirs.result.container) === "mov")
        if (!copied) {
          expect(mine.result.cutBy).toBe("ffmpeg")
          return
        }
        if (refusedLayout.test(c.file)) {
          expect(mine.result.cutBy).toBe("ffmpeg")
          expect(mine.result.inProcessRefused).toMatch(/fragmented/)
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
        for (const map of ["0:v:0", ...Array.from({ length: c.audioTracks }, (_, a) => `0:a:${a}`)]) {
          const [a, b] = await Promise.all([hashes(mine.out, map), hashes(theirs.out, map)])
          expect(a.length, map).toBeGreaterThan(0)
          expect(a, map).toEqual(b)
        }
      }, 60_000)
    }
  }

  it.skipIf(process.getuid?.() !== 0)("a disk that fills during an in-process cut: no space left, one line, nothing left", async () => {
    const rally = { start: 0.5, end: 3.5 }
    const whole = await cut(inProcess, "h264-aac.mp4", rally, "copy", "roomy")
    expect(whole.result.cutBy).toBe("in-process")
    const mount = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-inprocess-full-"))
    const size = (Math.floor(whole.result.sizeBytes / 4096) - 2) * 4096
    const mounted = NodeChildProcess.spawnSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", mount])
    try {
      if (mounted.status !== 0) return
      const exit = await inProcess.runPromiseExit(Effect.gen(function*() {
        const exporter = yield* Exporter.Exporter
        const source = NodePath.join(dir, "h264-aac.mp4")
        const info = yield* exporter.probe(source)
        return yield* exporter.export({
          source: new Domain.VideoSource({ id: videoId, path: source, fingerprint: info.fingerprint }),
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

  it("refuses a fragmented mp4 and lets ffmpeg cut it, saying why", async () => {
    const rally = { start: 1.5, end: 3.2 }
    const { result, verified } = await cut(inProcess, fragmented, rally, "exact", "fragmented")
    expect(result.cutBy).toBe("ffmpeg")
    expect(result.inProcessRefused).toMatch(/fragmented/)
    expect(verified).toEqual({ _tag: "Valid" })
  }, 60_000)
})
