import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Clock,
  Duration,
  Effect,
  Exit,
  Fiber,
  Option,
  Schedule,
  Scope,
  Stream,
  SubscriptionRef,
  Supervisor,
  TestClock
} from "effect"
import type { CacheKey, Priority, VideoId } from "../src/Domain.js"
import { ExportCancelled, ExportFailed, SourceNotFound } from "../src/Errors.js"
import * as ExportQueue from "../src/ExportQueue.js"

const key = (n: number): CacheKey => n.toString(16).padStart(32, "0") as CacheKey
const nameOf = (k: CacheKey): number => parseInt(k, 16)

/** What the jobs of one test did, in virtual time. */
class Trace {
  readonly log: Array<string> = []
  readonly starts: Array<{ readonly job: number; readonly at: number; readonly attempt: number }> = []
  readonly running = new Set<number>()
  maxRunning = 0
  finalized = 0

  /** A job that takes `millis` of virtual time, records its start and end, and returns its number. */
  job(
    n: number,
    priority: Priority,
    millis = 1000,
    body: (attempt: number) => Effect.Effect<number, ExportFailed | SourceNotFound> = () => Effect.succeed(n)
  ): ExportQueue.ExportJob<number, ExportFailed | SourceNotFound> {
    return {
      key: key(n),
      videoId: "video" as VideoId,
      rallyIndex: n,
      priority,
      run: (context) =>
        Effect.gen(this, function*() {
          const at = yield* Clock.currentTimeMillis
          this.starts.push({ job: n, at, attempt: context.attempt })
          this.log.push(`start ${n}`)
          this.running.add(n)
          this.maxRunning = Math.max(this.maxRunning, this.running.size)
          yield* Effect.sleep(Duration.millis(millis))
          return yield* body(context.attempt)
        }).pipe(
          Effect.ensuring(Effect.sync(() => {
            this.running.delete(n)
            this.finalized++
          })),
          Effect.onExit((exit) =>
            Effect.sync(() => this.log.push(`${Exit.isInterrupted(exit) ? "interrupted" : "end"} ${n}`))
          )
        )
    }
  }

  startOrder(): Array<number> {
    return this.starts.map((s) => s.job)
  }
}

const transient = new ExportFailed({ reason: "signal", detail: "killed by SIGKILL", transient: true })
const permanent = new SourceNotFound({ path: "/videos/missing.mp4" })

/** Let forked fibers run up to their next wait. */
const settle = Effect.yieldNow().pipe(Effect.repeatN(20))

const failureOf = <A, E>(exit: Exit.Exit<A, E>): Option.Option<E> =>
  Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()

