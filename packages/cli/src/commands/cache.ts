/**
 * `rallycache cache stats|verify|gc|clear`: look after the cache folder.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import type * as Domain from "@rallycache/core/Domain"
import * as CacheEvent from "@rallycache/core/CacheEvent"
import * as CacheStore from "@rallycache/core/CacheStore"
import * as Cleanup from "@rallycache/core/Cleanup"
import * as Config from "@rallycache/core/Config"
import * as FileSystemCacheStore from "@rallycache/node/FileSystemCacheStore"
import { Duration, Effect, Option, Schema, Stream, SubscriptionRef } from "effect"
import * as CliStats from "../internal/cliStats.js"
import * as Common from "../internal/common.js"
import { UsageError } from "../CliErrors.js"
import * as Output from "../internal/output.js"

const day = 24 * 60 * 60 * 1000

const iso = (millis: number | undefined): string | null => millis === undefined ? null : new Date(millis).toISOString()

/**
 * The `--json` output of `cache stats`.
 *
 * @since 0.1.0
 */
export const StatsJson = Schema.Struct({
  entries: Schema.Int,
  bytes: Schema.Number,
  maxBytes: Schema.Number,
  maxAgeDays: Schema.Number,
  videos: Schema.Int,
  hitRate: Schema.Number,
  oldest: Schema.NullOr(Schema.String),
  newest: Schema.NullOr(Schema.String),
  hits: Schema.Number,
  misses: Schema.Number,
  maxEntriesPerVideo: Schema.Number,
  cacheDir: Schema.String
})
/** @since 0.1.0 */
export type StatsJson = typeof StatsJson.Type

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

const deep = Options.boolean("deep").pipe(
  Options.withDescription("Also read every clip's packets with ffmpeg (slower, finds truncated media)")
)

/** The kind of problem, first, so a reader (or a script) can group them. */
const kindOf = (reason: string, media: boolean): string =>
  media ? "media" : /missing/.test(reason) ? "missing" : /maxAge/.test(reason) ? "age" : "size"

/**
 * `cache verify`: the store's own checks, nothing copied. Opening the store
 * drops entries whose clip is missing or has the wrong size
 * (`FileSystemCacheStore.Startup`); a `lookup` of every entry applies the
 * quick check (exists, size, age) and removes what fails; `--deep` runs
 * `Cleanup.sweep` (`Exporter.verify` of every clip). Each removal is
 * reported by the store as an `EntryInvalid` event, whose reason is shown.
 */
const verify = Command.make("verify", { ...Common.common, deep }, (options) =>
  Common.withStore(options, () =>
    Effect.gen(function*() {
      const store = yield* CacheStore.CacheStore
      const cleanup = yield* Cleanup.Cleanup
      const startup = yield* FileSystemCacheStore.Startup
      const events = yield* CacheEvent.CacheEvents
      const entries = yield* store.list
      const byKey = new Map(entries.map((entry) => [entry.key as string, entry]))
      // Reasons of removals, with the check that found them: the collector
      // is caught up (waitFor) before the deep check starts.
      const found: Array<{ key: string; reason: string; media: boolean }> = []
      let media = false
      const seen = yield* SubscriptionRef.make(0)
      const stream = yield* events.subscribe
      yield* stream.pipe(
        Stream.runForEach((event) =>
          event._tag === "EntryInvalid"
            ? Effect.zipRight(
              Effect.sync(() => found.push({ key: event.key, reason: event.reason, media })),
              SubscriptionRef.update(seen, (n) => n + 1)
            )
            : Effect.void
        ),
        Effect.forkScoped
      )
      // The events are published before lookup and sweep return; a removal
      // by another process publishes none here, hence the time limit.
      const waitFor = (n: number) =>
        seen.changes.pipe(Stream.takeUntil((count) => count >= n), Stream.runDrain, Effect.timeout("2 seconds"), Effect.ignore)
      let expected = 0
      for (const entry of entries) {
        if (Option.isNone(yield* store.lookup(entry.key))) expected++
      }
      yield* waitFor(expected)
      if (options.deep) {
        media = true
        expected = (yield* SubscriptionRef.get(seen)) + (yield* cleanup.sweep).removed
        yield* waitFor(expected)
      }
      const removed: Array<{ key: string; reason: string; videoId?: string; rallyIndex?: number }> = startup.dropped
        .map(({ key, reason }) => ({ key, reason: `${kindOf(reason, false)}: ${reason}` }))
      for (const { key, media, reason } of found) {
        const entry = byKey.get(key)
        removed.push({
          key,
          reason: `${kindOf(reason, media)}: ${reason}`,
          ...(entry === undefined ? {} : { videoId: entry.videoId, rallyIndex: entry.rallyIndex })
        })
      }
      const checked = entries.length + startup.dropped.length
      const result = { checked, valid: checked - removed.length, removed }
      if (options.json) return yield* Output.json(result)
      for (const r of removed) {
        yield* Output.stdout(
          `removed ${r.key}${r.videoId === undefined ? "" : ` (${r.videoId} rally ${r.rallyIndex})`}: ${r.reason}`
        )
      }
      yield* Output.stdout(
        `checked ${Output.count(result.checked, "clip")}${options.deep ? " (deep)" : ""}: ${result.valid} valid, ${removed.length} removed`
      )
    }).pipe(Effect.scoped)
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
  Option.isSome(options.video) && options.video.value.length === 0
    ? new UsageError({ message: "--video is empty (pass a video id, or leave the option out to clear every clip)" })
    : Common.withStore(options, () =>
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
