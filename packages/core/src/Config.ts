/**
 * Settings of a rallycache instance, with documented defaults.
 *
 * Give them in code (`CacheConfig.layer({ maxBytes: 1e9 })`) or from the
 * environment (`CacheConfig.layerConfig`, reading `RALLYCACHE_*` variables
 * through Effect's `Config`, so any `ConfigProvider` works).
 *
 * @since 0.1.0
 */
import { Config as EffectConfig, Context, Duration, Effect, Either, Layer, Option, ParseResult, Schedule, Schema } from "effect"
import { InvalidInput } from "./Errors.js"
import { ExportMode } from "./Domain.js"

const PositiveInt = Schema.Int.pipe(Schema.positive())
const NonNegativeInt = Schema.Int.pipe(Schema.nonNegative())
const PositiveNumber = Schema.Number.pipe(Schema.finite(), Schema.positive())

/**
 * The defaults, as one table:
 *
 * | option              | default     | meaning                                                          |
 * |---------------------|-------------|------------------------------------------------------------------|
 * | maxBytes            | 500 MiB     | total size of cached clips; least recently used go first         |
 * | maxAge              | 7 days      | a clip older than this (since it was created) is removed         |
 * | maxEntriesPerVideo  | 200         | clips kept per video, so one video cannot fill the cache         |
 * | concurrency         | 2           | ffmpeg processes at once                                         |
 * | preloadAhead        | 2           | rallies after the current one exported at normal priority       |
 * | mode                | "exact"     | default export mode                                              |
 * | preemption          | true        | a high job may pause/interrupt a running low one                 |
 * | cleanupInterval     | 1 minute    | how often age, size and per-video rules run                      |
 * | validationInterval  | 1 hour      | how often every entry's media is deep-checked                    |
 * | maxRetries          | 3           | retries of a transient export failure                            |
 * | retryBaseDelay      | 250 millis  | first backoff delay; doubles each retry, with jitter             |
 * | retryMaxDelay       | 10 seconds  | cap of one backoff delay                                         |
 * | exportTimeout       | 10 minutes  | an export running longer is killed and retried                   |
 * | maxRallyLength      | 600 seconds | longer rallies are rejected as input errors                      |
 * | mailboxCapacity     | 1024        | bound of the manager's mailbox (callers wait when it is full)    |
 * | runnerId            | "local"     | names this process in trace spans (`rallycache.runner`)          |
 *
 * `exportTimeout` is enforced by the exporter, not the queue:
 * `@rallycache/node`'s default layer gives it to `FfmpegExporter` as its
 * `timeout`; the in-memory `TestExporter` ignores it.
 *
 * @since 0.1.0
 * @category utils
 */
export const defaults = {
  maxBytes: 500 * 1024 * 1024,
  maxAge: Duration.days(7),
  maxEntriesPerVideo: 200,
  concurrency: 2,
  preloadAhead: 2,
  mode: "exact",
  preemption: true,
  cleanupInterval: Duration.minutes(1),
  validationInterval: Duration.hours(1),
  maxRetries: 3,
  retryBaseDelay: Duration.millis(250),
  retryMaxDelay: Duration.seconds(10),
  exportTimeout: Duration.minutes(10),
  maxRallyLength: 600,
  mailboxCapacity: 1024,
  runnerId: "local"
} as const

/**
 * The resolved configuration. Durations are `Duration`s; their encoded form
 * is milliseconds, so a config round-trips through JSON.
 *
 * @since 0.1.0
 * @category models
 */
export class RallyCacheConfig extends Schema.Class<RallyCacheConfig>("RallyCacheConfig")({
  maxBytes: PositiveInt,
  maxAge: Schema.DurationFromMillis,
  maxEntriesPerVideo: PositiveInt,
  concurrency: PositiveInt,
  preloadAhead: NonNegativeInt,
  mode: ExportMode,
  preemption: Schema.Boolean,
  cleanupInterval: Schema.DurationFromMillis,
  validationInterval: Schema.DurationFromMillis,
  maxRetries: NonNegativeInt,
  retryBaseDelay: Schema.DurationFromMillis,
  retryMaxDelay: Schema.DurationFromMillis,
  exportTimeout: Schema.DurationFromMillis,
  maxRallyLength: PositiveNumber,
  mailboxCapacity: PositiveInt,
  runnerId: Schema.NonEmptyTrimmedString
}) {}

