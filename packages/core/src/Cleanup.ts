/**
 * The `Cleanup` service keeps the cache within its limits in the
 * background: the age, per-video and size rules (`CacheStore.enforce`, which
 * plans with `Eviction.planEviction`) every `cleanupInterval`, a deep
 * validation sweep (`Exporter.verify` of every clip) every
 * `validationInterval`, and an immediate run whenever `trigger` is called
 * (after a commit pushed the cache over its limit, for example).
 *
 * The fibers live in the layer's scope: closing it stops them all. A run
 * that fails (an I/O error, even a defect) is logged, and the next run
 * happens on schedule.
 *
 * @example
 * ```ts
 * import { Cleanup } from "@rallycache/core"
 * import { Effect } from "effect"
 *
 * // after writing many clips: enforce the limits now, without waiting
 * const program = Effect.flatMap(Cleanup.Cleanup, (cleanup) => cleanup.trigger)
 * ```
 *
 * @since 0.1.0
 */
import { Cause, Context, Effect, Layer, Queue, Schedule } from "effect"
import { CacheEvents, EntryInvalid } from "./CacheEvent.js"
import type { Eviction } from "./CacheStore.js"
import { CacheStore } from "./CacheStore.js"
import { CacheConfig } from "./Config.js"
import type { CacheIOError } from "./Errors.js"
import { Exporter } from "./Exporter.js"
import { Metrics } from "./Metrics.js"

/**
 * What a validation sweep did.
 *
 * @since 0.1.0
 * @category models
 */
export interface SweepResult {
  /** Entries whose clip was deep-checked. */
  readonly checked: number
  readonly valid: number
  /** Entries found broken and removed (they are exported again when needed). */
  readonly removed: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CleanupShape {
  /**
   * Ask for the age, per-video and size rules to run now. Returns at once:
   * the run happens on the cleanup fiber, and triggers that arrive while one
   * is pending are merged into it, so calling this on every commit is cheap.
   */
  readonly trigger: Effect.Effect<void>
  /** Run the age, per-video and size rules now and wait for the result. */
  readonly enforce: Effect.Effect<ReadonlyArray<Eviction>, CacheIOError>
  /**
   * Deep-check every entry's clip with `Exporter.verify` now: valid ones are
   * marked valid, broken ones are reported (`EntryInvalid`), marked invalid
   * and removed. One clip at a time, so a sweep never competes with exports
   * for more than one core.
   */
  readonly sweep: Effect.Effect<SweepResult, CacheIOError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Cleanup extends Context.Tag("@rallycache/core/Cleanup")<Cleanup, CleanupShape>() {}

const logFailure = (what: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<void, never, R> =>
  self.pipe(
    Effect.asVoid,
    Effect.catchAllCause((cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.interrupt
        : Effect.logWarning(`rallycache ${what} failed; it runs again on schedule`, cause)
    )
  )

/**
 * The service without its fibers: `trigger` only queues a request (nothing
 * runs it until `run` is forked). Used by `layer`; exposed for embedders
 * that schedule cleanup themselves.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<
  { readonly cleanup: CleanupShape; readonly runTriggered: Effect.Effect<never> },
  never,
  CacheStore | Exporter | Metrics | CacheEvents
> = Effect.gen(function*() {
  const store = yield* CacheStore
  const exporter = yield* Exporter
  const metrics = yield* Metrics
  const events = yield* CacheEvents
  // One pending request at most: a trigger while one is pending is merged
  // into it (the run reads the store's state when it starts, so it covers
  // both). `dropping`, not `sliding`: the pending one is as good as the new.
  const requests = yield* Queue.dropping<void>(1)
  // enforce runs one at a time: the interval fiber and the trigger fiber
  // would otherwise plan from the same state and race to evict.
  const lock = yield* Effect.makeSemaphore(1)

  const enforce = lock.withPermits(1)(store.enforce)

  const check = (entry: { readonly key: Parameters<typeof store.pathOf>[0] }) =>
    Effect.gen(function*() {
      const result = yield* exporter.verify(store.pathOf(entry.key))
      if (result._tag === "Valid") {
        yield* store.markValidated(entry.key, "valid")
        yield* metrics.validation(true)
        return "valid" as const
      }
      yield* metrics.validation(false)
      yield* events.publish(new EntryInvalid({ key: entry.key, reason: result.reason }))
      yield* store.markValidated(entry.key, "invalid")
      const removed = yield* store.remove(entry.key, "invalid")
      return removed ? "removed" as const : "gone" as const
    })

  const sweep: Effect.Effect<SweepResult, CacheIOError> = Effect.gen(function*() {
    const entries = yield* store.list
    let checked = 0
    let valid = 0
    let removed = 0
    for (const entry of entries) {
      // One broken entry (an I/O error while removing it) must not stop
      // the sweep of the others.
      const outcome = yield* check(entry).pipe(
        Effect.catchAll((error) =>
          Effect.as(Effect.logWarning(`rallycache validation of ${entry.key} failed: ${error.message}`), "error" as const)
        )
      )
      checked++
      if (outcome === "valid") valid++
      else if (outcome === "removed") removed++
    }
    return { checked, valid, removed }
  })

  const cleanup: CleanupShape = {
    trigger: Effect.asVoid(Queue.offer(requests, undefined)),
    enforce,
    sweep
  }
  const runTriggered = Queue.take(requests).pipe(
    Effect.zipRight(logFailure("triggered cleanup")(enforce)),
    Effect.forever
  )
  return { cleanup, runTriggered }
})

/**
 * `Cleanup` with its fibers, in the layer's scope:
 *
 * - the trigger fiber, which runs the rules at once on `trigger` (and once
 *   when the layer starts, so a restart with lower limits applies them);
 * - the rules every `cleanupInterval` (the first run one interval after
 *   start);
 * - the validation sweep every `validationInterval` (the first one interval
 *   after start).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Cleanup, never, CacheStore | Exporter | Metrics | CacheEvents | CacheConfig> = Layer
  .scoped(
    Cleanup,
    Effect.gen(function*() {
      const config = yield* CacheConfig
      const { cleanup, runTriggered } = yield* make
      yield* Effect.forkScoped(runTriggered)
      yield* Effect.forkScoped(
        logFailure("scheduled cleanup")(cleanup.enforce).pipe(Effect.schedule(Schedule.spaced(config.cleanupInterval)))
      )
      yield* Effect.forkScoped(
        logFailure("validation sweep")(cleanup.sweep).pipe(Effect.schedule(Schedule.spaced(config.validationInterval)))
      )
      yield* cleanup.trigger
      return cleanup
    })
  )
