/**
 * Hostile input: rallies files (property-based on the CLI's parser, plus a
 * fixed corpus through the real CLI), video ids and output paths, and
 * broken or unusual sources.
 */
import { describe, expect, it } from "@effect/vitest"
import { RallyCache } from "@rallycache/core"
import { RalliesFile } from "@rallycache/cli"
import { Cause, Context, Effect, Either, Exit, FastCheck as fc, Layer, Option } from "effect"
import { spawnSync } from "node:child_process"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { exitCodeOf } from "@rallycache/cli/CliErrors"
import {
  binaries,
  cliRunner,
  errorLines,
  jsonOut,
  mediaCheck,
  nodeStack,
  report,
  runCli,
  sampleVideo,
  snapshot,
  tempDir
} from "./support.js"

/** What the CLI prints for a rejected file must be one short printable line. */
const oneLine = (message: string): boolean =>
  message.length > 0 && message.length < 700 && !/[\u0000-\u001f]/.test(message)

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text)
const bom = Uint8Array.of(0xef, 0xbb, 0xbf)
const concat = (a: Uint8Array, b: Uint8Array): Uint8Array => {
  const out = new Uint8Array(a.length + b.length)
  out.set(a)
  out.set(b, a.length)
  return out
}

/** Parse never throws; a rejection is one line and exit code 2; an acceptance is a valid rally list. */
const parseHolds = (bytes: Uint8Array): boolean => {
  const result = RalliesFile.parse(bytes)
  if (Either.isLeft(result)) {
    return result.left._tag === "InvalidInput" && oneLine(result.left.message) && exitCodeOf(result.left) === 2
  }
  return result.right.rallies.length > 0 &&
    result.right.rallies.every((r) => Number.isFinite(r.start) && Number.isFinite(r.end) && r.start >= 0 && r.end > r.start)
}

/** Only rejections: parse must say no, in one line, with exit code 2. */
const rejected = (bytes: Uint8Array): boolean => {
  const result = RalliesFile.parse(bytes)
  return Either.isLeft(result) && oneLine(result.left.message) && exitCodeOf(result.left) === 2
}

const validRally = fc.tuple(fc.double({ min: 0, max: 5000, noNaN: true }), fc.double({ min: 0.1, max: 300, noNaN: true }))
  .map(([start, length]) => ({ start, end: start + length }))

const badTime = fc.constantFrom<ReadonlyArray<string>>(
  ["NaN"],
  ["Infinity"],
  ["-Infinity"],
  ["1e999"],
  ["-1"],
  ["-0.5"],
  ["\"abc\""],
  ["\"1:99\""],
  ["\"-1:00\""],
  ["\"\""],
  ["null"],
  ["true"],
  ["{}"],
  ["[]"],
  ["[1]"],
  ["\"12.5.3\""],
  ["\"\\u0000\""],
  [JSON.stringify("9".repeat(400))]
).map((tokens) => tokens[0]!)

/** A valid file broken in one way: every result must be a rejection. */
const brokenFile = fc.tuple(
  fc.array(validRally, { minLength: 1, maxLength: 20 }),
  fc.nat(),
  fc.integer({ min: 0, max: 13 }),
  badTime,
  fc.integer({ min: 1, max: 20_000 })
).map(([rallies, at, kind, token, n]) => {
  const i = at % rallies.length
  const text = (list: ReadonlyArray<{ start: unknown; end: unknown }>) => JSON.stringify({ videoId: "m", rallies: list })
  switch (kind) {
    case 0: // a bad start
      return utf8(text(rallies).replace(JSON.stringify(rallies[i]!), `{"start":${token},"end":${rallies[i]!.end}}`))
    case 1: // a bad end
      return utf8(text(rallies).replace(JSON.stringify(rallies[i]!), `{"start":${rallies[i]!.start},"end":${token}}`))
    case 2: // end before start
      return utf8(text(rallies.map((r, j) => (j === i ? { start: r.end, end: r.start } : r))))
    case 3: // end equal to start
      return utf8(text(rallies.map((r, j) => (j === i ? { start: r.start, end: r.start } : r))))
    case 4: // a missing field
      return utf8(text(rallies.map((r, j) => (j === i ? { start: r.start } as { start: number; end: number } : r))))
    case 5: // wrong type of the list
      return utf8(JSON.stringify({ rallies: token === "[]" ? {} : JSON.parse(token === "NaN" || token.includes("Inf") || token === "1e999" ? "1" : token) }))
    case 6: // deep nesting
      return utf8(`{"rallies":${"[".repeat(n)}${"]".repeat(n)}}`)
    case 7: // unclosed deep nesting
      return utf8(`{"rallies":${"[{\"a\":".repeat(n)}`)
    case 8: // cut short
      return utf8(text(rallies).slice(0, Math.max(1, (at % (text(rallies).length - 1)) + 1)))
    case 9: { // an invalid UTF-8 sequence inside
      const bytes = utf8(text(rallies))
      const cut = at % bytes.length
      return concat(concat(bytes.slice(0, cut), Uint8Array.of(0xc3, 0x28)), bytes.slice(cut))
    }
    case 10: // UTF-16
      return Uint8Array.from(Buffer.from("\ufeff" + text(rallies), "utf16le"))
    case 11: // a BOM, then a broken file
      return concat(bom, utf8(text(rallies).replace(JSON.stringify(rallies[i]!), `{"start":${token},"end":1}`)))
    case 12: // a wrong video id
      return utf8(JSON.stringify({ videoId: [123, "", null, {}][at % 4], rallies }))
    default: // an empty list
      return utf8(JSON.stringify({ rallies: [] }))
  }
})

