/**
 * What an ffmpeg or ffprobe build can do: its encoders, decoders, muxers and
 * demuxers, and a few real runs on tiny generated inputs (a build that lists
 * a format can still crash on it). Measured once per binary (path, size and
 * modification time) per process, and kept in a JSON file when one is given.
 *
 * @internal
 */
import * as Command from "@effect/platform/Command"
import type * as CommandExecutor from "@effect/platform/CommandExecutor"
import { Chunk, Duration, Effect, Option, Schema, Stream } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import { run } from "./process.js"

/** @internal */
export const Capabilities = Schema.Struct({
  encoders: Schema.Array(Schema.String),
  decoders: Schema.Array(Schema.String),
  muxers: Schema.Array(Schema.String),
  demuxers: Schema.Array(Schema.String),
  /** ffmpeg's bitstream filters (`-bsfs`). */
  bsfs: Schema.Array(Schema.String),
  /**
   * Whether the `noise` bitstream filter takes a `drop` expression (ffmpeg 5
   * and later, `-h bsf=noise`): what an open-GOP stream copy drops its leading
   * pictures with.
   */
  noiseDrop: Schema.Boolean,
  /** The real runs that failed, each as a phrase ("cannot read MPEG-TS (crashed: SIGSEGV)"). */
  failed: Schema.Array(Schema.String)
})

/** @internal */
export type Capabilities = typeof Capabilities.Type

/** @internal */
export type Tool = "ffmpeg" | "ffprobe"

/** One of several names is enough (an encoder with two implementations). */
type Want = string | ReadonlyArray<string>

const describeWant = (want: Want): string => typeof want === "string" ? want : want.join(" or ")

/**
 * What rallycache asks of each tool: the codecs and containers of the sources
 * it supports (H.264, HEVC, VP9, AV1, ProRes; AAC, Opus, AC-3, MP3, PCM; mp4,
 * mov, mkv, webm, MPEG-TS, avi), and the encoders an exact cut re-encodes with.
 */
const wanted: Record<Tool, Partial<Record<"encoders" | "decoders" | "muxers" | "demuxers", ReadonlyArray<Want>>>> = {
  ffmpeg: {
    encoders: [
      "libx264",
      "libx265",
      "libvpx-vp9",
      ["libsvtav1", "libaom-av1"],
      "prores_ks",
      "aac",
      "libopus",
      "ac3",
      "libmp3lame",
      "pcm_s16le"
    ],
    muxers: ["mp4", "mov", "matroska", "webm", "mpegts"],
    decoders: ["h264", "hevc", "vp9", ["libdav1d", "av1", "libaom-av1"], "prores", "aac", ["opus", "libopus"], "ac3", "mp3"]
  },
  ffprobe: {
    decoders: ["h264", "hevc", "vp9", ["libdav1d", "av1", "libaom-av1"], "prores", "aac", ["opus", "libopus"], "ac3", "mp3"],
    demuxers: ["mov", "mp4", "matroska", "webm", "mpegts", "avi"]
  }
}

const lists: Record<Tool, ReadonlyArray<"encoders" | "decoders" | "muxers" | "demuxers">> = {
  ffmpeg: ["encoders", "decoders", "muxers"],
  ffprobe: ["decoders", "demuxers"]
}

/**
 * What `capabilities` lacks of what rallycache asks of `tool`, each as a
 * short phrase ("encoder libx265", "cannot read MPEG-TS (crashed: SIGSEGV)").
 *
 * @internal
 */
export const lacks = (tool: Tool, capabilities: Capabilities): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (const kind of lists[tool]) {
    const have = new Set(capabilities[kind])
    for (const want of wanted[tool][kind] ?? []) {
      const names = typeof want === "string" ? [want] : want
      if (!names.some((name) => have.has(name))) out.push(`${kind.slice(0, -1)} ${describeWant(want)}`)
    }
  }
  if (tool === "ffmpeg" && !capabilities.noiseDrop) out.push(...capabilities.failed, noDrop)
  else out.push(...capabilities.failed)
  return out
}

const noDrop = "cannot drop packets with the noise bitstream filter (ffmpeg 5 or later): open-GOP copy and exact cuts are re-encoded"

/** The names `-bsfs` prints, one a line after its heading. */
const parseBsfs = (output: string): Array<string> =>
  output.split("\n").map((line) => line.trim()).filter((line) => /^[\w-]+$/.test(line))

/** The bitstream filters of `path`, and whether its `noise` filter has the `drop` option. */
const bitstreamFilters = (path: string) =>
  Effect.gen(function*() {
    const listed = yield* run(path, ["-hide_banner", "-bsfs"], { collectStdout: true, stderrLines: 2 })
    const bsfs = listed.exitCode === 0 ? parseBsfs(listed.stdout) : []
    if (!bsfs.includes("noise")) return { bsfs, noiseDrop: false }
    const help = yield* run(path, ["-hide_banner", "-h", "bsf=noise"], { collectStdout: true, stderrLines: 2 })
    return { bsfs, noiseDrop: help.exitCode === 0 && /^\s*-drop\s/m.test(help.stdout) }
  }).pipe(Effect.orElseSucceed(() => ({ bsfs: [] as Array<string>, noiseDrop: false })))

