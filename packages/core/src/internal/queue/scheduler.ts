/**
 * The queue's bookkeeping: which job holds which slot, which waits, and
 * which job a free slot goes to.
 *
 * Every method here is synchronous: JavaScript runs one fiber at a time, so
 * a synchronous section is atomic and needs no lock. What a decision must
 * make happen (wake or start a worker, set a pause flag, publish an event) is appended to `pending`, in order, and the
 * fiber that made the decision runs it (`flush`). So a pause flag is always
 * set before the slot it frees is handed over.
 *
 * @internal
 */
import { Cause, Deferred, Effect, Exit, SubscriptionRef } from "effect"
import type { CacheKey } from "../../Domain.js"
import { ExportCancelled } from "../../Errors.js"
import type { QueueEvent } from "../../ExportQueue.js"
import { type Job, priorityOf, type Worker } from "./job.js"
import { JobList } from "./jobList.js"

/** How long a new job waits for paused ones to confirm that they stopped. @internal */
export const pauseGrace = "1 second"

/** @internal */
export class Scheduler<A, E> {
  readonly queued = [new JobList<Job<A, E>>(), new JobList<Job<A, E>>(), new JobList<Job<A, E>>()] as const
  /** Jobs paused by preemption: each keeps its worker (its run is blocked) but no slot. */
  readonly pausedJobs: ReadonlyArray<Array<Job<A, E>>> = [[], [], []]
  readonly byKey = new Map<CacheKey, Job<A, E>>()
  readonly backoff = new Set<Job<A, E>>()
  readonly workers = new Set<Worker<A, E>>()
  readonly idle: Array<Worker<A, E>> = []
  pending: Array<Effect.Effect<void>> = []
  active = 0
  pausedCount = 0
  startSeq = 0
  completed = 0
  failed = 0
  cancelled = 0
  closed = false

  constructor(
    readonly concurrency: number,
    readonly preemption: "interrupt" | "suspend" | "off",
    readonly onEvent: ((event: QueueEvent) => Effect.Effect<void>) | undefined,
    /** Starts the fiber of a worker already counted in `workers`. */
    readonly startWorker: (worker: Worker<A, E>) => Effect.Effect<void>,
    /** Interrupts a worker without waiting for it (preemption in `interrupt` mode). */
    readonly interruptWorker: (worker: Worker<A, E>) => Effect.Effect<void>
  ) {}

  emit(event: QueueEvent): void {
    const onEvent = this.onEvent
    if (onEvent === undefined) return
    this.pending.push(Effect.catchAllCause(
      Effect.suspend(() => onEvent(event)),
      (cause) => Effect.logWarning("rallycache: an ExportQueue onEvent handler failed", cause)
    ))
  }

  /** Runs what the synchronous sections decided, in order. */
  readonly flush: Effect.Effect<void> = Effect.suspend(() => {
    if (this.pending.length === 0) return Effect.void
    const batch = this.pending
    this.pending = []
    return Effect.zipRight(Effect.forEach(batch, (effect) => effect, { discard: true }), this.flush)
  })

  // ---- ends of jobs -----------------------------------------------------------

  finish(job: Job<A, E>, exit: Exit.Exit<A, E | ExportCancelled>): void {
    job.phase = "done"
    job.exit = exit
    if (this.byKey.get(job.key) === job) this.byKey.delete(job.key)
    job.answer(exit)
  }

  finishCancelled(job: Job<A, E>, reason: "cancelled" | "shutdown"): void {
    this.cancelled++
    this.finish(job, Exit.fail(new ExportCancelled({ key: job.key })))
    this.emit({ _tag: "Cancelled", job: job.spec, reason })
  }

  // ---- workers ----------------------------------------------------------------

  /** A worker per slot, plus one per paused job (its run keeps its worker). */
  target(): number {
    return this.concurrency + this.pausedCount
  }

  spawnWorkers(): void {
    while (this.workers.size < this.target()) {
      // Available before its fiber first runs, so that a job submitted right
      // after `make` takes a free slot at once.
      const worker: Worker<A, E> = { fiber: undefined, wake: undefined, job: undefined, available: true }
      this.workers.add(worker)
      this.idle.push(worker)
      this.pending.push(this.startWorker(worker))
    }
  }

  unidle(worker: Worker<A, E>): void {
    if (!worker.available) return
    worker.available = false
    const i = this.idle.indexOf(worker)
    if (i >= 0) this.idle.splice(i, 1)
  }

  wakeUp(worker: Worker<A, E>): void {
    const wake = worker.wake
    worker.wake = undefined
    if (wake !== undefined) this.pending.push(Deferred.succeed(wake, undefined))
  }

  /** A worker is gone: the pool grows back to its size. */
  workerEnded(worker: Worker<A, E>): void {
    this.workers.delete(worker)
    this.unidle(worker)
    if (this.closed) return
    this.spawnWorkers()
    this.dispatch()
  }

  // ---- slots --------------------------------------------------------------------

