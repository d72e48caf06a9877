import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { createRequire } from "node:module"
import * as Temp from "../../../test/support/temp.js"
import { FfmpegResolver } from "../src/index.js"

const require = createRequire(import.meta.url)

/** Whether PATH has a full ffmpeg and ffprobe (Debian's, installed by the test set-up). */
const capablePath = ["ffmpeg", "ffprobe"].every((tool) =>
  (process.env["PATH"] ?? "").split(NodePath.delimiter).some((dir) => NodeFs.existsSync(NodePath.join(dir, tool)))
)

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("FfmpegResolver", () => {
  it.live("finds a working ffmpeg and ffprobe, and prefers builds that lack nothing", () =>
    Effect.gen(function*() {
      const { ffmpeg, ffprobe } = yield* FfmpegResolver.resolve.pipe(withEnv({}))
      expect(ffmpeg.version).toMatch(/^ffmpeg version /)
      expect(ffprobe.version).toMatch(/^ffprobe version /)
      expect(NodeFs.statSync(ffprobe.path).mode & 0o100).not.toBe(0)
      // The bundled builds, measured the same way: the chosen ones lack no more.
      const bundled = yield* FfmpegResolver.inspect({
        ffmpeg: { path: require("@ffmpeg-installer/ffmpeg").path, source: "@ffmpeg-installer/ffmpeg", version: "" },
        ffprobe: { path: require("@ffprobe-installer/ffprobe").path, source: "@ffprobe-installer/ffprobe", version: "" }
      })
      expect(ffmpeg.lacks!.length).toBeLessThanOrEqual(bundled.ffmpeg.lacks!.length)
      expect(ffprobe.lacks!.length).toBeLessThanOrEqual(bundled.ffprobe.lacks!.length)
      if (capablePath) {
        // This machine has a full ffmpeg on PATH (the test set-up installs Debian's).
        expect(ffmpeg).toMatchObject({ source: "PATH", lacks: [] })
        expect(ffprobe).toMatchObject({ source: "PATH", lacks: [] })
      }
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("the bundled builds: the 2018 ffmpeg refuses Opus in mp4, the 2023 ffprobe crashes on MPEG-TS", () =>
    Effect.gen(function*() {
      const bundled = yield* FfmpegResolver.inspect({
        ffmpeg: { path: require("@ffmpeg-installer/ffmpeg").path, source: "@ffmpeg-installer/ffmpeg", version: "" },
        ffprobe: { path: require("@ffprobe-installer/ffprobe").path, source: "@ffprobe-installer/ffprobe", version: "" }
      })
      expect(bundled.ffmpeg.lacks).toContain("cannot put Opus audio in mp4 (exit 1)")
      expect(bundled.ffmpeg.capabilities!.encoders).toEqual(expect.arrayContaining(["libx264", "aac", "libopus"]))
      expect(bundled.ffprobe.lacks).toEqual(["cannot read MPEG-TS (crashed: SIGSEGV)"])
      expect(bundled.ffprobe.capabilities!.demuxers).toEqual(expect.arrayContaining(["mov", "mp4", "mpegts"]))
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("a build is measured once: lists, a crash on the sample, and the cache file", () =>
    Effect.gen(function*() {
      const found = yield* FfmpegResolver.resolve.pipe(withEnv({}))
      const dir = Temp.tempDir("resolver")
      const log = NodePath.join(dir, "runs.log")
      // An ffprobe that lists two demuxers and crashes on whatever it is given to read.
      const fake = NodePath.join(dir, "ffprobe")
      NodeFs.writeFileSync(
        fake,
        [
          "#!/bin/sh",
          `echo "$*" >> ${log}`,
          "case \"$*\" in",
          "  *-demuxers*) printf 'File formats:\\n --\\n D  mov,mp4 QuickTime\\n D  mpegts MPEG-TS\\n';;",
          "  *-decoders*) printf 'Decoders:\\n ------\\n V....D h264 H.264\\n';;",
          "  *pipe:0*) cat > /dev/null; kill -SEGV $$;;",
          "esac"
        ].join("\n") + "\n",
        { mode: 0o755 }
      )
      const cacheFile = NodePath.join(dir, "cache", FfmpegResolver.cacheFileName)
      const shape = { ffmpeg: found.ffmpeg, ffprobe: { path: fake, source: "env" as const, version: "ffprobe version fake" } }
      const first = yield* FfmpegResolver.inspect(shape, { cacheFile })
      expect(first.ffprobe.capabilities).toEqual({
        encoders: [],
        decoders: ["h264"],
        muxers: [],
        demuxers: ["mov", "mp4", "mpegts"],
        bsfs: [],
        noiseDrop: false,
        failed: ["cannot read MPEG-TS (crashed: SIGSEGV)"]
      })
      expect(first.ffprobe.lacks).toEqual(expect.arrayContaining([
        "decoder hevc",
        "demuxer matroska",
        "cannot read MPEG-TS (crashed: SIGSEGV)"
      ]))
      const runs = NodeFs.readFileSync(log, "utf8").trim().split("\n")
      expect(runs.sort()).toEqual(["-hide_banner -decoders", "-hide_banner -demuxers", "-v error -show_streams -show_format -i pipe:0"])
      // Measured again: not run again, and the file remembers it for other processes.
      const second = yield* FfmpegResolver.inspect(shape, { cacheFile })
      expect(second.ffprobe.lacks).toEqual(first.ffprobe.lacks)
      expect(NodeFs.readFileSync(log, "utf8").trim().split("\n")).toHaveLength(3)
      expect(NodeFs.readFileSync(cacheFile, "utf8")).toContain("ffprobe version fake")
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("FFMPEG_PATH wins over the packages", () =>
    Effect.gen(function*() {
      const found = yield* FfmpegResolver.resolve.pipe(withEnv({}))
      // A symlink elsewhere, so the chosen path tells where it came from.
      const dir = Temp.tempDir("resolver")
      const link = NodePath.join(dir, "ffmpeg")
      NodeFs.symlinkSync(found.ffmpeg.path, link)
      const viaEnv = yield* FfmpegResolver.resolve.pipe(withEnv({ FFMPEG_PATH: link }))
      expect(viaEnv.ffmpeg).toEqual({ path: link, source: "env", version: found.ffmpeg.version })
      // No ffprobe beside it, so ffprobe falls back to the package.
      expect(viaEnv.ffprobe.source).not.toBe("beside FFMPEG_PATH")
      NodeFs.symlinkSync(found.ffprobe.path, NodePath.join(dir, "ffprobe"))
      const beside = yield* FfmpegResolver.resolve.pipe(withEnv({ FFMPEG_PATH: link }))
      expect(beside.ffprobe.source).toBe("beside FFMPEG_PATH")
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("a bogus FFMPEG_PATH is a typed one-line error, not a silent fallback", () =>
    Effect.gen(function*() {
      const result = yield* Effect.either(
        FfmpegResolver.resolve.pipe(withEnv({ FFMPEG_PATH: "/nonexistent/ffmpeg" }))
      )
      expect(Either.isLeft(result)).toBe(true)
      if (Either.isLeft(result)) {
        expect(result.left._tag).toBe("FfmpegNotFound")
        expect(result.left.envVar).toBe("FFMPEG_PATH")
        expect(result.left.message).toContain("FFMPEG_PATH")
        expect(result.left.message).not.toContain("\n")
      }
      // A file that exists but is not ffmpeg.
      const dir = Temp.tempDir("resolver")
      const fake = NodePath.join(dir, "ffmpeg")
      NodeFs.writeFileSync(fake, "#!/bin/sh\nexit 3\n", { mode: 0o755 })
      const fakeResult = yield* Effect.either(FfmpegResolver.resolve.pipe(withEnv({ FFPROBE_PATH: fake })))
      expect(Either.isLeft(fakeResult) && fakeResult.left.tool).toBe("ffprobe")
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeContext.layer)))
})
