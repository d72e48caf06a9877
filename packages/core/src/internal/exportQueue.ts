/**
 * The export queue's engine.
 *
 * Design, and why:
 *
 * - All bookkeeping is plain mutable state changed in synchronous sections.
 *   JavaScript runs one fiber at a time, so a synchronous section is atomic;
 *   this avoids a `Ref`/`Deferred` round trip per job, which is what makes a
 *   straightforward Effect scheduler cost ~15 µs/job here.
 * - One intrusive doubly-linked list per priority: O(1) push back, push
 *   front (re-queue of a preempted or retried job), removal (cancel,
 *   re-prioritise) and pop. Nothing is ever shifted or spliced, so the cost
 *   per job does not grow with the backlog (p-queue's does).
 * - A fixed pool of `concurrency` worker fibers (plus one per suspended job
 *   in `suspend` mode). The slot count (`active`) is the semaphore: a job
 *   starts only while `active < concurrency`. It is a counter rather than an
 *   Effect `Semaphore` because the queue itself must decide *which* job gets
 *   a freed slot (strict priority, resumed jobs first), and because a
 *   `Semaphore` in Effect 3.22 wakes every waiter on each release.
 * - A job runs inside its worker fiber: no fiber per job. Cancelling or
 *   preempting a running job interrupts its worker; once that fiber has
 *   ended (with the job's finalizers), its observer settles the job and a
 *   fresh worker replaces it (supervision; a defect in a job does not even
 *   get that far: it fails the job and the worker goes on). Interruptions
 *   are rare next to the number of jobs, so the common path stays cheap.
 * - The job record is itself the effect that waits for its result
 *   (`Effectable.Class`); waiters are `Effect.async` callbacks completed
 *   with the job's `Exit`. No `Deferred`, and nothing allocated to wait for
 *   a job that is already done.
 * - Retry: a job waiting for its next attempt gives its slot back and waits
 *   on a timer, then goes to the front of its priority. Backoff delays reach
 *   seconds; holding one of two ffmpeg slots idle that long (say, while a
 *   full disk clears) would stall every other clip for nothing.
 *
 * @internal
 */
import {
  Cause,
  Effect,
  Effectable,
  Exit,
  Fiber,
  FiberId,
  Runtime,
  ScheduleDecision,
  ScheduleIntervals,
  type Scope,
  SubscriptionRef
} from "effect"
import type { CacheKey, Priority } from "../Domain.js"
import { ExportCancelled, isTransient as defaultIsTransient } from "../Errors.js"
import type { ExportJob, ExportQueue, JobContext, Options, QueueEvent, QueueStatus } from "../ExportQueue.js"

const rankOf = (priority: Priority): number => priority === "high" ? 0 : priority === "normal" ? 1 : 2
const priorityOf = (rank: number): Priority => rank === 0 ? "high" : rank === 1 ? "normal" : "low"

type JobState = "queued" | "running" | "suspended" | "backoff" | "done"

/** What to do with a running job once its interrupted run has ended. */
type After = "none" | "cancel" | "requeue-front" | "requeue-back"

type Waiter<A, E> = (exit: Exit.Exit<A, E | ExportCancelled>) => void

class JobExtra {
  endWaiters: Array<() => void> | undefined = undefined
  retryState: unknown = undefined
  hasRetryState = false
  startedAt = 0
  timer: Fiber.RuntimeFiber<void> | undefined = undefined
  paused: SubscriptionRef.SubscriptionRef<boolean> | undefined = undefined
}

const extraOf = <A, E>(job: Job<A, E>): JobExtra => job.extra ?? (job.extra = new JobExtra())

/**
 * A job, and the effect that waits for its result: `submit` hands out the job
 * itself, so waiting costs no allocation per job.
 */
class Job<A, E> extends Effectable.Class<A, E | ExportCancelled> {
  prev: Job<A, E> | undefined = undefined
  next: Job<A, E> | undefined = undefined
  state: JobState = "queued"
  after: After = "none"
  waiters: Array<Waiter<A, E>> | undefined = undefined
  exit: Exit.Exit<A, E | ExportCancelled> | undefined = undefined
  attempt = 1
  worker: Worker<A, E> | undefined = undefined
  holdsSlot = false
  startedSeq = 0
  /** Rarely needed state, apart to keep the many queued jobs small. */
  extra: JobExtra | undefined = undefined

