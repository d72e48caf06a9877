import { NodeContext } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Either } from "effect"
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"
import * as NodePath from "node:path"
import { FfmpegResolver } from "../src/index.js"

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

describe("FfmpegResolver", () => {
  it.live("finds a working ffmpeg and ffprobe and reports their versions", () =>
    Effect.gen(function*() {
      const { ffmpeg, ffprobe } = yield* FfmpegResolver.resolve.pipe(withEnv({}))
      expect(ffmpeg.version).toMatch(/^ffmpeg version /)
      expect(ffprobe.version).toMatch(/^ffprobe version /)
      // No FFMPEG_PATH: a static package build wins over PATH.
      expect(["ffmpeg-static", "@ffmpeg-installer/ffmpeg"]).toContain(ffmpeg.source)
      expect(NodeFs.statSync(ffprobe.path).mode & 0o100).not.toBe(0)
    }).pipe(Effect.provide(NodeContext.layer)))

  it.live("FFMPEG_PATH wins over the packages", () =>
    Effect.gen(function*() {
      const found = yield* FfmpegResolver.resolve.pipe(withEnv({}))
      // A symlink elsewhere, so the chosen path tells where it came from.
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-resolver-"))
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
      const dir = NodeFs.mkdtempSync(NodePath.join(NodeOs.tmpdir(), "rallycache-resolver-"))
      const fake = NodePath.join(dir, "ffmpeg")
      NodeFs.writeFileSync(fake, "#!/bin/sh\nexit 3\n", { mode: 0o755 })
      const fakeResult = yield* Effect.either(FfmpegResolver.resolve.pipe(withEnv({ FFPROBE_PATH: fake })))
      expect(Either.isLeft(fakeResult) && fakeResult.left.tool).toBe("ffprobe")
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }).pipe(Effect.provide(NodeContext.layer)))
})