describe("bad input: rallies files", () => {
  it.prop("arbitrary bytes never crash the parser", [fc.uint8Array({ maxLength: 600 })], ([bytes]) => parseHolds(bytes), {
    fastCheck: { numRuns: 1500 }
  })

  it.prop(
    "arbitrary JSON (with or without a BOM) is accepted only as a valid rally list",
    [fc.jsonValue({ maxDepth: 6 }), fc.boolean()],
    ([value, withBom]) => {
      const bytes = utf8(JSON.stringify(value) ?? "null")
      return parseHolds(withBom ? concat(bom, bytes) : bytes)
    },
    { fastCheck: { numRuns: 1500 } }
  )

  it.prop(
    "arbitrary rallies ({start, end} of any JSON) never crash the parser",
    [fc.array(fc.record({ start: fc.jsonValue({ maxDepth: 2 }), end: fc.jsonValue({ maxDepth: 2 }) }), { maxLength: 8 })],
    ([rallies]) => parseHolds(utf8(JSON.stringify({ rallies }))),
    { fastCheck: { numRuns: 1500 } }
  )

  it.prop("a valid file broken in one way is always rejected: one line, exit code 2", [brokenFile], ([bytes]) => rejected(bytes), {
    fastCheck: { numRuns: 2000 }
  })

  it("huge inputs are rejected without running out of memory or stack", () => {
    const many = JSON.stringify({ rallies: Array.from({ length: RalliesFile.maxRallies + 1 }, (_, i) => ({ start: i, end: i + 1 })) })
    expect(rejected(utf8(many))).toBe(true)
    expect(rejected(utf8("[".repeat(1_000_000)))).toBe(true)
    expect(rejected(utf8(`{"rallies":${"[".repeat(200_000)}${"]".repeat(200_000)}}`))).toBe(true)
    expect(rejected(new Uint8Array(RalliesFile.maxFileBytes + 1).fill(0x20))).toBe(true)
  })

  it.live("a fixed corpus through the real CLI: exit code 2, one line on stderr, nothing on stdout, nothing written", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const cli = cliRunner(bins)
      const video = yield* sampleVideo({ duration: 6 })
      const inputs = tempDir("corpus-in")
      const parent = tempDir("corpus-out")
      const rally = `{"start":1,"end":2}`
      const corpus: Record<string, Uint8Array | string> = {
        "nan.json": `{"rallies":[{"start":NaN,"end":2}]}`,
        "infinity.json": `{"rallies":[{"start":1,"end":Infinity}]}`,
        "overflow.json": `{"rallies":[{"start":1,"end":1e999}]}`,
        "negative.json": `{"rallies":[{"start":-3,"end":2}]}`,
        "reversed.json": `{"rallies":[${rally},{"start":5,"end":4}]}`,
        "huge.json": JSON.stringify({ rallies: Array.from({ length: 100_001 }, (_, i) => ({ start: i, end: i + 1 })) }),
        "deep.json": `{"rallies":${"[".repeat(100_000)}${"]".repeat(100_000)}}`,
        "types.json": `{"videoId":42,"rallies":[${rally}]}`,
        "strings.json": `{"rallies":[{"start":"one","end":"two"}]}`,
        "bom-broken.json": concat(bom, utf8(`{"rallies":[{"start":1,"end":}]}`)),
        "utf16.json": Uint8Array.from(Buffer.from(`\ufeff{"rallies":[${rally}]}`, "utf16le")),
        "invalid-utf8.json": concat(utf8(`{"videoId":"`), concat(Uint8Array.of(0xff, 0xfe, 0xc3), utf8(`","rallies":[${rally}]}`))),
        "empty.json": "",
        "array-of-junk.json": `[1,2,3]`,
        "object.json": `{"start":1,"end":2}`
      }
      for (const [name, content] of Object.entries(corpus)) NodeFs.writeFileSync(NodePath.join(inputs, name), content)
      const before = snapshot(parent)
      const args = (file: string) =>
        ["export", video, "--rallies", NodePath.join(inputs, file), "--cache-dir", NodePath.join(parent, "cache"), "--out", NodePath.join(parent, "out"), "--json"]
      const names = Object.keys(corpus)
      const results = yield* Effect.forEach(names, (name) => cli.run(args(name)), { concurrency: 4 })
      // And a few the way `pnpm rallycache` starts it (scripts/rallycache.mjs).
      const viaScript = ["nan.json", "reversed.json", "invalid-utf8.json", "deep.json"]
      const scriptResults = yield* Effect.forEach(viaScript, (name) => runCli(args(name)), { concurrency: 2 })
      const problems: Array<string> = []
      const check = (label: string, result: { code: number | null; stdout: string; stderr: string }) => {
        const lines = errorLines({ ...result, signal: null })
        if (result.code !== 2) problems.push(`${label}: exit ${result.code} (${lines.join(" / ")})`)
        if (lines.length !== 1) problems.push(`${label}: ${lines.length} stderr lines: ${lines.join(" / ")}`)
        else if (!oneLine(lines[0]!)) problems.push(`${label}: not a one-line message`)
        if (result.stdout.trim().length > 0) problems.push(`${label}: stdout ${JSON.stringify(result.stdout.slice(0, 100))}`)
      }
      results.forEach((result, i) => check(names[i]!, result))
      scriptResults.forEach((result, i) => check(`${viaScript[i]!} (pnpm rallycache)`, result))
      const after = snapshot(parent)
      report("badInput.corpus", {
        files: names.length,
        cliRuns: names.length + viaScript.length,
        exit2: [...results, ...scriptResults].filter((r) => r.code === 2).length,
        problems: problems.length,
        written: after.length - before.length,
        messages: Object.fromEntries(results.map((r, i) => [names[i]!, errorLines({ ...r, signal: null })[0] ?? ""]))
      })
      expect(problems).toEqual([])
      expect(after, "nothing written for a rejected file").toEqual(before)
      NodeFs.rmSync(inputs, { recursive: true, force: true })
      NodeFs.rmSync(parent, { recursive: true, force: true })
    }), { timeout: 240_000 })
})

