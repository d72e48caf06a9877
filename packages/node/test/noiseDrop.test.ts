/**
 * Open-GOP stream copies drop their leading pictures with the `noise`
 * bitstream filter's `drop` expression (ffmpeg 5 and later). A build
 * without it (the filter missing from `-bsfs`, or an older `noise` with no
 * `drop` option) is reported by the capability check, and its open-GOP copy
 * and exact cuts fall back to accurate, so no picture that decodes with
 * errors is ever kept. Stand-in ffmpegs wrap the real one; cut with
 * `inProcess: false` (the in-process cutter needs no ffmpeg).
 */
import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { Domain, Exporter } from "@rallycache/core"
import { Context, Effect, Layer, Schema } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { FfmpegExporter, FfmpegResolver } from "../src/index.js"
import { run } from "../src/internal/export/process.js"
import { cases, type CutCase, generateArgs } from "./corpus/corpus.js"
import { decodeErrors } from "./corpus/inspect.js"
import { Live, tempDir } from "./fixtures.js"

const phrase = "cannot drop packets with the noise bitstream filter (ffmpeg 5 or later): open-GOP copy and exact cuts are re-encoded"

/** An ffmpeg that runs the real one, except for what `cases` (sh `case` arms) answer; every call is logged. */
const standIn = (dir: string, name: string, real: string, cases: ReadonlyArray<string>) => {
  const path = NodePath.join(dir, name)
  const log = `${path}.log`
  NodeFs.writeFileSync(
    path,
    ["#!/bin/sh", `echo "$*" >> ${log}`, "case \"$*\" in", ...cases, `  *) exec "${real}" "$@";;`, "esac"].join("\n") + "\n",
    { mode: 0o755 }
  )
  return { path, calls: () => NodeFs.readFileSync(log, "utf8").trim().split("\n") }
}

describe("noise bitstream filter", () => {
  it.live("the capability check finds it on the real build, and reports a build without it (missing, or without drop)", () =>
    Effect.gen(function*() {
      const real = yield* FfmpegResolver.Ffmpeg
      const dir = yield* tempDir("noise-caps")
      const cacheFile = NodePath.join(dir, FfmpegResolver.cacheFileName)
      const full = yield* FfmpegResolver.inspect(real, { cacheFile })
      expect(full.ffmpeg.capabilities?.bsfs).toContain("noise")
      expect(full.ffmpeg.capabilities?.noiseDrop).toBe(true)
      expect(full.ffmpeg.lacks).not.toContain(phrase)

      const missing = standIn(dir, "ffmpeg-no-noise", real.ffmpeg.path, [
        `  "-hide_banner -bsfs") "${real.ffmpeg.path}" -hide_banner -bsfs | grep -v '^noise$';;`
      ])
      const old = standIn(dir, "ffmpeg-old-noise", real.ffmpeg.path, [
        `  "-hide_banner -h bsf=noise") printf 'Bit stream filter noise\\nnoise AVOptions:\\n  -amount            <int>\\n  -dropamount        <int>\\n';;`
      ])
      for (const fake of [missing, old]) {
        const shape = { ...real, ffmpeg: { path: fake.path, source: "env" as const, version: "ffmpeg version fake" } }
        const measured = yield* FfmpegResolver.inspect(shape, { cacheFile })
        expect(measured.ffmpeg.capabilities?.noiseDrop).toBe(false)
        expect(measured.ffmpeg.lacks).toContain(phrase)
        expect(fake.calls()).toContain("-hide_banner -bsfs")
      }
      expect(missing.calls()).not.toContain("-hide_banner -h bsf=noise")
      expect(old.calls()).toContain("-hide_banner -h bsf=noise")
      // Remembered per binary, in the cache file too.
      const cached = JSON.parse(NodeFs.readFileSync(cacheFile, "utf8")) as { entries: Record<string, { capabilities: { noiseDrop: boolean } }> }
      const noiseDrops = Object.entries(cached.entries).filter(([key]) => key.startsWith("ffmpeg "))
        .map(([key, entry]) => [NodePath.basename(key.split(" ")[1]!), entry.capabilities.noiseDrop])
      expect(noiseDrops).toEqual(expect.arrayContaining([["ffmpeg-no-noise", false], ["ffmpeg-old-noise", false]]))
    }).pipe(Effect.scoped, Effect.provide(Live)), 120_000)

  it.live("an open-GOP cut by an ffmpeg without it falls back to accurate and decodes clean; with it, stays a copy", () =>
    Effect.gen(function*() {
      const real = yield* FfmpegResolver.Ffmpeg
      const dir = yield* tempDir("noise-export")
      // The corpus's open-GOP source: a recovery-point I frame every second, led by B-frames that reference the GOP before.
      const openGop = cases.find((c): c is CutCase => c._tag === "Cut" && c.file === "h264-opengop-nonidr.mp4")!
      const source = NodePath.join(dir, openGop.file)
      const made = yield* run(real.ffmpeg.path, ["-nostdin", "-v", "error", ...generateArgs(openGop, source, dir)])
      expect(made.exitCode, made.stderrTail.join("\n")).toBe(0)
      const missing = standIn(dir, "ffmpeg-no-noise", real.ffmpeg.path, [
        `  "-hide_banner -bsfs") "${real.ffmpeg.path}" -hide_banner -bsfs | grep -v '^noise$';;`
      ])
      const cut = (ffmpeg: string, mode: Domain.ExportMode) =>
        Effect.gen(function*() {
          const layer = FfmpegExporter.layerWithFfmpeg({ inProcess: false }).pipe(
            // As FFMPEG_PATH gives it: not measured, so the exporter checks the filter itself.
            Layer.provide(FfmpegResolver.layerStatic({ ...real, ffmpeg: { path: ffmpeg, source: "env", version: real.ffmpeg.version } })),
            Layer.provide(NodeContext.layer)
          )
          const exporter = Context.get(yield* Layer.build(layer), Exporter.Exporter)
          const info = yield* exporter.probe(source)
          const outputPath = NodePath.join(dir, "clips", `${NodePath.basename(ffmpeg)}.${mode}.mp4`)
          const result = yield* exporter.export({
            source: new Domain.VideoSource({ id: Schema.decodeSync(Domain.VideoId)("opengop"), path: source, fingerprint: info.fingerprint }),
            rally: new Domain.Rally({ index: 0, ...openGop.rally }),
            mode,
            priority: "high",
            tempPath: NodePath.join(dir, "tmp", `${mode}.part`),
            outputPath
          })
          const decoded = yield* decodeErrors(outputPath)
          expect(decoded, `${ffmpeg} ${mode}`).toEqual({ exitCode: 0, stderr: [] })
          return result
        })
      for (const mode of ["copy", "exact"] as const) {
        const kept = yield* cut(real.ffmpeg.path, mode)
        expect(kept.fellBack).toBeUndefined()
        expect(kept.firstFrame === undefined).toBe(mode === "copy")
        const fell = yield* cut(missing.path, mode)
        expect(fell.fellBack?.to).toBe("accurate")
        expect(fell.fellBack?.reason).toContain("noise bitstream filter")
        expect(fell.clipStart).toBeGreaterThan(openGop.rally.start)
      }
      // The stand-in was asked once what it can do (remembered per binary), and never given the filter.
      const calls = missing.calls()
      expect(calls.filter((c) => c === "-hide_banner -bsfs")).toHaveLength(1)
      expect(calls.some((c) => c.includes("noise="))).toBe(false)
    }).pipe(Effect.scoped, Effect.provide(Live)), 120_000)
})
