import * as NodeContext from "@effect/platform-node/NodeContext"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as MediaRoot from "../src/internal/mediaRoot.js"

const tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "http-media-")))
const root = path.join(tmp, "media")
fs.mkdirSync(path.join(root, "sub"), { recursive: true })
fs.writeFileSync(path.join(root, "sub", "match.mp4"), "x")
fs.writeFileSync(path.join(root, "..dots.mp4"), "x")
fs.writeFileSync(path.join(tmp, "secret.mp4"), "x")
fs.symlinkSync(path.join(tmp, "secret.mp4"), path.join(root, "escape.mp4"))
fs.symlinkSync(path.join(root, "sub", "match.mp4"), path.join(root, "alias.mp4"))
fs.symlinkSync(root, path.join(tmp, "root-link"))

const resolve = (base: string, requested: string) =>
  MediaRoot.resolve(base, requested).pipe(Effect.either, Effect.provide(NodeContext.layer))

describe("MediaRoot.resolve", () => {
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }))

  it.effect("accepts files under the root, relative or absolute, and links that stay inside", () =>
    Effect.gen(function*() {
      const match = path.join(root, "sub", "match.mp4")
      expect(yield* resolve(root, "sub/match.mp4")).toEqual(Either.right(match))
      expect(yield* resolve(root, match)).toEqual(Either.right(match))
      expect(yield* resolve(root, "alias.mp4")).toEqual(Either.right(match))
      expect(yield* resolve(root, "..dots.mp4")).toEqual(Either.right(path.join(root, "..dots.mp4")))
      // The root given through a symbolic link.
      expect(yield* resolve(path.join(tmp, "root-link"), path.join(tmp, "root-link", "sub", "match.mp4"))).toEqual(
        Either.right(match)
      )
    }))

  it.effect("refuses paths outside the root: traversal, absolute, links out, the root itself", () =>
    Effect.gen(function*() {
      for (const requested of ["../secret.mp4", "sub/../../secret.mp4", path.join(tmp, "secret.mp4"), "escape.mp4", ".", "/etc/passwd", "a\0b"]) {
        const result = yield* resolve(root, requested)
        expect(Either.isLeft(result) && result.left._tag, requested).toBe("OutsideMediaRoot")
      }
    }))

  it.effect("a missing file under the root is not found, and the message says so in one line", () =>
    Effect.gen(function*() {
      const result = yield* resolve(root, "sub/none.mp4")
      expect(Either.isLeft(result) && result.left._tag).toBe("MediaNotFound")
      if (Either.isLeft(result)) expect(result.left.message).not.toContain("\n")
    }))
})