  constructor(readonly job: ExportJob<A, E>, public rank: number) {
    super()
  }

  get key(): CacheKey {
    return this.job.key
  }

  commit(): Effect.Effect<A, E | ExportCancelled> {
    return this.exit ?? this.wait()
  }

  private wait(): Effect.Effect<A, E | ExportCancelled> {
    return Effect.async<A, E | ExportCancelled>((resume) => {
      if (this.exit !== undefined) return resume(this.exit)
      const waiters = this.waiters ?? (this.waiters = [])
      waiters.push(resume)
      return Effect.sync(() => {
        const current = this.waiters
        if (current === undefined) return
        const i = current.indexOf(resume)
        if (i >= 0) current.splice(i, 1)
      })
    })
  }
}

class JobList<A, E> {
  head: Job<A, E> | undefined = undefined
  tail: Job<A, E> | undefined = undefined
  size = 0

  pushBack(job: Job<A, E>): void {
    job.next = undefined
    job.prev = this.tail
    if (this.tail === undefined) this.head = job
    else this.tail.next = job
    this.tail = job
    this.size++
  }

  pushFront(job: Job<A, E>): void {
    job.prev = undefined
    job.next = this.head
    if (this.head === undefined) this.tail = job
    else this.head.prev = job
    this.head = job
    this.size++
  }

  remove(job: Job<A, E>): void {
    if (job.prev === undefined) this.head = job.next
    else job.prev.next = job.next
    if (job.next === undefined) this.tail = job.prev
    else job.next.prev = job.prev
    job.prev = undefined
    job.next = undefined
    this.size--
  }

  keys(): Array<CacheKey> {
    const out: Array<CacheKey> = []
    for (let job = this.head; job !== undefined; job = job.next) out.push(job.key)
    return out
  }
}

interface Worker<A, E> {
  fiber: Fiber.RuntimeFiber<void> | undefined
  /** Resumes the worker while it waits for work. */
  wake: ((effect: Effect.Effect<void>) => void) | undefined
  /** The job handed to this worker and not yet settled. */
  job: Job<A, E> | undefined
  /** In `idle`: free to be handed a job (it may not have started yet). */
  available: boolean
  /** Interrupted on purpose: ends after settling its job and is replaced. */
  doomed: boolean
}

const ignoreDefects = (effect: Effect.Effect<void>): Effect.Effect<void> =>
  Effect.catchAllCause(effect, (cause) => Effect.logWarning("rallycache: an ExportQueue onEvent handler failed", cause))