describe("ExportQueue", () => {
  it.scoped("runs the highest priority first and first-in first-out within a priority", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1, preemption: "off" })
      const waits = [
        yield* queue.submit(trace.job(1, "low")),
        yield* queue.submit(trace.job(2, "low")),
        yield* queue.submit(trace.job(3, "normal")),
        yield* queue.submit(trace.job(4, "high")),
        yield* queue.submit(trace.job(5, "normal")),
        yield* queue.submit(trace.job(6, "high"))
      ]
      const all = yield* Effect.fork(Effect.all(waits))
      yield* settle
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(all)).toEqual([1, 2, 3, 4, 5, 6])
      // Job 1 took the free slot at once; the rest ran by priority, then in order.
      expect(trace.startOrder()).toEqual([1, 4, 6, 3, 5, 2])
      expect(trace.maxRunning).toBe(1)
      const status = yield* queue.status
      expect(status.completed).toBe(6)
      expect(status.running).toEqual([])
    }))

  it.scoped("never runs more than `concurrency` jobs at once", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 3 })
      const waits = yield* Effect.forEach([1, 2, 3, 4, 5, 6, 7], (n) => queue.submit(trace.job(n, "normal", 100 * n)))
      const all = yield* Effect.fork(Effect.all(waits))
      yield* settle
      const status = yield* queue.status
      expect(status.running.map((r) => nameOf(r.key))).toEqual([1, 2, 3])
      expect(status.queued.normal.map(nameOf)).toEqual([4, 5, 6, 7])
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(all)
      expect(trace.maxRunning).toBe(3)
      expect(trace.starts.length).toBe(7)
    }))

  it.scoped("joins a second submit of the same key instead of running it twice", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1 })
      const first = yield* queue.submit(trace.job(1, "low"))
      const second = yield* queue.submit(trace.job(1, "low"))
      const both = yield* Effect.fork(Effect.all([first, second]))
      yield* settle
      // Joining a running job too.
      const third = yield* queue.submit(trace.job(1, "high"))
      yield* TestClock.adjust("5 seconds")
      expect(yield* Fiber.join(both)).toEqual([1, 1])
      expect(yield* third).toBe(1)
      expect(trace.startOrder()).toEqual([1])
      expect((yield* queue.status).completed).toBe(1)
    }))

  it.scoped("a joining submit with a higher priority raises the queued job", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const events: Array<string> = []
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 1,
        preemption: "off",
        onEvent: (event) => Effect.sync(() => events.push(`${event._tag} ${event.job.rallyIndex}`))
      })
      yield* queue.submit(trace.job(1, "low"))
      yield* queue.submit(trace.job(2, "normal"))
      yield* queue.submit(trace.job(3, "low"))
      const raised = yield* queue.submit(trace.job(3, "high"))
      expect((yield* queue.status).queued).toEqual({ high: [key(3)], normal: [key(2)], low: [] })
      const done = yield* Effect.fork(raised)
      yield* settle
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(done)
      expect(trace.startOrder()).toEqual([1, 3, 2])
      expect(events).toContain("Reprioritized 3")
    }))

  it.scoped("setPriority moves a queued job, records it for a running one, and is false for unknown keys", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1, preemption: "off" })
      yield* queue.submit(trace.job(1, "low"))
      yield* queue.submit(trace.job(2, "high"))
      yield* queue.submit(trace.job(3, "normal"))
      yield* queue.submit(trace.job(4, "normal"))
      yield* settle
      expect(trace.startOrder()).toEqual([1])
      expect(yield* queue.setPriority(key(4), "high")).toBe(true)
      expect(yield* queue.setPriority(key(2), "low")).toBe(true)
      expect(yield* queue.setPriority(key(1), "normal")).toBe(true)
      expect(yield* queue.setPriority(key(99), "high")).toBe(false)
      const status = yield* queue.status
      expect(status.queued).toEqual({ high: [key(4)], normal: [key(3)], low: [key(2)] })
      expect(status.running).toEqual([{ key: key(1), priority: "normal", paused: false }])
      yield* TestClock.adjust("10 seconds")
      expect(trace.startOrder()).toEqual([1, 4, 3, 2])
    }))

  it.scoped("cancel drops a queued job: it never runs and its waiters fail with ExportCancelled", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1 })
      yield* queue.submit(trace.job(1, "normal"))
      const wait = yield* queue.submit(trace.job(2, "normal"))
      const waiter = yield* Effect.fork(Effect.exit(wait))
      yield* settle
      expect(yield* queue.cancel(key(2))).toBe(true)
      expect(yield* queue.cancel(key(2))).toBe(false)
      const exit = yield* Fiber.join(waiter)
      expect(failureOf(exit)).toEqual(Option.some(new ExportCancelled({ key: key(2) })))
      yield* TestClock.adjust("10 seconds")
      expect(trace.startOrder()).toEqual([1])
      expect((yield* queue.status).cancelled).toBe(1)
    }))

  it.scoped("cancel interrupts a running job: its finalizer runs before cancel returns", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1 })
      const wait = yield* queue.submit(trace.job(1, "normal", 10_000))
      const next = yield* queue.submit(trace.job(2, "normal", 1000))
      const waiter = yield* Effect.fork(Effect.exit(wait))
      yield* settle
      yield* TestClock.adjust("1 second")
      expect(trace.running.has(1)).toBe(true)
      expect(yield* queue.cancel(key(1))).toBe(true)
      expect(trace.log).toContain("interrupted 1")
      expect(trace.running.has(1)).toBe(false)
      expect(failureOf(yield* Fiber.join(waiter))).toEqual(Option.some(new ExportCancelled({ key: key(1) })))
      // The slot is free again, and the queue keeps working after the worker was interrupted.
      yield* settle
      yield* TestClock.adjust("1 second")
      expect(yield* next).toBe(2)
      const status = yield* queue.status
      expect(status.cancelled).toBe(1)
      expect(status.completed).toBe(1)
      expect(status.failed).toBe(0)
    }))

  it.scoped("a key cancelled while running and submitted again runs again, only after the first run has ended", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 2 })
      // A run whose clean-up takes 500 ms, like an ffmpeg that needs time to exit.
      const slowToStop: ExportQueue.ExportJob<number, ExportFailed | SourceNotFound> = {
        ...trace.job(1, "normal", 10_000),
        run: (context) =>
          trace.job(1, "normal", 10_000).run(context).pipe(Effect.onInterrupt(() => Effect.sleep("500 millis")))
      }
      const first = yield* queue.submit(slowToStop)
      const firstWaiter = yield* Effect.fork(Effect.exit(first))
      yield* settle
      yield* TestClock.adjust("1 second")
      const cancelling = yield* Effect.fork(queue.cancel(key(1)))
      yield* settle
      expect(failureOf(yield* Fiber.join(firstWaiter))).toEqual(Option.some(new ExportCancelled({ key: key(1) })))
      // cancel waits for the run's clean-up.
      expect(Option.isNone(yield* Fiber.poll(cancelling))).toBe(true)
      const second = yield* queue.submit(slowToStop)
      const secondWaiter = yield* Effect.fork(second)
      yield* TestClock.adjust("499 millis")
      expect(trace.startOrder()).toEqual([1])
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(cancelling)).toBe(true)
      yield* settle
      expect(trace.starts.map((s) => s.at)).toEqual([0, 1500])
      yield* TestClock.adjust("10 seconds")
      expect(yield* Fiber.join(secondWaiter)).toBe(1)
      const status = yield* queue.status
      expect(status.completed).toBe(1)
    }))

  it.scoped("cancelling a paused job ends it, and it is not resumed", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const pausedSeen: Array<boolean> = []
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 1,
        preemption: "suspend"
      })
      const low = yield* queue.submit({
        ...trace.job(1, "low", 10_000),
        run: (context) =>
          trace.job(1, "low", 10_000).run(context).pipe(
            Effect.onInterrupt(() => Effect.flatMap(SubscriptionRef.get(context.paused), (p) => Effect.sync(() => pausedSeen.push(p))))
          )
      })
      const lowWaiter = yield* Effect.fork(Effect.exit(low))
      yield* settle
      const high = yield* queue.submit(trace.job(2, "high", 3000))
      yield* settle
      expect((yield* queue.status).running.map((r) => r.paused)).toEqual([true, false])
      expect(yield* queue.cancel(key(1))).toBe(true)
      expect(trace.log).toContain("interrupted 1")
      // Interrupted still paused: a stopped process is killed, never continued beside the high job.
      expect(pausedSeen).toEqual([true])
      expect(failureOf(yield* Fiber.join(lowWaiter))).toEqual(Option.some(new ExportCancelled({ key: key(1) })))
      yield* TestClock.adjust("3 seconds")
      expect(yield* high).toBe(2)
      yield* TestClock.adjust("20 seconds")
      expect(trace.startOrder()).toEqual([1, 2])
      const status = yield* queue.status
      expect(status.running).toEqual([])
      expect(status.cancelled).toBe(1)
    }))

  it.scoped("interrupting a waiter does not cancel the job", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1 })
      const wait = yield* queue.submit(trace.job(1, "normal"))
      const waiter = yield* Effect.fork(wait)
      yield* settle
      yield* Fiber.interrupt(waiter)
      yield* TestClock.adjust("2 seconds")
      expect(trace.log).toEqual(["start 1", "end 1"])
      expect(yield* wait).toBe(1)
    }))

  it.scoped("retries a transient failure after the configured backoff delays", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const events: Array<string> = []
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 1,
        retry: Schedule.exponential("100 millis", 2).pipe(Schedule.intersect(Schedule.recurs(5))),
        onEvent: (event) =>
          Effect.sync(() => events.push(event._tag === "Failed" ? `Failed retry=${event.willRetry}` : event._tag))
      })
      const wait = yield* queue.submit(
        trace.job(1, "normal", 10, (attempt) => attempt <= 3 ? Effect.fail(transient) : Effect.succeed(attempt))
      )
      const waiter = yield* Effect.fork(wait)
      yield* settle
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(waiter)).toBe(4)
      // Runs of 10 ms, then waits of 100, 200 and 400 ms.
      expect(trace.starts).toEqual([
        { job: 1, at: 0, attempt: 1 },
        { job: 1, at: 110, attempt: 2 },
        { job: 1, at: 320, attempt: 3 },
        { job: 1, at: 730, attempt: 4 }
      ])
      expect(events.filter((e) => e.startsWith("Failed"))).toEqual([
        "Failed retry=true",
        "Failed retry=true",
        "Failed retry=true"
      ])
      const status = yield* queue.status
      expect(status.failed).toBe(0)
      expect(status.completed).toBe(1)
    }))

  it.scoped("a job waiting out its backoff holds no slot", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 1,
        retry: Schedule.spaced("5 seconds")
      })
      yield* queue.submit(trace.job(1, "high", 10, (attempt) => attempt === 1 ? Effect.fail(transient) : Effect.succeed(1)))
      yield* queue.submit(trace.job(2, "low", 1000))
      yield* settle
      yield* TestClock.adjust("10 millis")
      yield* settle
      const status = yield* queue.status
      expect(status.retrying).toEqual([{ key: key(1), priority: "high", attempt: 2 }])
      expect(status.running.map((r) => nameOf(r.key))).toEqual([2])
      yield* TestClock.adjust("10 seconds")
      expect(trace.starts).toEqual([
        { job: 1, at: 0, attempt: 1 },
        { job: 2, at: 10, attempt: 1 },
        { job: 1, at: 5010, attempt: 2 }
      ])
    }))

  it.scoped("does not retry a permanent failure, and gives up on a transient one when the schedule ends", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 1,
        retry: Schedule.exponential("100 millis").pipe(Schedule.intersect(Schedule.recurs(2)))
      })
      const permanentWait = yield* queue.submit(trace.job(1, "normal", 10, () => Effect.fail(permanent)))
      const transientWait = yield* queue.submit(trace.job(2, "normal", 10, () => Effect.fail(transient)))
      const waiters = yield* Effect.fork(Effect.all([Effect.exit(permanentWait), Effect.exit(transientWait)]))
      yield* settle
      yield* TestClock.adjust("10 seconds")
      const [p, t] = yield* Fiber.join(waiters)
      expect(failureOf(p)).toEqual(Option.some(permanent))
      expect(failureOf(t)).toEqual(Option.some(transient))
      expect(trace.startOrder()).toEqual([1, 2, 2, 2])
      expect((yield* queue.status).failed).toBe(2)
    }))

  it.scoped("a defect fails its job, and the worker goes on with the next one", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1 })
      const boom = yield* queue.submit(trace.job(1, "normal", 10, () => Effect.die(new Error("boom"))))
      const thrown = yield* queue.submit({
        ...trace.job(2, "normal"),
        run: () => {
          throw new Error("thrown")
        }
      })
      const fine = yield* queue.submit(trace.job(3, "normal", 10))
      const waiters = yield* Effect.fork(Effect.all([Effect.exit(boom), Effect.exit(thrown), fine]))
      yield* settle
      yield* TestClock.adjust("1 second")
      const [b, th, f] = yield* Fiber.join(waiters)
      expect(Exit.isFailure(b) && Cause.isDie(b.cause)).toBe(true)
      expect(Exit.isFailure(th) && Cause.isDie(th.cause)).toBe(true)
      expect(f).toBe(3)
      expect((yield* queue.status).failed).toBe(2)
    }))

  it.scoped("preemption (interrupt) stops the low job started last and queues it again at the front", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const events: Array<string> = []
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 2,
        onEvent: (event) =>
          Effect.sync(() => {
            if (event._tag === "Cancelled") events.push(`${event.reason} ${event.job.rallyIndex}`)
          })
      })
      yield* queue.submit(trace.job(1, "low", 10_000))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* queue.submit(trace.job(2, "low", 10_000))
      yield* queue.submit(trace.job(3, "low", 10_000))
      yield* settle
      yield* TestClock.adjust("1 second")
      const high = yield* queue.submit(trace.job(4, "high", 3000))
      const highDone = yield* Effect.fork(high)
      yield* settle
      expect(trace.log).toContain("interrupted 2")
      expect(trace.log).not.toContain("interrupted 1")
      expect(events).toEqual(["preempted 2"])
      const status = yield* queue.status
      expect(status.running.map((r) => nameOf(r.key)).sort()).toEqual([1, 4])
      expect(status.queued.low.map(nameOf)).toEqual([2, 3])
      yield* TestClock.adjust("3 seconds")
      expect(yield* Fiber.join(highDone)).toBe(4)
      expect(trace.starts.find((s) => s.job === 4)?.at).toBe(2000)
      yield* TestClock.adjust("30 seconds")
      // The preempted job ran again before job 3, and neither counts as failed.
      expect(trace.startOrder()).toEqual([1, 2, 4, 2, 3])
      const end = yield* queue.status
      expect(end.failed).toBe(0)
      expect(end.cancelled).toBe(0)
      expect(end.completed).toBe(4)
    }))

  it.scoped("no preemption while a slot runs normal work, or when it is off", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const mixed = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 2 })
      yield* mixed.submit(trace.job(1, "low", 10_000))
      yield* mixed.submit(trace.job(2, "normal", 10_000))
      yield* settle
      yield* mixed.submit(trace.job(3, "high", 1000))
      const off = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1, preemption: "off" })
      yield* off.submit(trace.job(11, "low", 10_000))
      yield* settle
      yield* off.submit(trace.job(12, "high", 1000))
      yield* settle
      yield* TestClock.adjust("5 seconds")
      expect(trace.log.filter((l) => l.startsWith("interrupted"))).toEqual([])
      expect(trace.startOrder()).toEqual([1, 2, 11])
    }))

  it.scoped("preemption (suspend) pauses the low job, runs the high one, then resumes it before queued low work", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const pauses: Array<string> = []
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 1,
        preemption: "suspend"
      })
      // A low job that only progresses while not paused, like a SIGSTOPped ffmpeg.
      let progress = 0
      const pausable: ExportQueue.ExportJob<number, ExportFailed | SourceNotFound> = {
        key: key(1),
        videoId: "video" as VideoId,
        rallyIndex: 1,
        priority: "low",
        run: (context) =>
          Effect.gen(function*() {
            trace.log.push("start 1")
            while (progress < 10) {
              if (yield* SubscriptionRef.get(context.paused)) {
                pauses.push(`paused at ${progress}`)
                yield* context.confirmPaused
                yield* context.paused.changes.pipe(Stream.takeUntil((p) => !p), Stream.runDrain)
                pauses.push(`resumed at ${progress}`)
              }
              yield* Effect.sleep("1 second")
              progress++
            }
            return 1
          })
      }
      const lowWait = yield* queue.submit(pausable)
      yield* queue.submit(trace.job(2, "low", 1000))
      yield* settle
      yield* TestClock.adjust("3 seconds")
      const highWait = yield* queue.submit(trace.job(3, "high", 5000))
      yield* settle
      let status = yield* queue.status
      expect(status.running).toEqual([
        { key: key(1), priority: "low", paused: true },
        { key: key(3), priority: "high", paused: false }
      ])
      expect(status.queued.low).toEqual([key(2)])
      const results = yield* Effect.fork(Effect.all([highWait, lowWait]))
      // The high job starts once the low one has confirmed its pause (at 4 s), and ends at 9 s.
      yield* TestClock.adjust("6 seconds")
      yield* settle
      status = yield* queue.status
      expect(status.running).toEqual([{ key: key(1), priority: "low", paused: false }])
      yield* TestClock.adjust("20 seconds")
      expect(yield* Fiber.join(results)).toEqual([3, 1])
      expect(trace.starts.find((s) => s.job === 3)?.at).toBe(4000)
      expect(pauses).toEqual(["paused at 4", "resumed at 4"])
      // Job 2 (queued low work) waited for the resumed job to finish.
      expect(trace.starts.find((s) => s.job === 2)?.at).toBe(15_000)
      expect((yield* queue.status).cancelled).toBe(0)
    }))

  it.scoped("preemption (suspend) pauses every running low job before the high one starts, and holds the freed slots back", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const flags = new Map<number, SubscriptionRef.SubscriptionRef<boolean>>()
      const seenByHigh: Array<boolean> = []
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 2,
        preemption: "suspend"
      })
      const pausable = (n: number): ExportQueue.ExportJob<number, ExportFailed | SourceNotFound> => ({
        ...trace.job(n, "low", 10_000),
        run: (context) =>
          Effect.gen(function*() {
            flags.set(n, context.paused)
            // Confirms each pause, like the exporter after its SIGSTOP.
            yield* context.paused.changes.pipe(
              Stream.runForEach((paused) => paused ? context.confirmPaused : Effect.void),
              Effect.fork
            )
            return yield* trace.job(n, "low", 10_000).run(context)
          })
      })
      const lows = [yield* queue.submit(pausable(1)), yield* queue.submit(pausable(2))]
      yield* settle
      yield* TestClock.adjust("1 second")
      const high = yield* queue.submit({
        ...trace.job(3, "high", 2000),
        run: (context) =>
          Effect.zipRight(
            Effect.forEach([1, 2], (n) => Effect.map(SubscriptionRef.get(flags.get(n)!), (p) => seenByHigh.push(p))),
            trace.job(3, "high", 2000).run(context)
          )
      })
      // Normal work waits while urgent work runs, although a slot is free.
      yield* queue.submit(trace.job(4, "normal", 1000))
      yield* settle
      // Both low jobs were paused before the high one began.
      expect(seenByHigh).toEqual([true, true])
      const status = yield* queue.status
      expect(status.running).toEqual([
        { key: key(1), priority: "low", paused: true },
        { key: key(2), priority: "low", paused: true },
        { key: key(3), priority: "high", paused: false }
      ])
      expect(status.queued.normal).toEqual([key(4)])
      yield* TestClock.adjust("2 seconds")
      expect(yield* high).toBe(3)
      yield* settle
      // No urgent work left: the normal job takes a slot, a paused low job resumes in the other.
      const after = yield* queue.status
      expect(after.running.filter((r) => !r.paused).map((r) => nameOf(r.key)).sort()).toEqual([1, 4])
      expect(yield* SubscriptionRef.get(flags.get(1)!)).toBe(false)
      yield* TestClock.adjust("1 minute")
      expect(yield* Effect.all(lows)).toEqual([1, 2])
      expect(trace.starts.find((s) => s.job === 4)?.at).toBe(3000)
    }))

  /** A low job and a high one submitted together: the high job pauses the low one before the low one's worker has run. */
  const lowThenHigh = Effect.gen(function*() {
    const trace = new Trace()
    const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 1, preemption: "suspend" })
    const low = yield* queue.submit(trace.job(1, "low", 1000))
    const high = yield* queue.submit(trace.job(2, "high", 1000))
    return { trace, queue, low, high }
  })

  it.scoped("preemption (suspend): a low job paused before its body began starts nothing until resumed, and the high one starts at once", () =>
    Effect.gen(function*() {
      const { high, low, queue, trace } = yield* lowThenHigh
      yield* settle
      // No virtual time has passed: nothing waited for the pause grace.
      expect(trace.starts).toEqual([{ job: 2, at: 0, attempt: 1 }])
      expect((yield* queue.status).running).toEqual([
        { key: key(1), priority: "low", paused: true },
        { key: key(2), priority: "high", paused: false }
      ])
      yield* TestClock.adjust("1 second")
      expect(yield* high).toBe(2)
      yield* settle
      expect(trace.starts.map((s) => [s.job, s.at])).toEqual([[2, 0], [1, 1000]])
      yield* TestClock.adjust("1 second")
      expect(yield* low).toBe(1)
    }))

  it.scoped("preemption (suspend): a job cancelled while paused before its body began never begins", () =>
    Effect.gen(function*() {
      const { high, low, queue, trace } = yield* lowThenHigh
      expect(yield* queue.cancel(key(1))).toBe(true)
      expect(failureOf(yield* Effect.exit(low)).pipe(Option.map((e) => e._tag))).toEqual(Option.some("ExportCancelled"))
      yield* TestClock.adjust("1 second")
      expect(yield* high).toBe(2)
      yield* settle
      expect(trace.starts.map((s) => s.job)).toEqual([2])
      expect((yield* queue.status).running).toEqual([])
    }))

  it.scoped("keeps a fixed pool of workers: no fiber per queued job", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const supervisor = yield* Supervisor.track
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({ concurrency: 2 }).pipe(
        Effect.supervised(supervisor)
      )
      // Two long jobs hold the slots while 1000 instant ones wait behind them.
      yield* queue.submit(trace.job(10_000, "high", 1000))
      yield* queue.submit(trace.job(10_001, "high", 1000))
      const waits = yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        (n) =>
          queue.submit({
            ...trace.job(n, n % 3 === 0 ? "high" : n % 3 === 1 ? "normal" : "low"),
            run: () => Effect.succeed(n)
          })
      )
      yield* settle
      expect((yield* queue.status).queued.low.length).toBe(333)
      // Two workers, plus at most TestClock's "time is not advancing" watchdog.
      expect((yield* supervisor.value).length).toBeLessThanOrEqual(3)
      const all = yield* Effect.fork(Effect.all(waits))
      yield* TestClock.adjust("1 minute")
      expect((yield* Fiber.join(all)).length).toBe(1000)
      expect((yield* supervisor.value).length).toBeLessThanOrEqual(3)
      expect(trace.maxRunning).toBe(2)
    }))

  it.scoped("an onEvent handler that dies does not stop the queue", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 1,
        onEvent: (event) => event._tag === "Started" ? Effect.die(new Error("handler bug")) : Effect.void
      })
      const waits = yield* Effect.forEach([1, 2, 3], (n) => queue.submit(trace.job(n, "normal", 10)))
      const all = yield* Effect.fork(Effect.all(waits))
      yield* settle
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(all)).toEqual([1, 2, 3])
    }))

  it.scoped("reports what it does through onEvent", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const events: Array<string> = []
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 1,
        retry: Schedule.spaced("1 second"),
        onEvent: (event) =>
          Effect.sync(() => {
            const n = event.job.rallyIndex
            switch (event._tag) {
              case "Queued":
              case "Reprioritized":
                return events.push(`${event._tag} ${n} ${event.priority}`)
              case "Started":
                return events.push(`Started ${n} ${event.priority} attempt ${event.attempt}`)
              case "Succeeded":
                return events.push(`Succeeded ${n} in ${event.millis} ms`)
              case "Failed":
                return events.push(`Failed ${n} ${(event.error as { _tag: string })._tag} retry=${event.willRetry}`)
              case "Cancelled":
                return events.push(`Cancelled ${n} ${event.reason}`)
            }
          })
      })
      const flaky = yield* queue.submit(
        trace.job(1, "normal", 200, (attempt) => attempt === 1 ? Effect.fail(transient) : Effect.succeed(1))
      )
      yield* queue.submit(trace.job(2, "low", 100, () => Effect.fail(permanent)))
      yield* queue.submit(trace.job(3, "low", 100))
      yield* queue.setPriority(key(3), "normal")
      yield* queue.cancel(key(3))
      yield* settle
      yield* TestClock.adjust("5 seconds")
      expect(yield* flaky).toBe(1)
      expect(events).toEqual([
        "Queued 1 normal",
        "Queued 2 low",
        "Queued 3 low",
        "Reprioritized 3 normal",
        "Cancelled 3 cancelled",
        // Job 1 took the slot when it was queued; its worker starts it when it next runs.
        "Started 1 normal attempt 1",
        "Failed 1 ExportFailed retry=true",
        "Started 2 low attempt 1",
        "Failed 2 SourceNotFound retry=false",
        "Started 1 normal attempt 2",
        "Succeeded 1 in 200 ms"
      ])
    }))

  it.effect("shutdown interrupts running jobs, fails waiters with ExportCancelled and leaves no fiber", () =>
    Effect.gen(function*() {
      const trace = new Trace()
      const supervisor = yield* Supervisor.track
      const scope = yield* Scope.make()
      const queue = yield* ExportQueue.make<number, ExportFailed | SourceNotFound>({
        concurrency: 2,
        retry: Schedule.spaced("1 minute")
      }).pipe(Scope.extend(scope), Effect.supervised(supervisor))
      const waits = yield* Effect.forEach(
        [1, 2, 3, 4],
        (n) =>
          queue.submit(
            trace.job(n, "normal", n === 1 ? 10 : 10_000, () => n === 1 ? Effect.fail(transient) : Effect.succeed(n))
          )
      )
      const waiters = yield* Effect.fork(Effect.forEach(waits, Effect.exit))
      yield* settle
      yield* TestClock.adjust("1 second")
      yield* settle
      // One job of each kind: waiting for a retry, running, queued.
      const status = yield* queue.status
      expect(status.retrying?.map((r) => nameOf(r.key))).toEqual([1])
      expect(status.running.map((r) => nameOf(r.key))).toEqual([2, 3])
      expect(status.queued.normal.map(nameOf)).toEqual([4])
      expect((yield* supervisor.value).length).toBeGreaterThan(0)
      yield* Scope.close(scope, Exit.void)
      const exits = yield* Fiber.join(waiters)
      for (const [i, exit] of exits.entries()) {
        expect(failureOf(exit)).toEqual(Option.some(new ExportCancelled({ key: key(i + 1) })))
      }
      expect(trace.running.size).toBe(0)
      expect(trace.finalized).toBe(trace.starts.length)
      const alive = Chunk.fromIterable(yield* supervisor.value)
      expect(Chunk.size(alive)).toBe(0)
      // A submit after shutdown fails at once.
      const late = yield* queue.submit(trace.job(9, "high"))
      expect(failureOf(yield* Effect.exit(late))).toEqual(Option.some(new ExportCancelled({ key: key(9) })))
    }))
})
