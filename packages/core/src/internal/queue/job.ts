/**
 * A job of the queue and a worker of its pool, as the scheduler books them.
 *
 * @internal
 */
import { type Deferred, Effect, type Exit, type Fiber, type SubscriptionRef } from "effect"
import type { CacheKey } from "../../Domain.js"
import type { ExportCancelled } from "../../Errors.js"
import type { ExportJob } from "../../ExportQueue.js"

/** @internal */
export { priorityAt as priorityOf, priorityRank as rankOf } from "../../Domain.js"

/** What to do with a running job once its interrupted run has ended. @internal */
export type After = "none" | "cancel" | "requeue-front" | "requeue-back"

/** @internal */
export class Job<A, E> {
  prev: Job<A, E> | undefined = undefined
  next: Job<A, E> | undefined = undefined
  phase: "queued" | "running" | "paused" | "backoff" | "done" = "queued"
  after: After = "none"
  attempt = 1
  worker: Worker<A, E> | undefined = undefined
  holdsSlot = false
  startedSeq = 0
  startedAt = 0
  retryState: { readonly value: unknown } | undefined = undefined
  timer: Fiber.RuntimeFiber<void> | undefined = undefined
  paused: SubscriptionRef.SubscriptionRef<boolean> | undefined = undefined
  /** While paused: completed once the job has confirmed that its work stopped. */
  stopped: Deferred.Deferred<void> | undefined = undefined
  /** Whether this run's body has begun: a job paused before that has nothing to stop. */
  began = false
  /** While paused before its body began: completed when it may begin. */
  resumed: Deferred.Deferred<void> | undefined = undefined

  /** Set once the job is over; an `Exit` is itself the effect that replays it. */
  exit: Exit.Exit<A, E | ExportCancelled> | undefined = undefined
  waiters: Array<(exit: Exit.Exit<A, E | ExportCancelled>) => void> | undefined = undefined

  constructor(readonly spec: ExportJob<A, E>, public rank: number) {}

  get key(): CacheKey {
    return this.spec.key
  }

  /**
   * The job's waiting point: its `Exit` once it is over, else a callback
   * that the end of the job answers. A `Deferred` per job would do the same
   * at twice the cost of the whole submit (see the bench README).
   */
  readonly wait: Effect.Effect<A, E | ExportCancelled> = Effect.suspend(() =>
    this.exit ?? Effect.async<A, E | ExportCancelled>((resume) => {
      if (this.exit !== undefined) return resume(this.exit)
      const waiters = this.waiters ?? (this.waiters = [])
      waiters.push(resume)
      // An interrupted waiter leaves; the job goes on.
      return Effect.sync(() => {
        const i = this.waiters?.indexOf(resume) ?? -1
        if (i >= 0) this.waiters!.splice(i, 1)
      })
    })
  )

  /** Answer everyone waiting now (a cancel answers before the run has ended). */
  answer(exit: Exit.Exit<A, E | ExportCancelled>): void {
    const waiters = this.waiters
    if (waiters === undefined) return
    this.waiters = undefined
    for (let i = 0; i < waiters.length; i++) waiters[i]!(exit)
  }
}

/** @internal */
export interface Worker<A, E> {
  fiber: Fiber.RuntimeFiber<void> | undefined
  /** Completed to wake the worker while it waits for work. */
  wake: Deferred.Deferred<void> | undefined
  /** The job handed to this worker and not yet settled. */
  job: Job<A, E> | undefined
  /** In the idle list: free to be handed a job. */
  available: boolean
}
