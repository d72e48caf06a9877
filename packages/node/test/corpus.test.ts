/**
 * Every source of the generated media corpus, cut in every mode, checked
 * with ffprobe and a decode: the clip decodes without error, presents the
 * expected first frame (exact and accurate: the rally's first frame; copy:
 * the keyframe the result names), its audio and video last as long (within
 * one audio frame), and it keeps the stream kinds, audio tracks with their
 * languages, rotation and (copy, exact) pixel format and colour metadata.
 * Hard sources add their own checks: an all-intra copy starts within a
 * frame of the rally, an exact cut stays a stream copy (MOV for ProRes/PCM),
 * a stream copy shows the source's frames in order from its first (open GOP:
 * nothing that decodes with errors), A/V sync as the source's (beeping
 * audio); their mp4/mov cuts are also made by ffmpeg, the in-process cutter's
 * fallback. Copy and exact clips of mp4/mov sources (fragmented ones too) must
 * be the in-process cutter's.
 * Each clip is graded by the mode asked for: an exact clip must be a stream
 * copy (from a source keyframe, the lead-in hidden by its edit list), never a
 * re-encode, unless its case names why that source falls back to accurate.
 * Sources the project cannot cut are refused at probe with one line.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Domain, Exporter } from "@rallycache/core"
import { Effect, Exit, Layer, ManagedRuntime, Schema, Scope } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { beepEvery, cases, type CutCase, fps, generate } from "./corpus/corpus.js"
import { avSync, decodeErrors, inspect, keyframeTimes } from "./corpus/inspect.js"
import { exporterLayer } from "./fixtures.js"

const videoId = Schema.decodeSync(Domain.VideoId)("corpus")
const modes: ReadonlyArray<Domain.ExportMode> = ["copy", "exact", "accurate"]

const runtime = ManagedRuntime.make(exporterLayer().pipe(Layer.provideMerge(Layer.empty)))
// ffmpeg stays the fallback of the in-process cutter: the hard mp4/mov sources are cut through it too.
const ffmpegOnly = ManagedRuntime.make(exporterLayer({ inProcess: false }))
let ffmpegExporter: Exporter.ExporterShape | undefined
let scope: Scope.CloseableScope
let dir = ""
let work = ""
let missing = new Map<string, ReadonlyArray<string>>()

beforeAll(async () => {
  scope = await runtime.runPromise(Scope.make())
  const corpus = await runtime.runPromise(Scope.extend(generate, scope))
  dir = corpus.dir
  work = corpus.work
  missing = corpus.missing
  ffmpegExporter = await ffmpegOnly.runPromise(Exporter.Exporter)
}, 120_000)

afterAll(async () => {
  if (scope !== undefined) await runtime.runPromise(Scope.close(scope, Exit.void))
  await runtime.dispose()
  await ffmpegOnly.dispose()
})

/** The hard sources (`copyLeadIn`, `exactIn`, `beeps`) that the in-process cutter may take: cut by ffmpeg as well. */
const alsoByFfmpeg = (c: CutCase) =>
  /\.(mp4|mov)$/.test(c.file) && (c.copyLeadIn !== undefined || c.exactIn !== undefined || c.beeps === true)

const cutOne = (c: CutCase, mode: Domain.ExportMode, byFfmpeg: boolean) =>
  Effect.gen(function*() {
    const exporter = byFfmpeg && ffmpegExporter !== undefined ? ffmpegExporter : yield* Exporter.Exporter
    const source = NodePath.join(dir, c.file)
    const info = yield* exporter.probe(source)
    const out = NodePath.join(work, "clips", `${c.file}.${mode}`)
    const result = yield* exporter.export({
      source: new Domain.VideoSource({ id: videoId, path: source, fingerprint: info.fingerprint }),
      rally: new Domain.Rally({ index: 0, ...c.rally }),
      mode,
      priority: "high",
      tempPath: NodePath.join(work, "tmp", `${c.file}.${mode}.part`),
      outputPath: out
    })
    return { out, result }
  })

