/**
 * A fiber-based priority queue of exports.
 *
 * - At most `concurrency` jobs run at once: `concurrency` slots (permits)
 *   shared by a fixed pool of supervised worker fibers. No fiber per queued
 *   job; a job runs inside the worker that took it.
 * - Strict priority order, first-in first-out within a priority.
 * - A job is identified by its key: submitting a key that is queued or
 *   running joins it (and raises its priority if the new one is higher), so
 *   a key never has two runs in flight.
 * - Queued jobs can be re-prioritised (a moved job goes to the back of its
 *   new priority) or cancelled; cancelling a running job interrupts it, and
 *   `cancel` returns once its finalizers have run.
 * - Preemption: when high work waits and every slot runs low work, the low
 *   job started last is either interrupted and queued again at the front of
 *   its priority (`interrupt`), or paused through `JobContext.paused` while
 *   the high job takes its slot, then resumed (ahead of queued low work)
 *   when a slot frees (`suspend`; the job must honour `paused`).
 * - Transient failures are retried on the retry schedule. While it waits
 *   for its next attempt a job holds no slot (a backoff can last seconds,
 *   and two slots are all there is), then it goes to the front of its
 *   priority. Permanent failures are not retried. Cancellations and
 *   preemptions are neither failures nor retries.
 * - A defect in a job fails that job only; its worker carries on.
 * - When the scope closes, running jobs are interrupted, every waiter fails
 *   with `ExportCancelled`, and no fiber of the queue is left.
 *
 * Cost: about 2-3 µs of CPU per job, flat from 10k to 100k queued jobs (run
 * `pnpm bench --only queue` for the comparison with p-queue).
 *
 * @since 0.1.0
 */
import type { Effect, Schedule, Scope, SubscriptionRef } from "effect"
import type { CacheKey, Priority, VideoId } from "./Domain.js"
import type { ExportCancelled } from "./Errors.js"
import * as internal from "./internal/exportQueue.js"

/**
 * What the queue hands to a running job.
 *
 * @since 0.1.0
 */
export interface JobContext {
  /** 1 for the first run, then 2, 3... on retries. */
  readonly attempt: number
  /** Set to `true` while the job is paused by preemption in `suspend` mode. */
  readonly paused: SubscriptionRef.SubscriptionRef<boolean>
}

/**
 * One export to schedule.
 *
 * @since 0.1.0
 */
export interface ExportJob<A, E> {
  readonly key: CacheKey
  readonly videoId: VideoId
  readonly rallyIndex: number
  readonly priority: Priority
  /** The work itself. It may run several times (retries, preemption). */
  readonly run: (context: JobContext) => Effect.Effect<A, E>
}

/**
 * Something the queue did, for events and metrics.
 *
 * @since 0.1.0
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
 * Status of the queue.
 *
 * @since 0.1.0
 */
export interface QueueStatus {
  readonly queued: { readonly high: ReadonlyArray<CacheKey>; readonly normal: ReadonlyArray<CacheKey>; readonly low: ReadonlyArray<CacheKey> }
  readonly running: ReadonlyArray<{ readonly key: CacheKey; readonly priority: Priority; readonly paused: boolean }>
  /**
   * Jobs waiting out a retry backoff after a transient failure. They hold no
   * slot while they wait, then go to the front of their priority.
   */
  readonly retrying: ReadonlyArray<{ readonly key: CacheKey; readonly priority: Priority; readonly attempt: number }>
  readonly completed: number
  readonly failed: number
  readonly cancelled: number
}

/**
 * @since 0.1.0
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
 * @since 0.1.0
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
  readonly status: Effect.Effect<QueueStatus>
}

/**
 * Build a queue. Its workers live in the given scope: when it closes, running
 * jobs are interrupted and waiters fail with `ExportCancelled`.
 *
 * @since 0.1.0
 */
export const make: <A, E>(options?: Options<E>) => Effect.Effect<ExportQueue<A, E>, never, Scope.Scope> =
  internal.make
