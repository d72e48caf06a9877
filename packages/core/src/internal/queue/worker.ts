/**
 * The queue's worker fibers.
 *
 * A worker takes the best job, runs it inside its own fiber (no fiber per
 * job), settles it and takes the next. Cancelling or preempting a running
 * job interrupts its worker: the run's `onExit` settles the job once the
 * job's finalizers have run, and the pool grows back with a new worker.
 * Workers and backoff timers are forked into the queue's `FiberSet`, so
 * closing the queue's scope ends them all.
 *
 * @internal
 */
import { Cause, Clock, Deferred, Effect, Exit, FiberId, FiberSet, ScheduleDecision, ScheduleIntervals, SubscriptionRef } from "effect"
import type { Schedule } from "effect"
import type { JobContext } from "../../ExportQueue.js"
import { type Job, priorityOf, type Worker } from "./job.js"
import type { Scheduler } from "./scheduler.js"

/** What the workers share. @internal */
export interface Workers<A, E> {
  readonly scheduler: Scheduler<A, E>
  readonly fibers: FiberSet.FiberSet<void>
  readonly retry: Schedule.Schedule<unknown, unknown> | undefined
  readonly isTransient: (error: E) => boolean
  /** Outside `suspend` mode nothing pauses a job: every run shares this flag. */
  readonly neverPaused: SubscriptionRef.SubscriptionRef<boolean>
}

const contextFor = <A, E>(workers: Workers<A, E>, job: Job<A, E>): Effect.Effect<JobContext> => {
  if (workers.scheduler.preemption !== "suspend") {
    return Effect.succeed({ attempt: job.attempt, paused: workers.neverPaused, confirmPaused: Effect.void })
  }
  const confirmPaused = Effect.suspend(() =>
    job.stopped === undefined ? Effect.void : Effect.asVoid(Deferred.succeed(job.stopped, undefined))
  )
  if (job.paused !== undefined) return Effect.succeed({ attempt: job.attempt, paused: job.paused, confirmPaused })
  // Preemption may have paused the job between its hand-over and now.
  return Effect.map(Effect.suspend(() => SubscriptionRef.make(job.phase === "paused")), (paused) => {
    job.paused = paused
    return { attempt: job.attempt, paused, confirmPaused }
  })
}

const start = <A, E>(workers: Workers<A, E>, job: Job<A, E>): Effect.Effect<A, E> => {
  const scheduler = workers.scheduler
  const body = Effect.flatMap(contextFor(workers, job), (context) => {
    try {
      return job.spec.run(context)
    } catch (defect) {
      return Effect.die(defect)
    }
  })
  if (scheduler.onEvent === undefined) return body
  return Effect.flatMap(Clock.currentTimeMillis, (now) => {
    job.startedAt = now
    scheduler.emit({ _tag: "Started", job: job.spec, priority: priorityOf(job.rank), attempt: job.attempt })
    return Effect.zipRight(scheduler.flush, body)
  })
}

/** After a run: settle it, or ask the retry schedule whether and when to run it again. */
const afterRun = <A, E>(
  workers: Workers<A, E>,
  worker: Worker<A, E>,
  job: Job<A, E>,
  exit: Exit.Exit<A, E>
): Effect.Effect<void> => {
  const scheduler = workers.scheduler
  // Settled already (the worker ended before its run began).
  if (worker.job !== job) return Effect.void
  // The common case stays synchronous: nothing to time, nothing to retry.
  if (Exit.isSuccess(exit) && scheduler.onEvent === undefined) {
    scheduler.settle(worker, job, exit, 0)
    return scheduler.flush
  }
  return Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const failure = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : undefined
    const retry = workers.retry
    if (
      retry === undefined || failure === undefined || failure._tag === "None" || scheduler.closed ||
      job.after !== "none" || !workers.isTransient(failure.value)
    ) {
      scheduler.settle(worker, job, exit, now)
      return scheduler.flush
    }
    const error = failure.value
    const state = job.retryState === undefined ? retry.initial : job.retryState.value
    return Effect.flatMap(retry.step(now, error, state), ([next, , decision]) => {
      // A cancel or shutdown may have come while the schedule was stepping.
      if (scheduler.closed || job.after !== "none" || ScheduleDecision.isDone(decision)) {
        scheduler.settle(worker, job, exit, now)
        return scheduler.flush
      }
      job.retryState = { value: next }
      scheduler.backOff(worker, job, error)
      const delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
      // Forked from the run's `onExit`, which is uninterruptible: the timer must not be.
      const timer = Effect.zipRight(
        Effect.sleep(delay),
        Effect.suspend(() => {
          scheduler.backoffEnded(job)
          return scheduler.flush
        })
      )
      return Effect.zipRight(
        scheduler.flush,
        Effect.flatMap(FiberSet.run(workers.fibers, Effect.interruptible(timer)), (fiber) =>
          Effect.sync(() => {
            if (job.phase === "backoff") job.timer = fiber
          }))
      )
    })
  })
}

/** A worker's life: take the best job, run it, settle it, repeat. @internal */
export const workerLoop = <A, E>(workers: Workers<A, E>, worker: Worker<A, E>): Effect.Effect<void> => {
  const scheduler = workers.scheduler

  const run = (job: Job<A, E>): Effect.Effect<void> =>
    Effect.zipRight(
      scheduler.preemption === "suspend" ? Effect.zipRight(scheduler.flush, scheduler.awaitPaused) : scheduler.flush,
      Effect.exit(Effect.onExit(
        scheduler.preemption === "suspend" ? Effect.zipRight(scheduler.untilResumed(job), start(workers, job)) : start(workers, job),
        (exit) => afterRun(workers, worker, job, exit)
      ))
    )

  const waitForWork: Effect.Effect<void> = Effect.flatMap(Deferred.make<void>(), (wake) =>
    Effect.suspend(() => {
      // Look again: work may have come while the deferred was made.
      const job = scheduler.take(worker)
      if (job === null) return Effect.void
      if (job !== undefined) return Effect.zipRight(run(job), loop)
      worker.wake = wake
      if (!worker.available) {
        worker.available = true
        scheduler.idle.push(worker)
      }
      return Effect.zipRight(Deferred.await(wake), loop)
    }))

  const loop: Effect.Effect<void> = Effect.suspend(() => {
    const job = scheduler.take(worker)
    if (job === null) return scheduler.flush
    if (job === undefined) return Effect.zipRight(scheduler.flush, waitForWork)
    return Effect.zipRight(run(job), loop)
  })

  return Effect.onExit(Effect.interruptible(loop), () =>
    Effect.suspend(() => {
      // Ended while it held a job whose run never began: settle it now.
      const job = worker.job
      if (job !== undefined) scheduler.settle(worker, job, Exit.interrupt(FiberId.none), 0)
      scheduler.workerEnded(worker)
      return scheduler.flush
    }))
}
