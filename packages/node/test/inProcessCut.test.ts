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
import { Effect, Schema } from "effect"
import { ManagedRuntime } from "effect"
import * as NodeChildProcess from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { cases, type CutCase, generateArgs } from "./corpus/corpus.js"
import { facts } from "./corpus/inspect.js"
import { exporterLayer } from "./fixtures.js"

const videoId = Schema.decodeSync(Domain.VideoId)("in-process")
const inProcess = ManagedRuntime.make(exporterLayer())
const viaFfmpeg = ManagedRuntime.make(exporterLayer({ inProcess: false }))

/** The corpus cases in mp4/mov, a source derived from another after it. */
const mp4Cases = cases.filter((c): c is CutCase => c._tag === "Cut" && /\.(mp4|mov|m4v)$/.test(c.file))
  .sort((a, b) => Number(a.derivedFrom !== undefined) - Number(b.derivedFrom !== undefined))
const fragmented = "h264-aac-fragmented.mp4"
/** Sources the in-process cutter refuses (ffmpeg cuts them). */
const refusedLayout = /fragment/

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

  it("refuses a fragmented mp4 and lets ffmpeg cut it, saying why", async () => {
    const rally = { start: 1.5, end: 3.2 }
    const { result, verified } = await cut(inProcess, fragmented, rally, "exact", "fragmented")
    expect(result.cutBy).toBe("ffmpeg")
    expect(result.inProcessRefused).toMatch(/fragmented/)
    expect(verified).toEqual({ _tag: "Valid" })
  }, 60_000)
})