const hostileIds = [
  "../../etc/passwd",
  "../escape",
  "/absolute/path/video",
  "C:\\Windows\\System32\\evil",
  "..\\..\\windows",
  "a\u0000b",
  "nul\u0000",
  "x".repeat(4096),
  "ünïcødé 🎾 試合",
  "\u202egnp.exe",
  ".",
  "..",
  "con",
  " ",
  "a/b/c",
  "~/home"
]

describe("bad input: video ids and output paths", () => {
  it.live("no video id makes the library write outside the cache folder", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const video = yield* sampleVideo({ duration: 6 })
      const parent = tempDir("ids")
      const cacheDir = NodePath.join(parent, "cache")
      const before = snapshot(parent)
      const outcomes: Array<string> = []
      yield* Effect.scoped(Effect.gen(function*() {
        const cache = Context.get(yield* Layer.build(nodeStack({ cacheDir })), RallyCache.RallyCache)
        for (const [i, id] of [...hostileIds, "y".repeat(5000), ""].entries()) {
          const exit = yield* Effect.exit(Effect.gen(function*() {
            const opened = yield* cache.openVideo({ path: video, rallies: [{ start: 0.1 * i, end: 1 + 0.1 * i }], id })
            return yield* cache.getClip(opened.source.id, 0)
          }))
          if (Exit.isSuccess(exit)) {
            expect(exit.value.path.startsWith(NodePath.join(cacheDir, "clips") + NodePath.sep)).toBe(true)
            expect(mediaCheck(bins.ffmpeg.path, bins.ffprobe.path, exit.value.path).ok).toBe(true)
            outcomes.push("clip")
          } else {
            const failure = Cause.failureOption(exit.cause)
            expect(Option.map(failure, (e) => e._tag)).toEqual(Option.some("InvalidInput"))
            if (Option.isSome(failure)) expect(oneLine(failure.value.message)).toBe(true)
            outcomes.push("InvalidInput")
          }
        }
      }))
      const outside = snapshot(parent).filter((p) => !p.startsWith("cache/") && !before.includes(p))
      report("badInput.ids.library", {
        ids: hostileIds.length + 2,
        clips: outcomes.filter((o) => o === "clip").length,
        rejected: outcomes.filter((o) => o === "InvalidInput").length,
        createdOutsideCache: outside.length
      })
      expect(outside).toEqual([])
      expect(outcomes.filter((o) => o === "InvalidInput").length).toBe(2)
      NodeFs.rmSync(parent, { recursive: true, force: true })
    }), { timeout: 240_000 })

  it.live("through the CLI: hostile --video-id and rallies-file ids write only into --cache-dir and --out", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const cli = cliRunner(bins)
      const video = yield* sampleVideo({ duration: 6 })
      const inputs = tempDir("ids-cli-in")
      const parent = tempDir("ids-cli-out")
      const before = snapshot(parent)
      const runs = [
        { file: { rallies: [{ start: 0, end: 1 }] }, flag: ["--video-id", "../../escape"] },
        { file: { videoId: "..\\..\\win\u0000\u202e🎾", rallies: [{ start: 1, end: 2 }] }, flag: [] },
        { file: { videoId: "/etc/passwd", rallies: [{ start: 2, end: 3 }] }, flag: [] }
      ]
      const results = yield* Effect.forEach(runs, (run, i) => {
        const file = NodePath.join(inputs, `r${i}.json`)
        NodeFs.writeFileSync(file, JSON.stringify(run.file))
        return cli.run([
          "export",
          video,
          "--rallies",
          file,
          ...run.flag,
          "--cache-dir",
          NodePath.join(parent, "cache"),
          "--out",
          NodePath.join(parent, `out${i}`),
          "--json"
        ])
      })
      for (const result of results) {
        expect(result.code, result.stderr).toBe(0)
        const json = jsonOut<{ clips: Array<{ path: string }> }>(result)
        for (const clip of json.clips) expect(clip.path.startsWith(parent)).toBe(true)
      }
      const created = snapshot(parent).filter((p) => !before.includes(p))
      const outside = created.filter((p) => !/^(cache|out\d)(\/|$)/.test(p))
      report("badInput.ids.cli", { runs: runs.length, created: created.length, createdOutsideCacheAndOut: outside.length })
      expect(outside).toEqual([])
      expect(created.filter((p) => /^out\d\/rally-000\.mp4$/.test(p)).length).toBe(3)
      NodeFs.rmSync(inputs, { recursive: true, force: true })
      NodeFs.rmSync(parent, { recursive: true, force: true })
    }), { timeout: 240_000 })
})