  /** Urgent work is high work waiting or holding a slot. */
  urgent(): boolean {
    if (this.queued[0].size > 0) return true
    for (const worker of this.workers) {
      const job = worker.job
      if (job !== undefined && job.holdsSlot && job.rank === 0) return true
    }
    return false
  }

  /**
   * The next job to give a slot to: by priority, and within a priority a
   * paused job (it has work done) before the queued ones. In `suspend` mode,
   * while urgent work exists, no low job starts or resumes, and the slots
   * freed by pausing are held back for urgent work: normal work only takes
   * a slot that was free anyway.
   */
  nextRunnable(): Job<A, E> | undefined {
    const holding = this.preemption === "suspend" && this.urgent()
    for (let rank = 0; rank < 3; rank++) {
      if (holding && (rank === 2 || (rank === 1 && this.active + this.pausedCount >= this.concurrency))) {
        return undefined
      }
      const paused = this.pausedJobs[rank]!
      if (paused.length > 0) return paused[0]
      const head = this.queued[rank]!.head
      if (head !== undefined) return head
    }
    return undefined
  }

  assign(worker: Worker<A, E>, job: Job<A, E>): void {
    this.unidle(worker)
    this.queued[job.rank]!.remove(job)
    job.phase = "running"
    job.worker = worker
    job.holdsSlot = true
    job.startedSeq = ++this.startSeq
    job.began = false
    this.active++
    worker.job = job
  }

  /**
   * Take a paused job out of the paused lists (it keeps its worker). With
   * `continueWork` false (a cancel, or the end of its run) its `paused` flag
   * stays up: a stopped process is ended where it stands, never continued
   * to do more work beside the ones holding the slots.
   */
  unpause(job: Job<A, E>, continueWork = true): void {
    const list = this.pausedJobs[job.rank]!
    list.splice(list.indexOf(job), 1)
    this.pausedCount--
    job.phase = "running"
    const stopped = job.stopped
    job.stopped = undefined
    if (stopped !== undefined) this.pending.push(Deferred.succeed(stopped, undefined))
    const resumed = job.resumed
    job.resumed = undefined
    if (resumed !== undefined) this.pending.push(Deferred.succeed(resumed, undefined))
    if (continueWork && job.paused !== undefined) this.pending.push(SubscriptionRef.set(job.paused, false))
    this.trimWorkers()
  }

  resume(job: Job<A, E>): void {
    this.unpause(job)
    job.holdsSlot = true
    job.startedSeq = ++this.startSeq
    this.active++
  }

  pause(job: Job<A, E>): void {
    job.holdsSlot = false
    job.phase = "paused"
    this.active--
    this.pausedJobs[job.rank]!.push(job)
    this.pausedCount++
    // Set before anything else happens with the freed slot. A job whose body
    // has not begun waits in `untilResumed` instead: nothing to confirm.
    this.pending.push(Effect.flatMap(Deferred.make<void>(), (stopped) =>
      Effect.suspend(() => {
        if (job.phase !== "paused" || !job.began) return Effect.void
        job.stopped = stopped
        return job.paused === undefined ? Effect.void : SubscriptionRef.set(job.paused, true)
      })))
    this.spawnWorkers()
  }

  /**
   * Before a job starts: wait until every paused job has confirmed that its
   * work stopped (`JobContext.confirmPaused`), at most `pauseGrace`, so that
   * a freed slot is only used once its previous holder is still.
   */
  readonly awaitPaused: Effect.Effect<void> = Effect.suspend(() => {
    if (this.pausedCount === 0) return Effect.void
    const waits: Array<Effect.Effect<void>> = []
    for (const list of this.pausedJobs) for (const job of list) if (job.stopped !== undefined) waits.push(Deferred.await(job.stopped))
    if (waits.length === 0) return Effect.void
    return Effect.ignore(Effect.timeout(Effect.all(waits, { discard: true }), pauseGrace))
  })

  /**
   * A job paused between its hand-over and its body waits, without starting
   * its work, until it is resumed; then its body may begin. A job cancelled
   * meanwhile never begins.
   */
  untilResumed(job: Job<A, E>): Effect.Effect<void> {
    return Effect.flatMap(Deferred.make<void>(), (resumed) =>
      Effect.suspend(() => {
        if (job.after === "cancel" || job.after === "requeue-back") return Effect.interrupt
        if (job.phase !== "paused") {
          job.began = true
          return Effect.void
        }
        job.resumed = resumed
        return Effect.zipRight(Deferred.await(resumed), this.untilResumed(job))
      }))
  }

  /** Wake idle workers beyond the pool's size, so that they end. */
  trimWorkers(): void {
    while (this.workers.size > this.target() && this.idle.length > 0) {
      const worker = this.idle.shift()!
      worker.available = false
      this.wakeUp(worker)
    }
  }

