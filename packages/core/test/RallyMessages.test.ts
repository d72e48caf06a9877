import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import { CacheKey, Clip, Rally, SourceInfo, VideoSource } from "../src/Domain.js"
import type { VideoId } from "../src/Domain.js"
import { ExportCancelled, ExportFailed, InvalidRally, RallyNotFound, UnknownVideo } from "../src/Errors.js"
import * as RallyMessages from "../src/RallyMessages.js"

const key = CacheKey.make("0123456789abcdef0123456789abcdef")

/** Encode to JSON text and back, as a message crossing a process boundary would. */
const overTheWire = <A, I>(schema: Schema.Schema<A, I>, value: A): A =>
  Schema.decodeUnknownSync(schema)(JSON.parse(JSON.stringify(Schema.encodeSync(schema)(value))))

const messages: ReadonlyArray<RallyMessages.Message> = [
  new RallyMessages.OpenVideo({ path: "/videos/final.mp4", rallies: [{ start: 0, end: 12.5 }, { start: 20, end: 31 }] }),
  new RallyMessages.OpenVideo({ path: "/v.mp4", rallies: [], id: "final", mode: "accurate" }),
  new RallyMessages.Navigate({ videoId: "final", index: 3 }),
  new RallyMessages.GetClip({ videoId: "final", index: 0 }),
  new RallyMessages.Preload({ videoId: "final" }),
  new RallyMessages.Preload({ videoId: "final", indexes: [1, 2, 5], priority: "normal" }),
  new RallyMessages.Invalidate({ videoId: "final" }),
  new RallyMessages.Invalidate({ videoId: "final", index: 4 }),
  new RallyMessages.Status({ videoId: "final" }),
  new RallyMessages.Stats(),
  new RallyMessages.Close({ videoId: "final" })
]

describe("RallyMessages", () => {
  it("every message round-trips through its schema and JSON", () => {
    for (const message of messages) {
      const back = overTheWire(RallyMessages.Message, message)
      expect(back).toEqual(message)
      expect(back).toBeInstanceOf(message.constructor)
    }
  })

  it.prop("any message round-trips through the schema", [RallyMessages.Message], ([message]) => {
    const back = Schema.decodeUnknownSync(RallyMessages.Message)(Schema.encodeSync(RallyMessages.Message)(message))
    expect(back).toEqual(message)
  })

  it("replies and failures round-trip as exits of their request", () => {
    const getClip = new RallyMessages.GetClip({ videoId: "final", index: 2 })
    const clip = new Clip({
      key,
      videoId: "final" as VideoId,
      rallyIndex: 2,
      mode: "copy",
      path: "/cache/clips/x.mp4",
      start: 20,
      end: 31,
      clipStart: 18,
      clipEnd: 31,
      sizeBytes: 1234,
      cached: false
    })
    const exits: ReadonlyArray<Exit.Exit<Clip, typeof RallyMessages.ClipFailure.Type>> = [
      Exit.succeed(clip),
      Exit.fail(new UnknownVideo({ videoId: "final" })),
      Exit.fail(new RallyNotFound({ videoId: "final", index: 9, count: 3 })),
      Exit.fail(new ExportFailed({ reason: "signal", detail: "SIGKILL", transient: true, stderr: "x" })),
      Exit.fail(new ExportCancelled({ key }))
    ]
    for (const exit of exits) {
      const encoded = JSON.parse(JSON.stringify(Schema.serializeExit(getClip, exit).pipe(Effect.runSync)))
      const back = Schema.deserializeExit(getClip, encoded).pipe(Effect.runSync)
      expect(back).toEqual(exit)
    }

    const open = new RallyMessages.OpenVideo({ path: "/v.mp4", rallies: [{ start: 0, end: 10 }] })
    const opened = {
      source: new VideoSource({ id: "v" as VideoId, path: "/v.mp4", fingerprint: "fp" }),
      info: new SourceInfo({ fingerprint: "fp", duration: 60, keyframeInterval: 2, hasVideo: true, hasAudio: false }),
      rallies: [new Rally({ index: 0, start: 0, end: 10 })],
      mode: "copy" as const
    }
    for (const exit of [Exit.succeed(opened), Exit.fail(new InvalidRally({ index: 0, reason: "end 5 s is not after start 10 s" }))]) {
      const encoded = JSON.parse(JSON.stringify(Schema.serializeExit(open, exit).pipe(Effect.runSync)))
      expect(Schema.deserializeExit(open, encoded).pipe(Effect.runSync)).toEqual(exit)
    }

    const status = new RallyMessages.Status({ videoId: "v" })
    const reply = {
      videoId: "v",
      current: 1,
      rallies: [
        { _tag: "Cached" as const, key, sizeBytes: 10 },
        { _tag: "Running" as const, key, priority: "high" as const, progress: 0.5 },
        { _tag: "Failed" as const, key, reason: "export failed (exit): bad input" },
        { _tag: "Idle" as const, key }
      ]
    }
    const encoded = JSON.parse(JSON.stringify(Schema.serializeSuccess(status, reply).pipe(Effect.runSync)))
    expect(Schema.deserializeSuccess(status, encoded).pipe(Effect.runSync)).toEqual(reply)
  })
})
