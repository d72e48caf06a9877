/**
 * The export queue: per-priority first-in first-out lists, a pool of worker
 * fibers forked in the queue's scope, and a waiting point per job.
 *
 * The bookkeeping lives in `Scheduler` (synchronous, so atomic), the fibers
 * in `worker.ts`; this module holds the operations and the shutdown.
 *
 * @internal
 */
import { Effect, Exit, Fiber, FiberSet, type Scope, SubscriptionRef } from "effect"
import type { CacheKey, Priority } from "../../Domain.js"
import { ExportCancelled, isTransient as defaultIsTransient } from "../../Errors.js"
import type { ExportJob, ExportQueue, JobState, Options, QueueStatus } from "../../ExportQueue.js"
import { Job, priorityOf, rankOf, type Worker } from "./job.js"
import { Scheduler } from "./scheduler.js"
import { workerLoop, type Workers } from "./worker.js"

/** A queued job moves to the back of its new priority; a running one only records it. */
const reprioritize = <A, E>(scheduler: Scheduler<A, E>, job: Job<A, E>, rank: number): void => {
  if (job.rank === rank) return
  if (job.phase === "queued") {
    scheduler.queued[job.rank]!.remove(job)
    job.rank = rank
    scheduler.queued[rank]!.pushBack(job)
  } else if (job.phase === "paused") {
    const list = scheduler.pausedJobs[job.rank]!
    list.splice(list.indexOf(job), 1)
    job.rank = rank
    scheduler.pausedJobs[rank]!.push(job)
  } else {
    job.rank = rank
  }
  scheduler.emit({ _tag: "Reprioritized", job: job.spec, priority: priorityOf(rank) })
}

const statusOf = <A, E>(scheduler: Scheduler<A, E>): QueueStatus => {
  const owned: Array<Job<A, E>> = []
  for (const worker of scheduler.workers) if (worker.job !== undefined) owned.push(worker.job)
  owned.sort((a, b) => a.startedSeq - b.startedSeq)
  const retrying: Array<{ key: CacheKey; priority: Priority; attempt: number }> = []
  for (const job of scheduler.backoff) {
    retrying.push({ key: job.key, priority: priorityOf(job.rank), attempt: job.attempt })
  }
  return {
    queued: { high: scheduler.queued[0].keys(), normal: scheduler.queued[1].keys(), low: scheduler.queued[2].keys() },
    running: owned.map((job) => ({ key: job.key, priority: priorityOf(job.rank), paused: job.phase === "paused" })),
    retrying,
    completed: scheduler.completed,
    failed: scheduler.failed,
    cancelled: scheduler.cancelled
  }
}