  /** Preempt if needed, then hand free slots to waiting work. */
  dispatch(): void {
    if (this.closed) return
    if (this.preemption === "suspend" && this.urgent()) this.pauseLowWork()
    while (this.active < this.concurrency) {
      const job = this.nextRunnable()
      if (job === undefined) break
      if (job.phase === "paused") {
        this.resume(job)
        continue
      }
      // Without an idle worker, a busy one takes the job when it is done.
      const worker = this.idle.shift()
      if (worker === undefined) break
      worker.available = false
      this.assign(worker, job)
      this.wakeUp(worker)
    }
    if (this.preemption === "interrupt") this.interruptOneLowJob()
  }

  /** `suspend`: while urgent work exists, no low job holds a slot. */
  pauseLowWork(): void {
    for (const worker of this.workers) {
      const job = worker.job
      if (job !== undefined && job.holdsSlot && job.rank === 2 && job.after === "none") this.pause(job)
    }
  }

  /**
   * `interrupt`: when high work waits and every slot runs low work, free one
   * slot: the low job started last (it has the least work to lose). The slot
   * is handed over once its run has ended.
   */
  interruptOneLowJob(): void {
    if (this.active < this.concurrency || this.queued[0].size === 0) return
    let victim: Job<A, E> | undefined
    for (const worker of this.workers) {
      const job = worker.job
      if (job === undefined || !job.holdsSlot) continue
      // A slot is already being freed, or some slot runs work that matters.
      if (job.after !== "none" || job.rank !== 2) return
      if (victim === undefined || job.startedSeq > victim.startedSeq) victim = job
    }
    if (victim === undefined) return
    victim.after = "requeue-front"
    this.pending.push(this.interruptWorker(victim.worker!))
  }

  /**
   * The job a free worker runs next: its own, the best waiting one,
   * `undefined` to wait, or `null` when the worker must end.
   */
  take(worker: Worker<A, E>): Job<A, E> | undefined | null {
    if (this.closed) return null
    if (worker.job !== undefined) return worker.job
    if (this.workers.size > this.target()) {
      this.workers.delete(worker)
      this.unidle(worker)
      return null
    }
    while (this.active < this.concurrency) {
      const job = this.nextRunnable()
      if (job === undefined) return undefined
      if (job.phase === "paused") {
        this.resume(job)
        continue
      }
      this.assign(worker, job)
      return job
    }
    return undefined
  }

  // ---- ends of runs -------------------------------------------------------------

  /** Book the end of a run: its worker and slot are free. */
  release(worker: Worker<A, E>, job: Job<A, E>): void {
    worker.job = undefined
    job.worker = undefined
    if (job.holdsSlot) {
      job.holdsSlot = false
      this.active--
    } else if (job.phase === "paused") {
      this.unpause(job, false)
    }
    // The run is over: a later run of the job (a retry, a resubmit) starts unpaused.
    if (job.paused !== undefined) this.pending.push(SubscriptionRef.set(job.paused, false))
  }

  requeue(job: Job<A, E>, front: boolean): void {
    job.phase = "queued"
    if (front) this.queued[job.rank]!.pushFront(job)
    else this.queued[job.rank]!.pushBack(job)
  }

  /** Settle a run that will not be retried. */
  settle(worker: Worker<A, E>, job: Job<A, E>, exit: Exit.Exit<A, E>, now: number): void {
    this.release(worker, job)
    const after = job.after
    job.after = "none"
    if (this.closed) return this.finishCancelled(job, "shutdown")
    if (Exit.isSuccess(exit)) {
      this.completed++
      this.emit({ _tag: "Succeeded", job: job.spec, priority: priorityOf(job.rank), millis: now - job.startedAt })
      this.finish(job, exit)
    } else if (after === "requeue-front") {
      this.emit({ _tag: "Cancelled", job: job.spec, reason: "preempted" })
      this.requeue(job, true)
    } else if (after === "requeue-back") {
      // Cancelled while running, then submitted again before the run ended.
      job.attempt = 1
      job.retryState = undefined
      this.requeue(job, false)
      this.emit({ _tag: "Queued", job: job.spec, priority: priorityOf(job.rank) })
    } else if (after === "cancel" || Cause.isInterruptedOnly(exit.cause)) {
      this.finishCancelled(job, "cancelled")
    } else {
      this.failed++
      const error = Cause.failureOption(exit.cause)
      this.emit({
        _tag: "Failed",
        job: job.spec,
        error: error._tag === "Some" ? error.value : Cause.squash(exit.cause),
        willRetry: false
      })
      this.finish(job, exit)
    }
    this.dispatch()
  }

  /** A transient failure the schedule retries: the job waits without a slot. */
  backOff(worker: Worker<A, E>, job: Job<A, E>, error: E): void {
    this.release(worker, job)
    job.after = "none"
    job.phase = "backoff"
    job.attempt++
    this.backoff.add(job)
    this.emit({ _tag: "Failed", job: job.spec, error, willRetry: true })
    this.dispatch()
  }

  /** The backoff is over: the job goes to the front of its priority. */
  backoffEnded(job: Job<A, E>): void {
    job.timer = undefined
    if (job.phase !== "backoff" || this.closed) return
    this.backoff.delete(job)
    this.requeue(job, true)
    this.dispatch()
  }
}