const ffmpegMake = (ffmpeg: string, args: ReadonlyArray<string>) => {
  const result = spawnSync(ffmpeg, ["-nostdin", "-y", "-v", "error", ...args], { encoding: "utf8" })
  if (result.status !== 0) throw new Error(`cannot make a fixture: ${result.stderr}`)
}

describe("bad input: sources", () => {
  it.live("text named .mp4, truncated, no audio, audio only, variable frame rate, zero-length: a typed error or a correct clip", () =>
    Effect.gen(function*() {
      const bins = yield* binaries
      const ffmpeg = bins.ffmpeg.path
      const dir = tempDir("sources")
      const media = NodePath.join(dir, "media")
      NodeFs.mkdirSync(media)
      const full = yield* sampleVideo({ duration: 8 })
      const noAudio = yield* sampleVideo({ duration: 6, audio: false })
      const files = {
        text: NodePath.join(media, "text.mp4"),
        empty: NodePath.join(media, "empty.mp4"),
        truncated: NodePath.join(media, "truncated.mp4"),
        noAudio,
        audioOnly: NodePath.join(media, "audio-only.mp4"),
        vfr: NodePath.join(media, "vfr.mp4")
      }
      NodeFs.writeFileSync(files.text, "this is a text file, not a video\n")
      NodeFs.writeFileSync(files.empty, "")
      const bytes = NodeFs.readFileSync(full)
      NodeFs.writeFileSync(files.truncated, bytes.subarray(0, Math.floor(bytes.length / 2)))
      ffmpegMake(ffmpeg, ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6", "-c:a", "aac", "-f", "mp4", files.audioOnly])
      ffmpegMake(ffmpeg, [
        "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=6",
        "-vf", "select='lt(n\\,40)+not(mod(n\\,4))'", "-vsync", "vfr",
        "-c:v", "libx264", "-preset", "veryfast", "-g", "30", "-pix_fmt", "yuv420p", "-f", "mp4", files.vfr
      ])
      const rallies = [{ start: 0.5, end: 2 }, { start: 2.5, end: 4 }, { start: 5.5, end: 7.5 }]
      const results: Record<string, Array<string>> = {}
      const problems: Array<string> = []
      const cacheDir = NodePath.join(dir, "cache")
      yield* Effect.scoped(Effect.gen(function*() {
        const cache = Context.get(yield* Layer.build(nodeStack({ cacheDir })), RallyCache.RallyCache)
        for (const [name, path] of Object.entries(files)) {
          const out: Array<string> = []
          results[name] = out
          const opened = yield* Effect.exit(cache.openVideo({ path, rallies: name === "truncated" ? rallies : rallies.slice(0, 2), id: name }))
          if (Exit.isFailure(opened)) {
            const failure = Cause.failureOption(opened.cause)
            if (Option.isNone(failure)) problems.push(`${name}: open died: ${Cause.pretty(opened.cause).split("\n")[0]}`)
            else {
              out.push(`open: ${failure.value._tag}`)
              if (!oneLine(failure.value.message)) problems.push(`${name}: message not one line`)
            }
            continue
          }
          for (let index = 0; index < opened.value.rallies.length; index++) {
            const exit = yield* Effect.exit(cache.getClip(opened.value.source.id, index))
            if (Exit.isSuccess(exit)) {
              const clip = exit.value
              const check = mediaCheck(ffmpeg, bins.ffprobe.path, clip.path)
              // What is presented: from the rally's first frame in exact mode (the edit list hides the lead-in).
              const expected = clip.clipEnd - (clip.firstFrame ?? clip.clipStart)
              if (!check.ok) problems.push(`${name} #${index}: served a broken clip (${check.detail})`)
              else if (Math.abs(check.duration - expected) > 0.5 + 0.05 * expected) {
                problems.push(`${name} #${index}: clip lasts ${check.duration} s, expected ${expected} s`)
              }
              out.push(`#${index}: clip ${check.duration.toFixed(2)} s`)
            } else {
              const failure = Cause.failureOption(exit.cause)
              if (Option.isNone(failure)) problems.push(`${name} #${index}: died: ${Cause.pretty(exit.cause).split("\n")[0]}`)
              else {
                out.push(`#${index}: ${failure.value._tag}`)
                if (!oneLine(failure.value.message)) problems.push(`${name} #${index}: message not one line`)
              }
            }
          }
        }
      }))
      report("badInput.sources", { results, problems: problems.length })
      expect(problems).toEqual([])
      expect(results["text"]).toEqual(["open: NotMediaFile"])
      expect(results["empty"]).toEqual(["open: NotMediaFile"])
      // No video stream: refused at open (issue "Exact rallies at copy speed").
      expect(results["audioOnly"]).toEqual(["open: UnsupportedSource"])
      for (const name of ["noAudio", "vfr"]) {
        expect(results[name]!.every((r) => r.includes("clip")), `${name}: ${results[name]!.join(", ")}`).toBe(true)
      }
      // The truncated file's lost half can never come back as a clip.
      expect(results["truncated"]!.at(-1)).not.toContain("clip")

      // The two hopeless ones through the CLI: exit code 2, one line.
      const cli = cliRunner(bins)
      const rf = NodePath.join(dir, "r.json")
      NodeFs.writeFileSync(rf, JSON.stringify({ rallies: [{ start: 0, end: 1 }] }))
      for (const path of [files.text, files.empty]) {
        const result = yield* cli.run(["export", path, "--rallies", rf, "--cache-dir", cacheDir, "--json"])
        expect(result.code, result.stderr).toBe(2)
        expect(errorLines(result).length).toBe(1)
      }
      NodeFs.rmSync(dir, { recursive: true, force: true })
    }), { timeout: 240_000 })
})