/** @internal */
export const make = <A, E>(
  options: Options<E> = {}
): Effect.Effect<ExportQueue<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const fibers = yield* FiberSet.make<void>()
    const neverPaused = yield* SubscriptionRef.make(false)

    const startWorker = (worker: Worker<A, E>): Effect.Effect<void> =>
      // Forked uninterruptible, so that an interruption that comes before the
      // fiber first runs still finds the worker's `onExit` in place (the loop
      // itself is interruptible).
      Effect.uninterruptible(
        Effect.flatMap(FiberSet.run(fibers, workerLoop(workers, worker)), (fiber) =>
          Effect.sync(() => {
            worker.fiber = fiber
          }))
      )
    const interruptWorker = (worker: Worker<A, E>): Effect.Effect<void> =>
      Effect.suspend(() => worker.fiber === undefined ? Effect.void : Fiber.interruptFork(worker.fiber))

    const scheduler = new Scheduler<A, E>(
      Math.max(1, Math.floor(options.concurrency ?? 2)),
      options.preemption ?? "interrupt",
      options.onEvent,
      startWorker,
      interruptWorker
    )
    const workers: Workers<A, E> = {
      scheduler,
      fibers,
      retry: options.retry,
      isTransient: options.isTransient ?? defaultIsTransient,
      neverPaused
    }
    const { flush } = scheduler

    const enqueue = (spec: ExportJob<A, E>): Effect.Effect<Effect.Effect<A, E | ExportCancelled>> => {
      if (scheduler.closed) return Effect.succeed(Effect.fail(new ExportCancelled({ key: spec.key })))
      const rank = rankOf(spec.priority)
      const existing = scheduler.byKey.get(spec.key)
      if (existing !== undefined) return join(existing, rank)
      const job = new Job(spec, rank)
      scheduler.byKey.set(spec.key, job)
      scheduler.queued[rank]!.pushBack(job)
      scheduler.emit({ _tag: "Queued", job: spec, priority: spec.priority })
      scheduler.dispatch()
      return scheduler.pending.length === 0 ? Effect.succeed(job.wait) : Effect.as(flush, job.wait)
    }

    /** A submit of a key already queued or running joins its job. */
    const join = (job: Job<A, E>, rank: number): Effect.Effect<Effect.Effect<A, E | ExportCancelled>> => {
      if (job.after === "cancel") {
        // Its run is still ending after a cancel (whose waiters have been
        // answered): run it again once it has ended.
        job.after = "requeue-back"
        job.rank = rank
      } else if (rank < job.rank) {
        reprioritize(scheduler, job, rank)
        scheduler.dispatch()
      }
      return Effect.as(flush, job.wait)
    }

    const submit = (spec: ExportJob<A, E>): Effect.Effect<Effect.Effect<A, E | ExportCancelled>> =>
      Effect.suspend(() => enqueue(spec))

    const setPriority = (key: CacheKey, priority: Priority): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const job = scheduler.byKey.get(key)
        if (job === undefined || scheduler.closed) return Effect.succeed(false)
        reprioritize(scheduler, job, rankOf(priority))
        scheduler.dispatch()
        return Effect.as(flush, true)
      })

    const cancel = (key: CacheKey): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const job = scheduler.byKey.get(key)
        if (job === undefined || scheduler.closed) return Effect.succeed(false)
        switch (job.phase) {
          case "queued": {
            scheduler.queued[job.rank]!.remove(job)
            scheduler.finishCancelled(job, "cancelled")
            return Effect.as(flush, true)
          }
          case "backoff": {
            scheduler.backoff.delete(job)
            if (job.timer !== undefined) scheduler.pending.push(Fiber.interrupt(job.timer))
            job.timer = undefined
            scheduler.finishCancelled(job, "cancelled")
            return Effect.as(flush, true)
          }
          default: {
            // Running or paused: waiters learn now; the key stays taken until
            // the run has really ended, so no second run can overlap it.
            job.answer(Exit.fail(new ExportCancelled({ key })))
            job.after = "cancel"
            // A paused run stays paused while it is interrupted: a stopped
            // process is ended as it stands, not continued beside the others.
            if (job.phase === "paused") scheduler.unpause(job, false)
            const worker = job.worker!
            return Effect.zipRight(
              flush,
              Effect.suspend(() => worker.fiber === undefined ? Effect.void : Fiber.interrupt(worker.fiber)).pipe(
                Effect.as(true)
              )
            )
          }
        }
      })

    const state = (key: CacheKey): Effect.Effect<JobState | undefined> =>
      Effect.sync(() => {
        const job = scheduler.byKey.get(key)
        if (job === undefined || job.phase === "done") return undefined
        return {
          phase: job.phase === "backoff" ? "retrying" : job.phase,
          priority: priorityOf(job.rank),
          attempt: job.attempt
        }
      })

    // Shutdown: fail what waits, then interrupt the workers and timers; a
    // running job is settled as cancelled by its worker as the run ends.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        scheduler.closed = true
        for (const list of scheduler.queued) {
          while (list.head !== undefined) {
            const job = list.head
            list.remove(job)
            scheduler.finishCancelled(job, "shutdown")
          }
        }
        for (const job of scheduler.backoff) scheduler.finishCancelled(job, "shutdown")
        scheduler.backoff.clear()
        return Effect.zipRight(flush, Effect.zipRight(FiberSet.clear(fibers), flush))
      })
    )

    scheduler.spawnWorkers()
    yield* flush

    const depth = Effect.sync(() => {
      let running = 0
      for (const worker of scheduler.workers) if (worker.job !== undefined) running++
      // A job in backoff waits too.
      const waiting = [scheduler.queued[0].size, scheduler.queued[1].size, scheduler.queued[2].size]
      for (const job of scheduler.backoff) waiting[job.rank]!++
      return { high: waiting[0]!, normal: waiting[1]!, low: waiting[2]!, running }
    })

    return { submit, setPriority, cancel, state, depth, status: Effect.sync(() => statusOf(scheduler)) }
  })