/**
 * Names of the second column of `-encoders`, `-muxers`... output, after the
 * dashed line that ends the legend. A format line may name several
 * ("mov,mp4,m4a,3gp,3g2,mj2").
 */
const parseList = (output: string): Array<string> => {
  const lines = output.split("\n")
  const start = lines.findIndex((line) => /^\s*-+\s*$/.test(line))
  const names: Array<string> = []
  for (const line of lines.slice(start + 1)) {
    const name = line.trim().split(/\s+/)[1]
    if (name !== undefined && name.length > 0) names.push(...name.split(","))
  }
  return names
}

const list = (path: string, kind: string) =>
  run(path, ["-hide_banner", `-${kind}`], { collectStdout: true, stderrLines: 2 }).pipe(
    Effect.map((result) => result.exitCode === 0 ? parseList(result.stdout) : []),
    Effect.orElseSucceed((): Array<string> => [])
  )

const sampleArgs = [
  "-v",
  "error",
  "-nostdin",
  "-f",
  "lavfi",
  "-i",
  "testsrc=size=64x48:rate=10:duration=0.3",
  "-f",
  "lavfi",
  "-i",
  "sine=duration=0.3",
  "-c:v",
  "mpeg2video",
  "-c:a",
  "mp2",
  "-f",
  "mpegts",
  "pipe:1"
]

/** A 0.3 s MPEG-TS made by `ffmpeg`, in memory; none when it cannot make one. */
const sample = (ffmpeg: string) =>
  Effect.scoped(Effect.gen(function*() {
    const proc = yield* Command.start(Command.make(ffmpeg, ...sampleArgs))
    const [bytes, code] = yield* Effect.all([Stream.runCollect(proc.stdout), proc.exitCode], { concurrency: 2 })
    return code === 0 ? Option.some(Chunk.toReadonlyArray(bytes)) : Option.none()
  })).pipe(Effect.orElseSucceed(() => Option.none<ReadonlyArray<Uint8Array>>()))

/** Run `path args` (stdin from `input`); a failure as "exit N" or "crashed: SIGNAL". */
const attempt = (path: string, args: ReadonlyArray<string>, input?: ReadonlyArray<Uint8Array>) => {
  let command = Command.make(path, ...args)
  if (input !== undefined) command = Command.stdin(command, Stream.fromIterable(input))
  return Command.exitCode(command).pipe(
    Effect.map((code) => code === 0 ? Option.none<string>() : Option.some(`exit ${code}`)),
    Effect.catchAll((error) => {
      const signal = /signal: (\w+)/.exec(error.message)?.[1]
      return Effect.succeed(Option.some(signal === undefined ? error.message : `crashed: ${signal}`))
    })
  )
}

const probe = (tool: Tool, path: string, ffmpeg: string): Effect.Effect<Capabilities, never, CommandExecutor.CommandExecutor> =>
  Effect.gen(function*() {
    const kinds = lists[tool]
    const found = yield* Effect.forEach(kinds, (kind) => list(path, kind), { concurrency: "unbounded" })
    const get = (kind: string) => found[kinds.indexOf(kind as never)] ?? []
    const failed: Array<string> = []
    const filters = tool === "ffmpeg" ? yield* bitstreamFilters(path) : { bsfs: [], noiseDrop: false }
    const bytes = yield* sample(ffmpeg)
    if (tool === "ffmpeg") {
      if (Option.isNone(bytes)) failed.push("cannot make an MPEG-TS from a generated picture")
      // Opus in mp4 stopped being experimental in ffmpeg 4.3; older builds refuse it.
      const opus = yield* attempt(path, [
        "-v",
        "error",
        "-nostdin",
        "-f",
        "lavfi",
        "-i",
        "sine=duration=0.1",
        "-c:a",
        "libopus",
        "-movflags",
        "+frag_keyframe+empty_moov",
        "-f",
        "mp4",
        "pipe:1"
      ])
      if (Option.isSome(opus)) failed.push(`cannot put Opus audio in mp4 (${opus.value})`)
    } else if (Option.isSome(bytes)) {
      const read = yield* attempt(path, ["-v", "error", "-show_streams", "-show_format", "-i", "pipe:0"], bytes.value)
      if (Option.isSome(read)) failed.push(`cannot read MPEG-TS (${read.value})`)
    }
    return {
      encoders: get("encoders"),
      decoders: get("decoders"),
      muxers: get("muxers"),
      demuxers: get("demuxers"),
      ...filters,
      failed
    }
  })