/** @internal */
export const make = <A, E>(
  options: Options<E> = {}
): Effect.Effect<ExportQueue<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const concurrency = Math.max(1, Math.floor(options.concurrency ?? 2))
    const preemption = options.preemption ?? "interrupt"
    const retry = options.retry
    const isTransient: (error: E) => boolean = options.isTransient ?? defaultIsTransient
    const onEvent = options.onEvent
    const runtime = yield* Effect.runtime<never>()
    const clock = yield* Effect.clock
    // Outside `suspend` mode nothing ever pauses a job, so every run shares
    // one ref that stays `false` instead of paying for a PubSub per job.
    const neverPaused = yield* SubscriptionRef.make(false)
    const firstAttempt: JobContext = { attempt: 1, paused: neverPaused }

    const lists: ReadonlyArray<JobList<A, E>> = [new JobList(), new JobList(), new JobList()]
    const suspended: ReadonlyArray<Array<Job<A, E>>> = [[], [], []]
    const byKey = new Map<string, Job<A, E>>()
    const backoff = new Set<Job<A, E>>()
    const workers = new Set<Worker<A, E>>()
    const idle: Array<Worker<A, E>> = []
    let active = 0
    let suspendedCount = 0
    let startSeq = 0
    let completed = 0
    let failed = 0
    let cancelled = 0
    let closed = false
    let pending: Array<Effect.Effect<void>> = []

    // ---- effects produced by synchronous sections -------------------------

    const emit = (event: QueueEvent): void => {
      if (onEvent !== undefined) pending.push(ignoreDefects(Effect.suspend(() => onEvent(event))))
    }

    /** Run what the synchronous sections queued (events, pause flags). */
    const flush = (): Effect.Effect<void> => {
      if (pending.length === 0) return Effect.void
      const batch = pending
      pending = []
      return Effect.forEach(batch, (effect) => effect, { discard: true })
    }

    /** For callbacks that run outside any fiber of ours. */
    const flushDetached = (): void => {
      if (pending.length > 0) Runtime.runFork(runtime, flush(), { immediate: false })
    }

    // ---- completion ---------------------------------------------------------

    const cancelledExit = (job: Job<A, E>): Exit.Exit<A, E | ExportCancelled> =>
      Exit.fail(new ExportCancelled({ key: job.key }))

    const failWaiters = (job: Job<A, E>, exit: Exit.Exit<A, E | ExportCancelled>): void => {
      const waiters = job.waiters
      if (waiters === undefined) return
      job.waiters = undefined
      for (let i = 0; i < waiters.length; i++) waiters[i]!(exit)
    }

    const finish = (job: Job<A, E>, exit: Exit.Exit<A, E | ExportCancelled>): void => {
      job.state = "done"
      job.exit = exit
      if (byKey.get(job.key) === job) byKey.delete(job.key)
      failWaiters(job, exit)
    }

    const finishCancelled = (job: Job<A, E>, reason: "cancelled" | "shutdown"): void => {
      cancelled++
      finish(job, cancelledExit(job))
      emit({ _tag: "Cancelled", job: job.job, reason })
    }

    // ---- workers ------------------------------------------------------------

    const targetWorkers = (): number => concurrency + suspendedCount

    const spawnWorker = (): void => {
      // Available before its fiber first runs, so that a job submitted
      // right after `make` takes a free slot at once.
      const worker: Worker<A, E> = { fiber: undefined, wake: undefined, job: undefined, available: true, doomed: false }
      workers.add(worker)
      idle.push(worker)
      const fiber = Runtime.runFork(runtime, workerLoop(worker), { immediate: false })
      worker.fiber = fiber
      fiber.addObserver(() => onWorkerEnd(worker))
    }

    const onWorkerEnd = (worker: Worker<A, E>): void => {
      workers.delete(worker)
      unidle(worker)
      const job = worker.job
      if (job !== undefined) {
        // Died between being handed a job and settling it: settle it now.
        settle(worker, job, Exit.interrupt(FiberId.none))
      }
      // On shutdown the finalizer flushes, so that no fiber outlives it.
      if (closed) return
      while (workers.size < targetWorkers()) spawnWorker()
      dispatch()
      flushDetached()
    }

    const unidle = (worker: Worker<A, E>): void => {
      if (!worker.available) return
      worker.available = false
      const i = idle.indexOf(worker)
      if (i >= 0) idle.splice(i, 1)
    }

    const popIdle = (): Worker<A, E> | undefined => {
      // Longest idle first: workers then start in the order jobs were handed out.
      const worker = idle.shift()
      if (worker !== undefined) worker.available = false
      return worker
    }

    const wakeUp = (worker: Worker<A, E>): void => {
      const wake = worker.wake
      worker.wake = undefined
      wake?.(Effect.void)
    }

    const interruptWorker = (worker: Worker<A, E>): void => {
      worker.doomed = true
      worker.fiber?.unsafeInterruptAsFork(FiberId.none)
    }

    /** Wake idle workers beyond the pool's size so that they end. */
    const trimWorkers = (): void => {
      while (workers.size > targetWorkers() && idle.length > 0) wakeUp(popIdle()!)
    }

    // ---- scheduling ---------------------------------------------------------

    const assign = (worker: Worker<A, E>, job: Job<A, E>): void => {
      unidle(worker)
      lists[job.rank]!.remove(job)
      job.state = "running"
      job.worker = worker
      job.holdsSlot = true
      job.startedSeq = ++startSeq
      active++
      worker.job = job
    }

    const unsuspend = (job: Job<A, E>): void => {
      const list = suspended[job.rank]!
      list.splice(list.indexOf(job), 1)
      suspendedCount--
      job.state = "running"
    }

    const resume = (job: Job<A, E>): void => {
      unsuspend(job)
      job.holdsSlot = true
      job.startedSeq = ++startSeq
      active++
      const paused = job.extra?.paused
      if (paused !== undefined) pending.push(SubscriptionRef.set(paused, false))
      trimWorkers()
    }

    /**
     * The next job to give a slot to: by priority, and within a priority a
     * suspended job (it already holds a worker and has work done) before the
     * queued ones.
     */
    const nextRunnable = (): Job<A, E> | undefined => {
      for (let rank = 0; rank < 3; rank++) {
        const paused = suspended[rank]!
        if (paused.length > 0) return paused[0]
        const head = lists[rank]!.head
        if (head !== undefined) return head
      }
      return undefined
    }

    /** Hand free slots to waiting work, then consider preemption. */
    const dispatch = (): void => {
      if (closed) return
      while (active < concurrency) {
        const job = nextRunnable()
        if (job === undefined) break
        if (job.state === "suspended") {
          resume(job)
          continue
        }
        // Without an idle worker, a busy one pulls the job when it is done.
        const worker = popIdle()
        if (worker === undefined) break
        assign(worker, job)
        wakeUp(worker)
      }
      preempt()
    }

    /**
     * When high work waits and every slot runs low work, free one slot: the
     * low job started last (it has the least work to lose).
     */
    const preempt = (): void => {
      if (preemption === "off" || active < concurrency) return
      if (lists[0]!.size === 0 && suspended[0]!.length === 0) return
      let victim: Job<A, E> | undefined
      for (const worker of workers) {
        const job = worker.job
        if (job === undefined || !job.holdsSlot) continue
        // A slot is already being freed, or some slot runs work that matters.
        if (job.after !== "none" || job.rank !== 2) return
        if (victim === undefined || job.startedSeq > victim.startedSeq) victim = job
      }
      if (victim === undefined) return
      if (preemption === "interrupt") {
        victim.after = "requeue-front"
        interruptWorker(victim.worker!)
        return
      }
      victim.holdsSlot = false
      victim.state = "suspended"
      active--
      suspended[victim.rank]!.push(victim)
      suspendedCount++
      const paused = victim.extra?.paused
      if (paused !== undefined) pending.push(SubscriptionRef.set(paused, true))
      while (workers.size < targetWorkers()) spawnWorker()
      dispatch()
    }

    /**
     * The job a free worker takes next, `undefined` to wait, or `null` when
     * the worker must end (shut down, doomed, or more workers than needed).
     */
    const pick = (worker: Worker<A, E>): Job<A, E> | undefined | null => {
      if (closed || worker.doomed) return null
      if (worker.job !== undefined) return worker.job
      if (workers.size > targetWorkers()) return null
      while (active < concurrency) {
        const job = nextRunnable()
        if (job === undefined) return undefined
        if (job.state === "suspended") {
          resume(job)
          continue
        }
        assign(worker, job)
        return job
      }
      return undefined
    }

    // ---- running a job ------------------------------------------------------

    /** Book the end of a job's run (the worker no longer owns it). */
    const release = (worker: Worker<A, E>, job: Job<A, E>): void => {
      worker.job = undefined
      job.worker = undefined
      if (job.holdsSlot) {
        job.holdsSlot = false
        active--
      } else if (job.state === "suspended") {
        unsuspend(job)
      }
      // Those who cancelled the run learn that it has ended.
      const ends = job.extra?.endWaiters
      if (ends !== undefined) {
        job.extra!.endWaiters = undefined
        for (let i = 0; i < ends.length; i++) ends[i]!()
      }
    }

    const requeue = (job: Job<A, E>, front: boolean): void => {
      job.state = "queued"
      if (front) lists[job.rank]!.pushFront(job)
      else lists[job.rank]!.pushBack(job)
    }

    /** Settle a run that will not be retried. */
    const settle = (worker: Worker<A, E>, job: Job<A, E>, exit: Exit.Exit<A, E>): void => {
      release(worker, job)
      const after = job.after
      job.after = "none"
      if (closed) return finishCancelled(job, "shutdown")
      if (Exit.isSuccess(exit)) {
        completed++
        const millis = onEvent === undefined ? 0 : clock.unsafeCurrentTimeMillis() - (job.extra?.startedAt ?? 0)
        emit({ _tag: "Succeeded", job: job.job, priority: priorityOf(job.rank), millis })
        finish(job, exit)
      } else if (after === "requeue-front") {
        emit({ _tag: "Cancelled", job: job.job, reason: "preempted" })
        requeue(job, true)
      } else if (after === "requeue-back") {
        // Cancelled while running, then requested again before it ended.
        job.attempt = 1
        if (job.extra !== undefined) job.extra.hasRetryState = false
        requeue(job, false)
        emit({ _tag: "Queued", job: job.job, priority: priorityOf(job.rank) })
      } else if (after === "cancel" || Cause.isInterruptedOnly(exit.cause)) {
        finishCancelled(job, "cancelled")
      } else {
        failed++
        const error = Cause.failureOption(exit.cause)
        emit({
          _tag: "Failed",
          job: job.job,
          error: error._tag === "Some" ? error.value : Cause.squash(exit.cause),
          willRetry: false
        })
        finish(job, exit)
      }
      dispatch()
    }

    /** A transient failure with a schedule that continues: wait, then re-queue. */
    const scheduleRetry = (worker: Worker<A, E>, job: Job<A, E>, error: E, delay: number): void => {
      release(worker, job)
      job.after = "none"
      job.state = "backoff"
      job.attempt++
      backoff.add(job)
      emit({ _tag: "Failed", job: job.job, error, willRetry: true })
      const extra = extraOf(job)
      extra.timer = Runtime.runFork(
        runtime,
        Effect.zipRight(
          Effect.sleep(Math.max(0, delay)),
          Effect.suspend(() => {
            extra.timer = undefined
            if (job.state !== "backoff" || closed) return Effect.void
            backoff.delete(job)
            requeue(job, true)
            dispatch()
            return flush()
          })
        ),
        { immediate: false }
      )
      dispatch()
    }

    /** After a failed run: ask the retry schedule whether and when to retry. */
    const afterFailure = (worker: Worker<A, E>, job: Job<A, E>, exit: Exit.Failure<A, E>): Effect.Effect<void> => {
      const failure = Cause.failureOption(exit.cause)
      if (
        retry === undefined || closed || job.after !== "none" || failure._tag === "None" ||
        !isTransient(failure.value)
      ) {
        settle(worker, job, exit)
        return Effect.void
      }
      const error = failure.value
      const now = clock.unsafeCurrentTimeMillis()
      const state = job.extra?.hasRetryState ? job.extra.retryState : retry.initial
      return Effect.map(retry.step(now, error, state), ([next, , decision]) => {
        // A cancel or shutdown may have come while the schedule was stepping.
        if (closed || job.after !== "none" || ScheduleDecision.isDone(decision)) {
          settle(worker, job, exit)
          return
        }
        const extra = extraOf(job)
        extra.retryState = next
        extra.hasRetryState = true
        scheduleRetry(worker, job, error, ScheduleIntervals.start(decision.intervals) - now)
      })
    }

    const contextFor = (job: Job<A, E>): Effect.Effect<JobContext> => {
      if (preemption !== "suspend") {
        return Effect.succeed(job.attempt === 1 ? firstAttempt : { attempt: job.attempt, paused: neverPaused })
      }
      const existing = job.extra?.paused
      if (existing !== undefined) return Effect.succeed({ attempt: job.attempt, paused: existing })
      // Preemption may have paused the job between its hand-over and now.
      return Effect.map(Effect.suspend(() => SubscriptionRef.make(job.state === "suspended")), (paused) => {
        extraOf(job).paused = paused
        return { attempt: job.attempt, paused }
      })
    }

    /**
     * A worker's life: take the best job, run it, settle it, repeat.
     *
     * The loop is interruptible throughout, on purpose: interrupting the
     * worker is how a running job is cancelled or preempted. Whatever op the
     * interruption lands on, the job the worker holds is settled by
     * `onWorkerEnd` once the fiber (and so the job's finalizers) has ended,
     * and a new worker takes its place. Bookkeeping itself happens in
     * synchronous sections, which an interruption cannot split.
     */
    const workerLoop = (worker: Worker<A, E>): Effect.Effect<void> => {
      const waitForWork: Effect.Effect<void> = Effect.async<void>((wake) => {
        // The fiber may have yielded since `pick` found nothing: look again.
        if (
          worker.job !== undefined || closed || worker.doomed ||
          (active < concurrency && nextRunnable() !== undefined)
        ) return wake(Effect.void)
        worker.wake = wake
        if (!worker.available) {
          worker.available = true
          idle.push(worker)
        }
        return Effect.sync(() => {
          worker.wake = undefined
        })
      })

      // One set of handlers per worker (the job is `worker.job`), so that a
      // run allocates nothing but its own effect.
      const handlers = {
        onFailure: (cause: Cause.Cause<E>): Effect.Effect<void> =>
          Effect.zipRight(
            Effect.zipRight(
              afterFailure(worker, worker.job!, Exit.failCause(cause) as Exit.Failure<A, E>),
              Effect.suspend(flush)
            ),
            loop
          ),
        onSuccess: (value: A): Effect.Effect<void> => {
          // The common case stays synchronous: settle and take the next job.
          settle(worker, worker.job!, Exit.succeed(value))
          return pending.length === 0 ? next() : Effect.zipRight(flush(), loop)
        }
      }

      const runWith = (job: Job<A, E>, context: JobContext): Effect.Effect<void> => {
        let run: Effect.Effect<A, E>
        try {
          run = job.job.run(context)
        } catch (defect) {
          run = Effect.die(defect)
        }
        return Effect.matchCauseEffect(run, handlers)
      }

      const runJob = (job: Job<A, E>): Effect.Effect<void> => {
        if (onEvent === undefined && preemption !== "suspend") {
          return runWith(job, job.attempt === 1 ? firstAttempt : { attempt: job.attempt, paused: neverPaused })
        }
        if (onEvent !== undefined) {
          extraOf(job).startedAt = clock.unsafeCurrentTimeMillis()
          emit({ _tag: "Started", job: job.job, priority: priorityOf(job.rank), attempt: job.attempt })
        }
        return Effect.flatMap(Effect.zipRight(flush(), contextFor(job)), (context) => runWith(job, context))
      }

      const next = (): Effect.Effect<void> => {
        const job = pick(worker)
        if (job === null) return Effect.void
        if (job === undefined) return Effect.zipRight(waitForWork, loop)
        return runJob(job)
      }

      const loop: Effect.Effect<void> = Effect.suspend(next)

      return loop
    }

    // ---- public operations --------------------------------------------------

    const reprioritize = (job: Job<A, E>, rank: number): void => {
      if (job.rank === rank) return
      if (job.state === "queued") {
        lists[job.rank]!.remove(job)
        job.rank = rank
        lists[rank]!.pushBack(job)
      } else if (job.state === "suspended") {
        const list = suspended[job.rank]!
        list.splice(list.indexOf(job), 1)
        job.rank = rank
        suspended[rank]!.push(job)
      } else {
        job.rank = rank
      }
      emit({ _tag: "Reprioritized", job: job.job, priority: priorityOf(rank) })
    }

    const enqueue = (spec: ExportJob<A, E>): Effect.Effect<A, E | ExportCancelled> => {
      if (closed) return Effect.fail(new ExportCancelled({ key: spec.key }))
      const rank = rankOf(spec.priority)
      const existing = byKey.get(spec.key)
      if (existing !== undefined) {
        if (existing.after === "cancel") {
          // Its run is still ending after a cancel: run it again once it has.
          existing.after = "requeue-back"
          existing.rank = rank
        } else if (rank < existing.rank) {
          reprioritize(existing, rank)
          dispatch()
        }
        return existing
      }
      const job = new Job(spec, rank)
      byKey.set(spec.key, job)
      lists[rank]!.pushBack(job)
      if (onEvent !== undefined) emit({ _tag: "Queued", job: spec, priority: spec.priority })
      dispatch()
      return job
    }

    // Only events and pause flags produce effects; without them a submit is
    // one synchronous step.
    const submit: (spec: ExportJob<A, E>) => Effect.Effect<Effect.Effect<A, E | ExportCancelled>> =
      onEvent === undefined && preemption !== "suspend"
        ? (spec) => Effect.sync(() => enqueue(spec))
        : (spec) =>
          Effect.suspend(() => {
            const wait = enqueue(spec)
            return pending.length === 0 ? Effect.succeed(wait) : Effect.as(flush(), wait)
          })

    const setPriority = (key: CacheKey, priority: Priority): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const job = byKey.get(key)
        if (job === undefined || closed) return Effect.succeed(false)
        reprioritize(job, rankOf(priority))
        dispatch()
        return Effect.as(flush(), true)
      })

    const awaitEnd = (job: Job<A, E>): Effect.Effect<void> =>
      Effect.async<void>((done) => {
        if (job.worker === undefined) return done(Effect.void)
        const extra = extraOf(job)
        const ends = extra.endWaiters ?? (extra.endWaiters = [])
        const callback = () => done(Effect.void)
        ends.push(callback)
      })

    const cancel = (key: CacheKey): Effect.Effect<boolean> =>
      Effect.suspend(() => {
        const job = byKey.get(key)
        if (job === undefined || closed) return Effect.succeed(false)
        switch (job.state) {
          case "queued": {
            lists[job.rank]!.remove(job)
            finishCancelled(job, "cancelled")
            return Effect.as(flush(), true)
          }
          case "backoff": {
            backoff.delete(job)
            const extra = job.extra
            extra?.timer?.unsafeInterruptAsFork(FiberId.none)
            if (extra !== undefined) extra.timer = undefined
            finishCancelled(job, "cancelled")
            return Effect.as(flush(), true)
          }
          default: {
            // Running or suspended: waiters learn now; the key stays taken
            // until the run has really ended, so no second run can overlap.
            failWaiters(job, cancelledExit(job))
            if (job.after !== "cancel") {
              job.after = "cancel"
              if (job.state === "suspended") {
                // Not to be resumed any more; a stopped process must be
                // continued to handle its signal.
                unsuspend(job)
                const paused = job.extra?.paused
                if (paused !== undefined) pending.push(SubscriptionRef.set(paused, false))
              }
              pending.push(Effect.sync(() => interruptWorker(job.worker!)))
            }
            return Effect.zipRight(flush(), Effect.as(awaitEnd(job), true))
          }
        }
      })

    const status: Effect.Effect<QueueStatus> = Effect.sync(() => {
      const owned: Array<Job<A, E>> = []
      for (const worker of workers) if (worker.job !== undefined) owned.push(worker.job)
      owned.sort((a, b) => a.startedSeq - b.startedSeq)
      const runningStatus = owned.map((job) => ({
        key: job.key,
        priority: priorityOf(job.rank),
        paused: job.state === "suspended"
      }))
      const retrying: Array<{ key: CacheKey; priority: Priority; attempt: number }> = []
      for (const job of backoff) retrying.push({ key: job.key, priority: priorityOf(job.rank), attempt: job.attempt })
      return {
        queued: { high: lists[0]!.keys(), normal: lists[1]!.keys(), low: lists[2]!.keys() },
        running: runningStatus,
        retrying,
        completed,
        failed,
        cancelled
      }
    })

    // ---- shutdown -----------------------------------------------------------

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        for (const list of lists) {
          while (list.head !== undefined) {
            const job = list.head
            list.remove(job)
            finishCancelled(job, "shutdown")
          }
        }
        const fibers: Array<Fiber.RuntimeFiber<void>> = []
        for (const job of backoff) {
          const timer = job.extra?.timer
          if (timer !== undefined) fibers.push(timer)
          finishCancelled(job, "shutdown")
        }
        backoff.clear()
        for (const worker of workers) {
          worker.doomed = true
          if (worker.fiber !== undefined) fibers.push(worker.fiber)
        }
        // Running jobs are settled as cancelled by their workers as they end.
        return Effect.zipRight(Fiber.interruptAll(fibers), Effect.suspend(flush))
      })
    )

    for (let i = 0; i < concurrency; i++) spawnWorker()

    return { submit, setPriority, cancel, status }
  })
