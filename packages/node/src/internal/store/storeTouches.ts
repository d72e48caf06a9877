/**
 * Touch batching for the disk cache store: a hit only notes its time in
 * memory, and a flusher writes the batch to the journal (under the index
 * lock) a `touchFlushInterval` after the first touch, so a hit never waits
 * for the disk or the lock.
 *
 * @internal
 */
import type { Domain, Errors } from "@rallycache/core"
import { Clock, Effect, Queue } from "effect"
import type { Scope } from "effect"
import type { StoreContext } from "./storeContext.js"
import * as Journal from "./storeJournal.js"

type CacheKey = Domain.CacheKey

export interface Touches {
  /** Write batched touches to the journal now. */
  readonly flush: Effect.Effect<void, Errors.CacheIOError>
  readonly touch: (key: CacheKey) => Effect.Effect<void>
}

/** The touch batcher of a store; its flusher runs in the scope. */
export const makeTouches = (ctx: StoreContext): Effect.Effect<Touches, never, Scope.Scope> =>
  Effect.gen(function*() {
    const { appendLocked, dirs, fs, index, options, withIndexLock } = ctx
    const pendingTouches = new Map<CacheKey, number>()

    const flush: Effect.Effect<void, Errors.CacheIOError> = Effect.suspend(() => {
      if (pendingTouches.size === 0) return Effect.void
      const batch = Array.from(pendingTouches)
      pendingTouches.clear()
      return withIndexLock("touch", () => {
        Journal.refresh(fs, dirs.journal, index)
        const records: Array<Journal.JournalRecord> = []
        for (const [k, t] of batch) if (index.entries.has(k)) records.push({ o: "t", k, t })
        appendLocked(records)
      })
    })

    // The flusher sleeps until the first touch after a flush, so an idle store
    // has no timer (and a TestClock jump of days runs one flush, not one per second).
    const touched = yield* Queue.sliding<void>(1)
    yield* Queue.take(touched).pipe(
      Effect.zipRight(Effect.sleep(options.touchFlushInterval ?? "1 second")),
      Effect.zipRight(flush),
      Effect.catchAll((error) => Effect.logWarning(`rallycache: touches not saved: ${error.message}`)),
      Effect.forever,
      Effect.forkScoped
    )

    const touch = (key: CacheKey): Effect.Effect<void> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.suspend(() => {
          if (!index.touchLocal(key, now)) return Effect.void
          const first = pendingTouches.size === 0
          pendingTouches.set(key, now)
          // The first touch of a batch wakes the flusher.
          return first ? Effect.asVoid(Queue.offer(touched, undefined)) : Effect.void
        }))

    return { flush, touch }
  })