/**
 * Options accepted from code: every field optional, durations as any
 * `Duration.DurationInput` (`"7 days"`, `Duration.hours(2)`, a number of
 * milliseconds).
 *
 * @since 0.1.0
 * @category models
 */
export type Options = {
  readonly [K in keyof typeof defaults]?: (typeof defaults)[K] extends Duration.Duration ? Duration.DurationInput
    : K extends "mode" ? ExportMode
    : (typeof defaults)[K] extends string ? string
    : (typeof defaults)[K] extends boolean ? boolean
    : number
}

const durationKeys = [
  "maxAge",
  "cleanupInterval",
  "validationInterval",
  "retryBaseDelay",
  "retryMaxDelay",
  "exportTimeout"
] as const

/**
 * Resolve options against the defaults, validating each value.
 *
 * @example
 * ```ts
 * import { Config } from "@rallycache/core"
 * import { Effect } from "effect"
 *
 * const config = Effect.runSync(Config.make({ maxBytes: 100 * 1024 * 1024, maxAge: "1 day" }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<RallyCacheConfig, InvalidInput> =>
  Effect.gen(function*() {
    const merged: Record<string, unknown> = { ...defaults, ...options }
    const encoded: Record<string, unknown> = { ...merged }
    for (const key of durationKeys) {
      const decoded = Duration.decodeUnknown(merged[key])
      if (decoded._tag === "None") {
        return yield* new InvalidInput({
          field: key,
          reason: `${JSON.stringify(merged[key])} is not a duration`,
          fix: `use a number of milliseconds or a string such as "7 days"`
        })
      }
      encoded[key] = Duration.toMillis(decoded.value)
    }
    const result = Schema.decodeUnknownEither(RallyCacheConfig)(encoded, { onExcessProperty: "error" })
    if (Either.isLeft(result)) {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(result.left)[0]
      return yield* new InvalidInput({
        field: issue === undefined ? "config" : issue.path.join(".") || "config",
        reason: issue?.message ?? "invalid configuration",
        fix: "see the configuration table in the README"
      })
    }
    return result.right
  })

/**
 * The configuration from `options`, then `RALLYCACHE_*` variables (through
 * the current `ConfigProvider`), then the defaults.
 *
 * | variable                          | option             |
 * |-----------------------------------|--------------------|
 * | RALLYCACHE_MAX_BYTES              | maxBytes           |
 * | RALLYCACHE_MAX_AGE                | maxAge ("7 days")  |
 * | RALLYCACHE_MAX_ENTRIES_PER_VIDEO  | maxEntriesPerVideo |
 * | RALLYCACHE_CONCURRENCY            | concurrency        |
 * | RALLYCACHE_PRELOAD_AHEAD          | preloadAhead       |
 * | RALLYCACHE_MODE                   | mode               |
 * | RALLYCACHE_PREEMPTION             | preemption         |
 * | RALLYCACHE_CLEANUP_INTERVAL       | cleanupInterval    |
 * | RALLYCACHE_VALIDATION_INTERVAL    | validationInterval |
 * | RALLYCACHE_MAX_RETRIES            | maxRetries         |
 * | RALLYCACHE_EXPORT_TIMEOUT         | exportTimeout      |
 * | RALLYCACHE_MAX_RALLY_LENGTH       | maxRallyLength     |
 * | RALLYCACHE_RUNNER_ID              | runnerId           |
 *
 * A duration variable needs a unit (`"7 days"`, `"250 millis"`): unlike
 * an option given in code, a bare number of milliseconds is rejected.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromConfig = (options: Options = {}): Effect.Effect<RallyCacheConfig, InvalidInput> =>
  Effect.gen(function*() {
    // `Config.option` would also swallow a malformed value; only a missing
    // variable may fall back to the options and defaults.
    const optional = <A>(config: EffectConfig.Config<A>) =>
      EffectConfig.map(config, Option.some).pipe(EffectConfig.withDefault(Option.none<A>()))
    // "7 days", or a plain number of milliseconds, as options accept.
    const duration = (name: string) =>
      EffectConfig.duration(name).pipe(
        EffectConfig.orElse(() => EffectConfig.map(EffectConfig.number(name), Duration.millis))
      )
    const env = EffectConfig.all({
      maxBytes: optional(EffectConfig.number("MAX_BYTES")),
      maxAge: optional(duration("MAX_AGE")),
      maxEntriesPerVideo: optional(EffectConfig.integer("MAX_ENTRIES_PER_VIDEO")),
      concurrency: optional(EffectConfig.integer("CONCURRENCY")),
      preloadAhead: optional(EffectConfig.integer("PRELOAD_AHEAD")),
      mode: optional(EffectConfig.literal(...ExportMode.literals)("MODE")),
      preemption: optional(EffectConfig.boolean("PREEMPTION")),
      cleanupInterval: optional(duration("CLEANUP_INTERVAL")),
      validationInterval: optional(duration("VALIDATION_INTERVAL")),
      maxRetries: optional(EffectConfig.integer("MAX_RETRIES")),
      exportTimeout: optional(duration("EXPORT_TIMEOUT")),
      maxRallyLength: optional(EffectConfig.number("MAX_RALLY_LENGTH")),
      runnerId: optional(EffectConfig.string("RUNNER_ID"))
    }).pipe(EffectConfig.nested("RALLYCACHE"))
    const values = yield* env.pipe(
      Effect.mapError((error) =>
        new InvalidInput({
          field: "environment",
          // The provider joins nested names with "."; say the variable's real name.
          reason: (String(error).split("\n")[0] ?? "invalid RALLYCACHE_* variable").replaceAll("RALLYCACHE.", "RALLYCACHE_"),
          fix: "fix or unset the RALLYCACHE_* variable"
        })
      )
    )
    const fromEnv: Record<string, unknown> = {}
    for (const [key, value] of Object.entries(values)) {
      if (value._tag === "Some") fromEnv[key] = value.value
    }
    // Explicit options (a CLI flag, code) win over the environment, which wins
    // over the defaults.
    return yield* make({ ...fromEnv, ...options } as Options)
  })

/**
 * The configuration in effect, as a service.
 *
 * @since 0.1.0
 * @category tags
 */
export class CacheConfig extends Context.Tag("@rallycache/core/CacheConfig")<CacheConfig, RallyCacheConfig>() {
  /** From code, with defaults for what is left out. */
  static readonly layer = (options: Options = {}): Layer.Layer<CacheConfig, InvalidInput> =>
    Layer.effect(CacheConfig, make(options))

  /** From `options`, then `RALLYCACHE_*` variables, then defaults. */
  static readonly layerConfig = (options: Options = {}): Layer.Layer<CacheConfig, InvalidInput> =>
    Layer.effect(CacheConfig, fromConfig(options))
}

/**
 * The retry schedule of transient export failures: exponential backoff from
 * `retryBaseDelay`, doubled each time, jittered, capped at `retryMaxDelay`,
 * at most `maxRetries` retries.
 *
 * @since 0.1.0
 * @category utils
 */
export const retrySchedule = (config: RallyCacheConfig): Schedule.Schedule<unknown, unknown> =>
  Schedule.exponential(config.retryBaseDelay, 2).pipe(
    Schedule.jittered,
    Schedule.modifyDelay((delay) => Duration.min(delay, config.retryMaxDelay)),
    Schedule.intersect(Schedule.recurs(config.maxRetries))
  )
