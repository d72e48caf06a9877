/**
 * A fiber-based priority queue of exports.
 *
 * - At most `concurrency` jobs run at once: `concurrency` slots shared by a
 *   pool of worker fibers forked in the queue's scope. No fiber per queued
 *   job; a job runs inside the worker that took it.
 * - Strict priority order, first-in first-out within a priority.
 * - A job is identified by its key: submitting a key that is queued or
 *   running joins it (and raises its priority if the new one is higher), so
 *   a key never has two runs in flight.
 * - Queued jobs can be re-prioritised (a moved job goes to the back of its
 *   new priority) or cancelled; cancelling a running job interrupts it, and
 *   `cancel` returns once its finalizers have run.
 * - Preemption, `interrupt`: when high work waits and every slot runs low
 *   work, the low job started last is interrupted and queued again at the
 *   front of its priority; its slot is handed over once its run has ended.
 * - Preemption, `suspend`: while high work runs or waits, every running low
 *   job is paused through `JobContext.paused` (set before its slot is handed
 *   over) and the freed slots are held back for high work; paused jobs
 *   resume, ahead of queued low work, once no high work is left. The job
 *   must honour `paused`. A job paused before its run began does not begin
 *   until it is resumed, and nothing waits for it to confirm.
 * - Transient failures are retried on the retry schedule. While it waits
 *   for its next attempt a job holds no slot, then it goes to the front of
 *   its priority. Permanent failures are not retried. Cancellations and
 *   preemptions are neither failures nor retries.
 * - A defect in a job fails that job only; the pool carries on.
 * - When the scope closes, running jobs are interrupted, every waiter fails
 *   with `ExportCancelled`, and no fiber of the queue is left.
 *
 * The cost per job stays flat from 10k to 100k queued jobs
 * (`pnpm bench --only queue`).
 *
 * @since 0.1.0
 */
import type { Effect, Schedule, Scope, SubscriptionRef } from "effect"
import type { CacheKey, ExportMode, Priority, VideoId } from "./Domain.js"
import type { ExportCancelled } from "./Errors.js"
import type { QueueDepth } from "./Metrics.js"
import type * as Protocol from "./Protocol.js"
import * as internal from "./internal/queue/exportQueue.js"

/**
 * What the queue hands to a running job.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobContext {
  /** 1 for the first run, then 2, 3... on retries. */
  readonly attempt: number
  /**
   * Set to `true` while the job is paused by preemption in `suspend` mode. A
   * paused run that is cancelled, or ended by shutdown, is interrupted still
   * paused (its stopped process is killed, not continued first).
   */
  readonly paused: SubscriptionRef.SubscriptionRef<boolean>
  /**
   * Run once the work has really stopped after `paused` turned `true` (the
   * process is stopped): the queue hands the freed slot over only then, or
   * after a grace of one second.
   */
  readonly confirmPaused: Effect.Effect<void>
}

/**
 * One export to schedule.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExportJob<A, E> {
  readonly key: CacheKey
  readonly videoId: VideoId
  readonly rallyIndex: number
  readonly priority: Priority
  /** The work itself. It may run several times (retries, preemption). */
  readonly run: (context: JobContext) => Effect.Effect<A, E>
  /** The clip mode, for events and metrics. */
  readonly mode?: ExportMode | undefined
}

/**
 * Something the queue did, for events and metrics.
 *
 * @since 0.1.0
 * @category models
 */
export type QueueEvent =
  | { readonly _tag: "Queued"; readonly job: ExportJob<unknown, unknown>; readonly priority: Priority }
  | { readonly _tag: "Reprioritized"; readonly job: ExportJob<unknown, unknown>; readonly priority: Priority }
  | { readonly _tag: "Started"; readonly job: ExportJob<unknown, unknown>; readonly priority: Priority; readonly attempt: number }
  | { readonly _tag: "Succeeded"; readonly job: ExportJob<unknown, unknown>; readonly priority: Priority; readonly millis: number }
  | { readonly _tag: "Failed"; readonly job: ExportJob<unknown, unknown>; readonly error: unknown; readonly willRetry: boolean }
  | {
    readonly _tag: "Cancelled"
    readonly job: ExportJob<unknown, unknown>
    readonly reason: "cancelled" | "preempted" | "shutdown"
  }

/**
 * What the queue holds now: queued keys per priority, the jobs holding a
 * worker (paused ones included), the jobs in backoff, and counters.
 *
 * @since 0.1.0
 * @category models
 */
export type QueueStatus = Protocol.QueueStatus

/**
 * Where one job is: waiting in its priority's queue, holding a slot, paused
 * by preemption (it keeps its run but holds no slot), or waiting out a retry
 * backoff.
 *
 * @since 0.2.0
 * @category models
 */
export interface JobState {
  readonly phase: "queued" | "running" | "paused" | "retrying"
  readonly priority: Priority
  readonly attempt: number
}

/**
 * How a queue schedules: its slots, its preemption, its retries.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E> {
  /** Jobs running at once. Default 2. */
  readonly concurrency?: number
  /** `interrupt` (default): stop a low job and queue it again; `suspend`: pause it in place; `off`. */
  readonly preemption?: "interrupt" | "suspend" | "off"
  /**
   * Delays between retries of a transient failure (fed the error). Default:
   * no retry. `Config.retrySchedule(config)` gives the configured backoff.
   */
  readonly retry?: Schedule.Schedule<unknown, unknown>
  /** Which failures are worth retrying. Default: `Errors.isTransient`. */
  readonly isTransient?: (error: E) => boolean
  /** Called for every queue event; must not fail or block for long. */
  readonly onEvent?: (event: QueueEvent) => Effect.Effect<void>
}

/**
 * A running queue.
 *
 * @since 0.1.0
 * @category models
 */
export interface ExportQueue<A, E> {
  /**
   * Queue `job`, or join the job of the same key already queued or running.
   * The outer effect returns once the job is queued; the inner one waits for
   * its result. Interrupting a waiter does not cancel the job.
   */
  readonly submit: (job: ExportJob<A, E>) => Effect.Effect<Effect.Effect<A, E | ExportCancelled>>
  /**
   * Change the priority of a job. A queued job moves to the back of its new
   * priority; for a running one the priority is recorded (it decides
   * preemption and where the job goes if it is queued again). `false` if the
   * key is unknown.
   */
  readonly setPriority: (key: CacheKey, priority: Priority) => Effect.Effect<boolean>
  /**
   * Drop a queued job, or interrupt a running one; its waiters fail with
   * `ExportCancelled` at once. For a running job the effect returns once its
   * run has ended, so whatever it started (an ffmpeg process) is gone; the
   * key stays taken until then. `false` if the key is unknown.
   */
  readonly cancel: (key: CacheKey) => Effect.Effect<boolean>
  /** Where the job of `key` is, `undefined` when the queue holds no job for it. */
  readonly state: (key: CacheKey) => Effect.Effect<JobState | undefined>
  /** How many jobs wait per priority and how many hold a worker: cheap to read after every event. */
  readonly depth: Effect.Effect<QueueDepth>
  readonly status: Effect.Effect<QueueStatus>
}

/**
 * Build a queue. Its workers live in the given scope: when it closes, running
 * jobs are interrupted and waiters fail with `ExportCancelled`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <A, E>(options?: Options<E>) => Effect.Effect<ExportQueue<A, E>, never, Scope.Scope> =
  internal.make