// ---------------------------------------------------------------------------
// Caching
// ---------------------------------------------------------------------------

/** A measured build: its `-version` line and what it can do. */
const Entry = Schema.Struct({ version: Schema.String, capabilities: Capabilities })

/** @internal */
export type Entry = typeof Entry.Type

const CacheFile = Schema.parseJson(Schema.Struct({
  version: Schema.Literal(3),
  entries: Schema.Record({ key: Schema.String, value: Entry })
}))

/** In this process, by binary identity. */
const memo = new Map<string, Entry>()

/** The binary's identity: a replaced or upgraded binary is probed again. */
const identity = (tool: Tool, path: string): string | undefined => {
  try {
    const stat = NodeFs.statSync(path)
    return `${tool} ${NodeFs.realpathSync(path)} ${stat.size} ${stat.mtimeMs}`
  } catch {
    return undefined
  }
}

/** Each cache file is read once per process. */
const files = new Map<string, Record<string, Entry>>()

const readCache = (file: string): Record<string, Entry> => {
  let entries = files.get(file)
  if (entries === undefined) {
    try {
      entries = Schema.decodeUnknownSync(CacheFile)(NodeFs.readFileSync(file, "utf8")).entries
    } catch {
      entries = {}
    }
    files.set(file, entries)
  }
  return entries
}

/** Best effort: a cache that cannot be written only costs a probe next time. */
const writeCache = (file: string, key: string, value: Entry): void => {
  try {
    const entries = { ...readCache(file), [key]: value }
    files.set(file, entries)
    NodeFs.mkdirSync(NodePath.dirname(file), { recursive: true })
    const temp = `${file}.${process.pid}.tmp`
    NodeFs.writeFileSync(temp, Schema.encodeSync(CacheFile)({ version: 3, entries }))
    NodeFs.renameSync(temp, file)
  } catch {
    // ignored
  }
}

/**
 * The `tool` at `path` as measured before (in this process, or in
 * `cacheFile`), when it has not changed since: no need to run it again.
 *
 * @internal
 */
export const known = (tool: Tool, path: string, cacheFile?: string): Entry | undefined => {
  const key = identity(tool, path)
  if (key === undefined) return undefined
  const entry = memo.get(key) ?? (cacheFile === undefined ? undefined : readCache(cacheFile)[key])
  if (entry !== undefined) memo.set(key, entry)
  return entry
}

/**
 * What the `tool` at `path` (whose `-version` line is `version`) can do;
 * `ffmpeg` makes the sample an ffprobe is tried on. Cached per process, and
 * in `cacheFile` when given.
 *
 * @internal
 */
export const capabilities = (
  tool: Tool,
  path: string,
  version: string,
  ffmpeg: string,
  cacheFile?: string
): Effect.Effect<Capabilities, never, CommandExecutor.CommandExecutor> =>
  Effect.suspend(() => {
    const entry = known(tool, path, cacheFile)
    if (entry !== undefined) return Effect.succeed(entry.capabilities)
    const remember = (capabilities: Capabilities) =>
      Effect.sync(() => {
        const key = identity(tool, path)
        if (key === undefined) return
        memo.set(key, { version, capabilities })
        if (cacheFile !== undefined) writeCache(cacheFile, key, { version, capabilities })
      })
    return probe(tool, path, ffmpeg).pipe(
      Effect.timeout(probeTimeout),
      Effect.matchEffect({
        onSuccess: (capabilities) => Effect.as(remember(capabilities), capabilities),
        // A build that hangs on its checks is not remembered: it is measured again next time.
        onFailure: () =>
          Effect.succeed<Capabilities>({
            encoders: [],
            decoders: [],
            muxers: [],
            demuxers: [],
            bsfs: [],
            noiseDrop: false,
            failed: [`did not finish its checks within ${Duration.format(probeTimeout)}`]
          })
      })
    )
  })

const probeTimeout = Duration.seconds(30)

/** Per binary identity, for binaries whose capabilities were not measured (named by `FFMPEG_PATH`, or given to a test). */
const noiseDrops = new Map<string, boolean>()

/**
 * Whether the ffmpeg at `path` drops packets with the `noise` bitstream
 * filter (see `Capabilities.noiseDrop`): from its measured capabilities when
 * known, else checked once per binary (path, size, modification time).
 *
 * @internal
 */
export const dropsPackets = (path: string): Effect.Effect<boolean, never, CommandExecutor.CommandExecutor> =>
  Effect.suspend(() => {
    const key = identity("ffmpeg", path)
    const measured = known("ffmpeg", path)?.capabilities.noiseDrop ?? (key === undefined ? undefined : noiseDrops.get(key))
    if (measured !== undefined) return Effect.succeed(measured)
    return Effect.map(bitstreamFilters(path), ({ noiseDrop }) => {
      if (key !== undefined) noiseDrops.set(key, noiseDrop)
      return noiseDrop
    })
  })
