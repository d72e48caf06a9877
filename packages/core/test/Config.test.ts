import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Schema, TestClock } from "effect"
import { Config } from "@rallycache/core"

const withEnv = (env: Record<string, string>) => Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)), { pathDelim: "_" }))

describe("Config", () => {
  it.effect("has the documented defaults", () =>
    Effect.gen(function*() {
      const config = yield* Config.make()
      expect(config.maxBytes).toBe(500 * 1024 * 1024)
      expect(Duration.toMillis(config.maxAge)).toBe(7 * 24 * 3600 * 1000)
      expect(config.concurrency).toBe(2)
      expect(config.preloadAhead).toBe(2)
      expect(config.mode).toBe("exact")
      expect(config.preemption).toBe(true)
      // The rest of the table in Config.ts (and the README's configuration table), value by value.
      expect(config.maxEntriesPerVideo).toBe(200)
      expect(Duration.toMillis(config.cleanupInterval)).toBe(60_000)
      expect(Duration.toMillis(config.validationInterval)).toBe(3600 * 1000)
      expect(config.maxRetries).toBe(3)
      expect(Duration.toMillis(config.retryBaseDelay)).toBe(250)
      expect(Duration.toMillis(config.retryMaxDelay)).toBe(10_000)
      expect(Duration.toMillis(config.exportTimeout)).toBe(10 * 60 * 1000)
      expect(config.maxRallyLength).toBe(600)
      expect(config.mailboxCapacity).toBe(1024)
      expect(config.runnerId).toBe("local")
    }))

  it.effect("accepts duration strings and numbers of milliseconds", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({ maxAge: "1 day", cleanupInterval: 5000 })
      expect(Duration.toMillis(config.maxAge)).toBe(86_400_000)
      expect(Duration.toMillis(config.cleanupInterval)).toBe(5000)
    }))

  it.effect("rejects a bad value with a one-line message naming the option", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Config.make({ concurrency: 0 }))
      expect(error._tag).toBe("InvalidInput")
      expect(error.field).toBe("concurrency")
      expect(error.message).not.toContain("\n")
      const duration = yield* Effect.flip(Config.make({ maxAge: "soon" as Duration.DurationInput }))
      expect(duration.field).toBe("maxAge")
    }))

  it.effect("reads RALLYCACHE_* variables under explicit options", () =>
    Effect.gen(function*() {
      const fromEnvOnly = yield* Config.fromConfig().pipe(withEnv({ RALLYCACHE_MAX_BYTES: "2048" }))
      expect(fromEnvOnly.maxBytes).toBe(2048)
      const config = yield* Config.fromConfig({ maxBytes: 1000, concurrency: 3 }).pipe(
        withEnv({ RALLYCACHE_MAX_BYTES: "2048", RALLYCACHE_MAX_AGE: "2 hours", RALLYCACHE_MODE: "accurate" })
      )
      expect(config.maxBytes).toBe(1000)
      expect(config.concurrency).toBe(3)
      expect(Duration.toMillis(config.maxAge)).toBe(2 * 3600 * 1000)
      expect(config.mode).toBe("accurate")
    }))

  it.effect("reports a malformed variable as InvalidInput", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Config.fromConfig().pipe(withEnv({ RALLYCACHE_CONCURRENCY: "two" })))
      expect(Exit.isFailure(exit)).toBe(true)
      const error = yield* Effect.flip(Config.fromConfig().pipe(withEnv({ RALLYCACHE_CONCURRENCY: "two" })))
      expect(error._tag).toBe("InvalidInput")
      expect(error.message).toContain("RALLYCACHE_CONCURRENCY")
    }))

  it.effect("reads duration variables as \"2 hours\" or as milliseconds", () =>
    Effect.gen(function*() {
      const config = yield* Config.fromConfig().pipe(
        withEnv({ RALLYCACHE_MAX_AGE: "60000", RALLYCACHE_CLEANUP_INTERVAL: "30 seconds" })
      )
      expect(Duration.toMillis(config.maxAge)).toBe(60_000)
      expect(Duration.toMillis(config.cleanupInterval)).toBe(30_000)
      const error = yield* Effect.flip(Config.fromConfig().pipe(withEnv({ RALLYCACHE_MAX_AGE: "soon" })))
      expect(error.message).toContain("RALLYCACHE_MAX_AGE")
    }))

  it.effect("round-trips through its JSON encoding", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({ maxAge: "3 days" })
      const json = Schema.encodeSync(Config.RallyCacheConfig)(config)
      expect(json.maxAge).toBe(3 * 86_400_000)
      expect(Schema.decodeSync(Config.RallyCacheConfig)(json)).toEqual(config)
    }))

  it.effect("retries at most maxRetries times, with delays capped at retryMaxDelay", () =>
    Effect.gen(function*() {
      const config = yield* Config.make({ maxRetries: 4, retryBaseDelay: 1000, retryMaxDelay: 3000 })
      let attempts = 0
      const fiber = yield* Effect.fork(
        Effect.sync(() => attempts++).pipe(Effect.zipRight(Effect.fail("boom")), Effect.retry(Config.retrySchedule(config)))
      )
      yield* Effect.yieldNow()
      expect(attempts).toBe(1)
      // Each delay is at most 3 s even with jitter, so 4 retries fit in 12 s.
      yield* TestClock.adjust("12 seconds")
      const exit = yield* fiber.await
      expect(attempts).toBe(5)
      expect(Exit.isFailure(exit)).toBe(true)
    }))
})
