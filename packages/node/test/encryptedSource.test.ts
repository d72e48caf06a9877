/**
 * Encrypted (DRM) sources are refused when the video is opened, with one
 * line saying so: a CENC mp4 made by ffmpeg (progressive and fragmented),
 * opened in process and through ffprobe; the sample-entry reading on a
 * hand-made `moov` with a `cbcs` scheme and a Widevine `pssh`.
 */
import { describe, expect, it } from "@effect/vitest"
import { Exporter } from "@rallycache/core"
import { Effect } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { FfmpegResolver } from "../src/index.js"
import { run } from "../src/internal/export/process.js"
import { encryptionIn, mp4Encryption } from "../src/internal/media/mp4Encryption.js"
import { exporterLayer, Live, tempDir, testVideo } from "./fixtures.js"

const box = (type: string, ...payload: ReadonlyArray<Buffer>): Buffer => {
  const body = Buffer.concat(payload)
  const head = Buffer.alloc(8)
  head.writeUInt32BE(8 + body.length)
  head.write(type, 4, "latin1")
  return Buffer.concat([head, body])
}
const bytes = (n: number) => Buffer.alloc(n)
const text = (s: string) => Buffer.from(s, "latin1")

/** A `trak` whose one sample entry is `entry` (type and payload), with handler `handler`. */
const trak = (handler: string, entry: Buffer) =>
  box(
    "trak",
    box(
      "mdia",
      box("hdlr", bytes(8), text(handler), bytes(12), text("\0")),
      box("minf", box("stbl", box("stsd", Buffer.from([0, 0, 0, 0, 0, 0, 0, 1]), entry)))
    )
  )

const sinf = (original: string, scheme: string) =>
  box("sinf", box("frma", text(original)), box("schm", bytes(4), text(scheme), bytes(4)), box("schi", box("tenc", bytes(24))))

const encrypt = ["-encryption_scheme", "cenc-aes-ctr", "-encryption_key", "00112233445566778899aabbccddeeff", "-encryption_kid", "0123456789abcdef0123456789abcdef"]

describe("encrypted sources", () => {
  it("names the scheme, the encrypted tracks and the key system from the moov", () => {
    const widevine = Buffer.from("edef8ba979d64acea3c827dcd51d21ed", "hex")
    const moov = Buffer.concat([
      box("mvhd", bytes(100)),
      trak("vide", box("encv", bytes(78), box("avcC", bytes(8)), sinf("avc1", "cbcs"))),
      trak("soun", box("mp4a", bytes(28), box("esds", bytes(20)))),
      box("pssh", bytes(4), widevine, bytes(4))
    ])
    expect(encryptionIn(moov)).toBe("cbcs scheme on the video track, Widevine keys")
    // The same movie in the clear: nothing to report, whatever its pssh says.
    const clear = Buffer.concat([
      box("mvhd", bytes(100)),
      trak("vide", box("avc1", bytes(78), box("avcC", bytes(8)))),
      box("pssh", bytes(4), widevine, bytes(4))
    ])
    expect(encryptionIn(clear)).toBeUndefined()
  })

  it.live("an encrypted mp4 (progressive or fragmented) is refused at open with one line, on both probe paths", () =>
    Effect.gen(function*() {
      const { ffmpeg } = yield* FfmpegResolver.Ffmpeg
      const source = yield* testVideo
      const dir = yield* tempDir("encrypted")
      const make = (name: string, extra: ReadonlyArray<string>) =>
        Effect.gen(function*() {
          const path = NodePath.join(dir, name)
          const result = yield* run(ffmpeg.path, ["-nostdin", "-y", "-v", "error", "-i", source, "-map", "0", "-c", "copy", ...extra, ...encrypt, path])
          expect(result.exitCode, result.stderrTail.join("\n")).toBe(0)
          return path
        })
      const plain = yield* make("cenc.mp4", [])
      const fragmented = yield* make("cenc-frag.mp4", ["-movflags", "frag_keyframe+empty_moov"])
      expect(mp4Encryption(source)).toBeUndefined()
      for (const path of [plain, fragmented]) {
        expect(mp4Encryption(path)).toMatch(/^cenc scheme on the video (and audio tracks|track)$/)
        for (const inProcess of [true, false]) {
          const error = yield* Effect.flip(
            Effect.flatMap(Exporter.Exporter, (exporter) => exporter.probe(path)).pipe(
              Effect.provide(exporterLayer({ inProcess }))
            )
          )
          expect(error._tag).toBe("UnsupportedSource")
          expect(error.message).toContain("the video is encrypted (DRM: cenc scheme")
          expect(error.message).toContain("rallycache cannot cut encrypted video")
          expect(error.message).not.toContain("\n")
        }
      }
      // The clear source still opens.
      const info = yield* Effect.flatMap(Exporter.Exporter, (exporter) => exporter.probe(source)).pipe(
        Effect.provide(exporterLayer())
      )
      expect(info.hasVideo).toBe(true)
      expect(NodeFs.readdirSync(dir).sort()).toEqual(["cenc-frag.mp4", "cenc.mp4"])
    }).pipe(Effect.scoped, Effect.provide(Live)), 60_000)
})
