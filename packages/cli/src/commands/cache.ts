/**
 * `rallycache cache stats|verify|gc|clear`: look after the cache folder.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import { FileSystem } from "@effect/platform"
import type { Domain } from "@rallycache/core"
import { CacheStore, Config, Exporter, Policy } from "@rallycache/core"
import { Clock, Duration, Effect, Option } from "effect"
import * as CliStats from "../internal/cliStats.js"
import * as Common from "../internal/common.js"
import { UsageError } from "../internal/errors.js"
import * as Output from "../internal/output.js"

const day = 24 * 60 * 60 * 1000

const iso = (millis: number | undefined): string | null => millis === undefined ? null : new Date(millis).toISOString()

/**
 * The `--json` output of `cache stats`.
 *
 * @since 0.1.0
 */
export interface StatsJson {
  readonly entries: number
  readonly bytes: number
  readonly maxBytes: number
  readonly maxAgeDays: number
  readonly videos: number
  readonly hitRate: number
  readonly oldest: string | null
  readonly newest: string | null
  readonly hits: number
  readonly misses: number
  readonly maxEntriesPerVideo: number
  readonly cacheDir: string
}

const stats = Command.make("stats", Common.common, (options) =>
  Common.withStore(options, (cacheDir) =>
    Effect.gen(function*() {
      const store = yield* CacheStore.CacheStore
      const config = yield* Config.CacheConfig
      const entries = yield* store.list
      const counts = yield* CliStats.read(cacheDir)
      let oldest: number | undefined
      let newest: number | undefined
      let bytes = 0
      const videos = new Set<string>()
      for (const entry of entries) {
        bytes += entry.sizeBytes
        videos.add(entry.videoId)
        oldest = oldest === undefined ? entry.createdAt : Math.min(oldest, entry.createdAt)
        newest = newest === undefined ? entry.createdAt : Math.max(newest, entry.createdAt)
      }
      const requests = counts.hits + counts.misses
      const result: StatsJson = {
        entries: entries.length,
        bytes,
        maxBytes: config.maxBytes,
        maxAgeDays: Output.round(Duration.toMillis(config.maxAge) / day, 4),
        videos: videos.size,
        hitRate: requests === 0 ? 0 : Output.round(counts.hits / requests, 4),
        oldest: iso(oldest),
        newest: iso(newest),
        hits: counts.hits,
        misses: counts.misses,
        maxEntriesPerVideo: config.maxEntriesPerVideo,
        cacheDir
      }
      if (options.json) return yield* Output.json(result)
      yield* Output.stdout(Output.table([
        ["cache", cacheDir],
        ["clips", `${result.entries} of ${result.videos} video${result.videos === 1 ? "" : "s"}`],
        [
          "size",
          `${Output.formatBytes(bytes)} of ${Output.formatBytes(config.maxBytes)} (${
            Output.formatPercent(bytes / config.maxBytes)
          })`
        ],
        ["max age", `${result.maxAgeDays} days`],
        ["per video", `at most ${config.maxEntriesPerVideo} clips`],
        ["hit rate", requests === 0 ? "no requests yet" : `${Output.formatPercent(result.hitRate)} of ${requests} requests`],
        ["oldest", result.oldest ?? "-"],
        ["newest", result.newest ?? "-"]
      ]))
    }), "read-only")).pipe(Command.withDescription("Entries, size, limits, videos and hit rate of the cache"))

/**
 * Why the quick check rejects an entry, if it does.
 */
const quickCheck = (entry: Domain.CacheEntry, path: string, maxAgeMillis: number, now: number) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const info = yield* fs.stat(path).pipe(Effect.option)
    if (Option.isNone(info)) return Option.some("missing: the clip file is gone")
    const size = Number(info.value.size)
    if (size !== entry.sizeBytes) return Option.some(`size: ${size} bytes on disk, ${entry.sizeBytes} expected`)
    if (Policy.isExpired(entry, maxAgeMillis, now)) return Option.some("age: older than maxAge")
    return Option.none<string>()
  })

const deep = Options.boolean("deep").pipe(
  Options.withDescription("Also read every clip's packets with ffmpeg (slower, finds truncated media)")
)