describe("media corpus", () => {
  for (const c of cases) {
    if (c._tag === "Refuse") {
      it("refuses " + c.name, async (context) => {
        const lacking = missing.get(c.name)
        if (lacking !== undefined) context.skip(`the installed ffmpeg has no ${lacking.join(", ")} encoder`)
        const exit = await runtime.runPromiseExit(
          Effect.flatMap(Exporter.Exporter, (exporter) => exporter.probe(NodePath.join(dir, c.file)))
        )
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit) && exit.cause._tag === "Fail") {
          expect(exit.cause.error._tag).toBe(c.error)
          expect(exit.cause.error.message).not.toContain("\n")
        } else {
          expect.fail("expected a typed failure")
        }
      }, 60_000)
      continue
    }
    it(c.name, async (context) => {
      const lacking = missing.get(c.name)
      // The only allowed skip, reported as one: the installed ffmpeg cannot make this source at all.
      if (lacking !== undefined) context.skip(`the installed ffmpeg has no ${lacking.join(", ")} encoder`)
      const source = NodePath.join(dir, c.file)
      await runtime.runPromise(Effect.gen(function*() {
        const { facts: src, frames: srcFrames } = yield* inspect(source)
        expect(srcFrames.numbers.length).toBe(srcFrames.times.length)
        const srcVideo = src.streams.filter((s) => s.kind === "video")
        const srcAudio = src.streams.filter((s) => s.kind === "audio")
        const firstIndex = srcFrames.times.findIndex((t) => t >= c.rally.start - 0.0005)
        const srcSync = c.beeps === true ? yield* avSync(source, fps, beepEvery, { startTime: src.startTime, frames: srcFrames }) : []
        const srcKeyframes = yield* keyframeTimes(source, src.startTime)
        const problems: Array<string> = []
        const runs = [
          ...modes.map((mode) => ({ mode, byFfmpeg: false })),
          ...(alsoByFfmpeg(c) ? (["copy", "exact"] as const).map((mode) => ({ mode, byFfmpeg: true })) : [])
        ]
        for (const { byFfmpeg, mode } of runs) {
          const { out, result } = yield* cutOne(c, mode, byFfmpeg)
          const say = (what: string) => problems.push(`${mode}${byFfmpeg ? " (ffmpeg)" : ""}: ${what}`)
          // A stream copy of an mp4/mov source (fragmented included) is the in-process cutter's, never a refusal.
          if (!byFfmpeg && mode !== "accurate" && /\.(mp4|mov)$/.test(c.file) && result.fellBack === undefined) {
            if (result.cutBy !== "in-process") say(`cut by ${result.cutBy} (${result.inProcessRefused})`)
          }
          const decoded = yield* decodeErrors(out)
          if (decoded.exitCode !== 0 || decoded.stderr.length > 0) say(`decode: ${decoded.stderr.join(" | ")}`)

          // Streams, frames, lengths and packets of the clip, read in one ffprobe pass.
          const { facts: clip, frames: clipFrames, lengths: len, videoPackets: packets } = yield* inspect(out)
          // Graded as asked: only a source the case marks falls back from exact, for the reason it gives;
          // any other fall-back (reported or not) fails the mode asked for.
          const fallBack = mode === "exact" ? c.exactFallsBack : undefined
          if (fallBack === undefined && result.fellBack !== undefined) {
            say(`fell back to ${result.fellBack.to}: ${result.fellBack.reason}`)
          }
          if (fallBack !== undefined && !(result.fellBack?.to === "accurate" && result.fellBack.reason.includes(fallBack))) {
            say(`expected a fall-back to accurate (${fallBack}), got ${JSON.stringify(result.fellBack)}`)
          }
          const cutAs = fallBack === undefined ? mode : "accurate"
          let expected: number | undefined
          if (cutAs === "copy") {
            const k = srcFrames.times.findIndex((t) => Math.abs(t - result.clipStart) < 0.002)
            expected = srcFrames.numbers[k]
          } else {
            expected = srcFrames.numbers[firstIndex]
            if (result.firstFrame !== undefined) {
              const t = srcFrames.times[firstIndex]!
              if (Math.abs(result.firstFrame - t) > 0.002) say(`reports first frame ${result.firstFrame}, is ${t}`)
            }
          }
          if (clipFrames.numbers[0] !== expected) say(`first frame ${clipFrames.numbers[0]}, expected ${expected}`)
          // Every mode shows the source's frames in order from its first: a re-encode does not hold it.
          if (clipFrames.numbers.length > 1 && clipFrames.numbers[1] !== clipFrames.numbers[0]! + 1) {
            say(`second frame ${clipFrames.numbers[1]} after ${clipFrames.numbers[0]}`)
          }

          const videos = clip.streams.filter((s) => s.kind === "video")
          const audios = clip.streams.filter((s) => s.kind === "audio")
          if (videos.length !== 1) say(`${videos.length} video streams`)
          if (audios.length !== srcAudio.length) say(`${audios.length} audio tracks instead of ${srcAudio.length}`)
          const languages = audios.map((a) => a.language ?? "")
          const srcLanguages = srcAudio.map((a) => a.language ?? "")
          if (languages.join() !== srcLanguages.join()) say(`languages ${languages.join()} instead of ${srcLanguages.join()}`)
          if (cutAs !== "accurate") {
            const v = videos[0]
            const s = srcVideo[0]!
            if (v !== undefined) {
              if (v.rotation !== s.rotation) say(`rotation ${v.rotation} instead of ${s.rotation}`)
              if (v.pixFmt !== s.pixFmt) say(`pixel format ${v.pixFmt} instead of ${s.pixFmt}`)
              if (v.color !== s.color) say(`colour ${v.color} instead of ${s.color}`)
            }
          }

          const video = len.video[0]?.length ?? 0
          for (const [i, audio] of len.audio.entries()) {
            const tolerance = Math.max(audio.maxFrame, 0.001) + 0.0015
            if (Math.abs(audio.length - video) > tolerance) {
              say(`audio track ${i} lasts ${audio.length.toFixed(3)} s, video ${video.toFixed(3)} s`)
            }
          }
          if (cutAs !== "copy") {
            const want = c.rally.end - srcFrames.times[firstIndex]!
            if (Math.abs(video - want) > 0.041) say(`video lasts ${video.toFixed(3)} s instead of ${want.toFixed(3)} s`)
          }
          if (cutAs === "exact") {
            if ((result.container ?? "mp4") !== (c.exactIn ?? "mp4")) say(`exact clip in ${result.container}`)
            // A stream copy starts at a source keyframe and keeps the packets before the rally's first
            // frame (its edit list hides them); a re-encode starts at the first frame itself.
            if (!srcKeyframes.some((t) => Math.abs(t - result.clipStart) < 0.002)) {
              say(`starts at ${result.clipStart}, not at a source keyframe: re-encoded, not copied`)
            }
            const lead = srcFrames.times.filter((t) => t >= result.clipStart - 0.0005 && t < srcFrames.times[firstIndex]! - 0.0005)
            const hidden = packets - clipFrames.numbers.length
            if (hidden < lead.length) say(`${hidden} hidden video packets, fewer than the ${lead.length} before the first frame`)
          }
          if (mode === "exact" && c.exactIn !== undefined && (result.fellBack !== undefined || (result.container ?? "mp4") !== c.exactIn)) {
            say(`exact clip ${result.fellBack === undefined ? `in ${result.container}` : `fell back (${result.fellBack.reason})`}, not a stream copy in ${c.exactIn}`)
          }
          if (mode === "copy" && c.copyLeadIn !== undefined) {
            if (result.fellBack !== undefined) say(`copy fell back (${result.fellBack.reason})`)
            else if (c.rally.start - result.clipStart > c.copyLeadIn + 0.0005) {
              say(`copy clip starts at ${result.clipStart} s, more than ${c.copyLeadIn} s before the rally`)
            }
          }
          if (srcSync.length > 0) {
            // Within one AAC frame of the source's own sync.
            const sync = yield* avSync(out, fps, beepEvery, { startTime: clip.startTime, frames: clipFrames })
            if (sync.length === 0) say("no beep heard in the clip")
            const off = sync.find((s) => Math.abs(s - srcSync[0]!) > 1024 / 48000)
            if (off !== undefined) say(`A/V sync ${(off * 1000).toFixed(1)} ms, source ${(srcSync[0]! * 1000).toFixed(1)} ms`)
          }
          NodeFs.rmSync(out, { force: true })
        }
        if (problems.length > 0) console.log(`corpus: ${c.name}\n${problems.join("\n")}`)
        expect(problems.join("\n")).toBe("")
      }))
    }, 120_000)
  }
})