const verify = Command.make("verify", { ...Common.common, deep }, (options) =>
  Common.withStore(options, () =>
    Effect.gen(function*() {
      const store = yield* CacheStore.CacheStore
      const config = yield* Config.CacheConfig
      const exporter = yield* Exporter.Exporter
      const startup = yield* Common.StoreStartup
      const entries = yield* store.list
      const now = yield* Clock.currentTimeMillis
      const maxAgeMillis = Duration.toMillis(config.maxAge)
      // Entries the store itself dropped when it opened (missing file, wrong size) count as checked and removed.
      const removed: Array<{ key: string; reason: string; videoId?: string; rallyIndex?: number }> = startup.dropped
        .map(({ key, reason }) => ({ key, reason: `${/missing/.test(reason) ? "missing" : "size"}: ${reason}` }))
      yield* Effect.forEach(entries, (entry) =>
        Effect.gen(function*() {
          const path = store.pathOf(entry.key)
          let reason = yield* quickCheck(entry, path, maxAgeMillis, now)
          if (Option.isNone(reason) && options.deep) {
            const result = yield* exporter.verify(path)
            if (result._tag === "Invalid") reason = Option.some(`media: ${result.reason}`)
            else yield* Effect.ignore(store.markValidated(entry.key, "valid"))
          }
          if (Option.isSome(reason)) {
            yield* Effect.ignore(store.markValidated(entry.key, "invalid"))
            yield* store.remove(entry.key, "invalid")
            removed.push({ key: entry.key, reason: reason.value, videoId: entry.videoId, rallyIndex: entry.rallyIndex })
          }
        }), { concurrency: options.deep ? 2 : 8 })
      const checked = entries.length + startup.dropped.length
      const result = { checked, valid: checked - removed.length, removed }
      if (options.json) return yield* Output.json(result)
      for (const r of removed) {
        yield* Output.stdout(
          `removed ${r.key}${r.videoId === undefined ? "" : ` (${r.videoId} rally ${r.rallyIndex})`}: ${r.reason}`
        )
      }
      yield* Output.stdout(
        `checked ${result.checked} clip${result.checked === 1 ? "" : "s"}${options.deep ? " (deep)" : ""}: ${result.valid} valid, ${removed.length} removed`
      )
    })
  )).pipe(Command.withDescription("Check every clip (quick: exists, size, age; --deep: media) and remove bad ones"))

const evictionJson = (entry: Domain.CacheEntry, reason: string) => ({
  key: entry.key,
  videoId: entry.videoId,
  rallyIndex: entry.rallyIndex,
  bytes: entry.sizeBytes,
  reason
})

const gc = Command.make("gc", Common.common, (options) =>
  Common.withStore(options, () =>
    Effect.gen(function*() {
      const store = yield* CacheStore.CacheStore
      const config = yield* Config.CacheConfig
      const evictions = yield* store.enforce
      const usage = yield* store.usage
      const evicted = evictions.map((e) => evictionJson(e.entry, e.reason))
      const result = {
        evicted,
        freedBytes: evicted.reduce((sum, e) => sum + e.bytes, 0),
        entries: usage.entries,
        bytes: usage.bytes,
        limits: {
          maxBytes: config.maxBytes,
          maxAgeDays: Output.round(Duration.toMillis(config.maxAge) / day, 4),
          maxEntriesPerVideo: config.maxEntriesPerVideo
        }
      }
      if (options.json) return yield* Output.json(result)
      for (const e of evicted) {
        yield* Output.stdout(`evicted ${e.key} (${e.videoId} rally ${e.rallyIndex}, ${Output.formatBytes(e.bytes)}): ${e.reason}`)
      }
      yield* Output.stdout(
        `evicted ${evicted.length} clip${evicted.length === 1 ? "" : "s"} (${Output.formatBytes(result.freedBytes)}); ${usage.entries} left, ${
          Output.formatBytes(usage.bytes)
        } of ${Output.formatBytes(config.maxBytes)}`
      )
    })
  )).pipe(Command.withDescription("Apply the age, per-video and size limits now, and say what was evicted and why"))

const videoOption = Options.text("video").pipe(
  Options.withPseudoName("ID"),
  Options.withDescription("Only the clips of this video id"),
  Options.optional
)

const clear = Command.make("clear", { ...Common.common, video: videoOption }, (options) =>
  Common.withStore(options, () =>
    Effect.gen(function*() {
      const store = yield* CacheStore.CacheStore
      const entries = yield* store.list
      const chosen = Option.match(options.video, {
        onNone: () => entries,
        onSome: (id) => entries.filter((e) => e.videoId === id)
      })
      const removed: Array<ReturnType<typeof evictionJson>> = []
      for (const entry of chosen) {
        if (yield* store.remove(entry.key, "manual")) removed.push(evictionJson(entry, "manual"))
      }
      const usage = yield* store.usage
      const result = {
        removed,
        freedBytes: removed.reduce((sum, e) => sum + e.bytes, 0),
        entries: usage.entries,
        bytes: usage.bytes
      }
      if (options.json) return yield* Output.json(result)
      yield* Output.stdout(
        `removed ${removed.length} clip${removed.length === 1 ? "" : "s"}${
          Option.isSome(options.video) ? ` of ${options.video.value}` : ""
        } (${Output.formatBytes(result.freedBytes)}); ${usage.entries} left`
      )
    })
  )).pipe(Command.withDescription("Remove every clip (or those of --video ID)"))

/**
 * @since 0.1.0
 */
export const command = Command.make(
  "cache",
  {},
  () => Effect.fail(new UsageError({ message: "missing subcommand: use cache stats, verify, gc or clear" }))
).pipe(
  Command.withDescription("Inspect and maintain the cache folder"),
  Command.withSubcommands([stats, verify, gc, clear])
)
