/**
 * The manager actor.
 *
 * - One fiber (the actor) owns the per-video state: open videos, the current
 *   rally, the last preload plan and the pin of the current clip. It reads a
 *   bounded mailbox of envelopes: a `Manager` message plus the `Deferred`
 *   its reply goes to.
 * - The actor never waits for an export or slow I/O: probes and removals are
 *   forked, and a probe's result comes back as an internal message. Exports
 *   run in the `ExportQueue`'s workers; a `GetClip` caller receives the
 *   queue's awaiter and waits for it outside the actor.
 * - The actor publishes a snapshot of the open videos (source, rallies,
 *   keys, mode) in a `SubscriptionRef`, so `getClip` answers a cache hit from
 *   that snapshot and the store's quick lookup, without the mailbox.
 * - What the queue does (queued, running, progress, failures) is tracked in
 *   a map updated by the queue's event callback, outside the actor: routing
 *   those events through the bounded mailbox could deadlock an actor that is
 *   itself waiting on the queue.
 *
 * @internal
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js"
import {
  Cause,
  Clock,
  Deferred,
  Effect,
  Either,
  Exit,
  FiberSet,
  Option,
  Predicate,
  Queue,
  Schema,
  Scope,
  SubscriptionRef
} from "effect"
import {
  ClipReady,
  ExportFellBack,
  JobCancelled,
  JobFailed,
  JobProgress,
  JobQueued,
  JobReprioritized,
  JobStarted
} from "../CacheEvent.js"
import { CacheEvents } from "../CacheEvent.js"
import * as CacheKeys from "../CacheKey.js"
import { CacheStore } from "../CacheStore.js"
import type { Reservation } from "../CacheStore.js"
import { Cleanup } from "../Cleanup.js"
import { CacheConfig, retrySchedule } from "../Config.js"
import type { CacheEntry, CacheKey, ExportMode, Priority, Rally, SourceInfo } from "../Domain.js"
import { Clip, priorityRank, VideoId, VideoSource } from "../Domain.js"
import type { CacheIOError, ExportError } from "../Errors.js"
import { InvalidInput, RallyNotFound, UnknownVideo } from "../Errors.js"
import { Exporter } from "../Exporter.js"
import * as ExportQueue from "../ExportQueue.js"
import type { Close, GetClip, Invalidate, Navigate, OpenVideo, Preload, Status } from "../Manager.js"
import {
  Close as CloseMessage,
  GetClip as GetClipMessage,
  Invalidate as InvalidateMessage,
  Navigate as NavigateMessage,
  OpenVideo as OpenVideoMessage,
  Preload as PreloadMessage,
  Stats as StatsMessage,
  Status as StatusMessage
} from "../Manager.js"
import { Metrics } from "../Metrics.js"
import * as Policy from "../Policy.js"
import { PreloadPolicy } from "../PreloadPolicy.js"
import type {
  ClipError,
  OpenedVideo,
  OpenError,
  RallyCacheShape,
  RallyState,
  Stats,
  VideoStatus
} from "../RallyCache.js"

/** What `getClip` needs to serve a hit, published by the actor. */
interface VideoView {
  readonly source: VideoSource
  readonly info: SourceInfo
  readonly rallies: ReadonlyArray<Rally>
  readonly keys: ReadonlyArray<CacheKey>
  readonly mode: ExportMode
  /** Memo of the `Clip` served on hits, per rally. */
  readonly hitClips: Array<Clip | undefined>
}

/** The actor's own state of a video. */
interface VideoState {
  readonly view: VideoView
  current: number | null
  /** The last preload plan: key -> priority. */
  plan: ReadonlyMap<CacheKey, Priority>
  /** Holds the pin of the current clip. */
  pin: Scope.CloseableScope | null
}

/** What the queue is doing with a key, from its events. */
interface JobInfo {
  readonly videoId: VideoId
  readonly rallyIndex: number
  readonly mode: ExportMode
  priority: Priority
  state: "queued" | "running"
  progress: number
}

type Awaiter = Effect.Effect<Clip, ClipError>

type Envelope =
  | { readonly _tag: "OpenVideo"; readonly message: OpenVideo; readonly reply: Deferred.Deferred<OpenedVideo, OpenError> }
  | {
    readonly _tag: "Opened"
    readonly message: OpenVideo
    readonly id: VideoId | undefined
    readonly info: SourceInfo
    readonly rallies: ReadonlyArray<Rally>
    readonly reply: Deferred.Deferred<OpenedVideo, OpenError>
  }
  | { readonly _tag: "Navigate"; readonly message: Navigate; readonly reply: Deferred.Deferred<void, UnknownVideo | RallyNotFound> }
  | { readonly _tag: "GetClip"; readonly message: GetClip; readonly reply: Deferred.Deferred<Awaiter, ClipError> }
  | { readonly _tag: "Preload"; readonly message: Preload; readonly reply: Deferred.Deferred<void, UnknownVideo | RallyNotFound> }
  | {
    readonly _tag: "Invalidate"
    readonly message: Invalidate
    readonly reply: Deferred.Deferred<number, UnknownVideo | RallyNotFound | CacheIOError>
  }
  | { readonly _tag: "Status"; readonly message: Status; readonly reply: Deferred.Deferred<VideoStatus, UnknownVideo> }
  | { readonly _tag: "Stats"; readonly message: StatsMessage; readonly reply: Deferred.Deferred<Stats, never> }
  | { readonly _tag: "Close"; readonly message: Close; readonly reply: Deferred.Deferred<void, never> }

const videoIdFromFingerprint = (fingerprint: string): VideoId =>
  bytesToHex(sha256(utf8ToBytes(fingerprint))).slice(0, 32) as VideoId

const describeError = (error: unknown): string =>
  Predicate.hasProperty(error, "message") && typeof error.message === "string" && error.message.length > 0
    ? error.message
    : String(error)

const failureReason = (error: unknown): string =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string"
    ? error._tag === "ExportFailed" && Predicate.hasProperty(error, "reason") && typeof error.reason === "string"
      ? error.reason
      : error._tag
    : "defect"

const isIndex = (index: number, count: number): boolean => Number.isInteger(index) && index >= 0 && index < count

const makeClip = (view: VideoView, index: number, entry: CacheEntry, path: string, cached: boolean): Clip => {
  const rally = view.rallies[index]!
  // Trusted values from the store and the validated rally: skip re-validation on the hot path.
  return new Clip({
    key: entry.key,
    videoId: view.source.id,
    rallyIndex: index,
    mode: entry.mode,
    path,
    start: rally.start,
    end: rally.end,
    clipStart: entry.clipStart,
    clipEnd: entry.clipEnd,
    ...(entry.firstFrame === undefined ? {} : { firstFrame: entry.firstFrame }),
    ...(entry.leadIn === undefined ? {} : { leadIn: entry.leadIn }),
    ...(entry.container === undefined ? {} : { container: entry.container }),
    sizeBytes: entry.sizeBytes,
    cached
  }, true)
}

/**
 * Build the manager and its client API. Everything it starts lives in the
 * current scope: closing it stops the actor, fails what waits in the
 * mailbox, releases the pins and shuts the export queue down (running
 * exports are interrupted and their reservations aborted).
 */
export const make: Effect.Effect<
  RallyCacheShape,
  never,
  Scope.Scope | Exporter | CacheStore | PreloadPolicy | Metrics | CacheEvents | CacheConfig | Cleanup
> = Effect.gen(function*() {
  const exporter = yield* Exporter
  const store = yield* CacheStore
  const policy = yield* PreloadPolicy
  const metrics = yield* Metrics
  const events = yield* CacheEvents
  const config = yield* CacheConfig
  const cleanup = yield* Cleanup

  // ---- shared bookkeeping (changed in synchronous sections) -------------

  const jobs = new Map<CacheKey, JobInfo>()
  /** The mode of each job we submitted (the queue hands the same object back in its events). */
  const jobModes = new WeakMap<object, ExportMode>()
  const failures = new Map<CacheKey, string>()
  /** GetClip callers waiting per key: their jobs are never cancelled or lowered by navigation. */
  const waiters = new Map<CacheKey, number>()

  const publishDepth = Effect.suspend(() => {
    let high = 0
    let normal = 0
    let low = 0
    let running = 0
    for (const job of jobs.values()) {
      if (job.state === "running") running++
      else if (job.priority === "high") high++
      else if (job.priority === "normal") normal++
      else low++
    }
    return metrics.queue({ high, normal, low, running })
  })

  const onEvent = (event: ExportQueue.QueueEvent): Effect.Effect<void> =>
    Effect.suspend(() => {
      const { key, rallyIndex, videoId } = event.job
      const job = { key, videoId, rallyIndex }
      let info = jobs.get(key)
      if (info === undefined && (event._tag === "Queued" || event._tag === "Started")) {
        // A job queued again right after its previous run ended: the end
        // event of that run removed the entry.
        const mode = jobModes.get(event.job)
        if (mode !== undefined) {
          info = { videoId, rallyIndex, mode, priority: event.priority, state: "queued", progress: 0 }
          jobs.set(key, info)
        }
      }
      switch (event._tag) {
        case "Queued": {
          failures.delete(key)
          if (info !== undefined) {
            info.state = "queued"
            info.priority = event.priority
            info.progress = 0
          }
          return events.publish(new JobQueued({ ...job, priority: event.priority }))
        }
        case "Reprioritized": {
          if (info !== undefined) info.priority = event.priority
          return events.publish(new JobReprioritized({ ...job, priority: event.priority }))
        }
        case "Started": {
          if (info !== undefined) {
            info.state = "running"
            info.priority = event.priority
            info.progress = 0
          }
          return events.publish(new JobStarted({ ...job, priority: event.priority, attempt: event.attempt }))
        }
        case "Succeeded": {
          jobs.delete(key)
          waiters.delete(key)
          failures.delete(key)
          return metrics.exportSucceeded(info?.mode ?? config.mode, event.priority, event.millis)
        }
        case "Failed": {
          const reason = describeError(event.error)
          if (event.willRetry) {
            // Waiting for its next attempt: it holds no slot.
            if (info !== undefined) {
              info.state = "queued"
              info.progress = 0
            }
          } else {
            jobs.delete(key)
            waiters.delete(key)
            failures.set(key, reason)
          }
          return Effect.zipRight(
            metrics.exportFailed(failureReason(event.error), event.willRetry),
            events.publish(new JobFailed({ ...job, reason, willRetry: event.willRetry }))
          )
        }
        case "Cancelled": {
          if (event.reason === "preempted") {
            if (info !== undefined) {
              info.state = "queued"
              info.progress = 0
            }
          } else {
            jobs.delete(key)
            waiters.delete(key)
          }
          return events.publish(new JobCancelled({ ...job, reason: event.reason }))
        }
      }
    }).pipe(Effect.zipRight(publishDepth))

  const queue = yield* ExportQueue.make<CacheEntry, ExportError>({
    concurrency: config.concurrency,
    preemption: !config.preemption ? "off" : exporter.canPause ? "suspend" : "interrupt",
    retry: retrySchedule(config),
    onEvent
  })

  // ---- the export job ----------------------------------------------------

  // Clean up at once when a new clip pushes the cache over a limit, instead
  // of waiting for the next periodic run.
  const afterCommit = (videoId: VideoId) =>
    Effect.gen(function*() {
      const usage = yield* store.usage
      let over = usage.bytes > config.maxBytes
      if (!over && usage.entries > config.maxEntriesPerVideo) {
        const entries = yield* store.list
        let count = 0
        for (const entry of entries) if (entry.videoId === videoId) count++
        over = count > config.maxEntriesPerVideo
      }
      if (over) yield* cleanup.trigger
    }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("rallycache: cleanup after a commit failed", cause)))

  const runExport = (view: VideoView, index: number, key: CacheKey, context: ExportQueue.JobContext) => {
    const rally = view.rallies[index]!
    let committed = false
    const use = (reservation: Reservation) =>
      Effect.gen(function*() {
        const startedAt = yield* Clock.currentTimeMillis
        const result = yield* exporter.export({
          source: view.source,
          rally,
          mode: view.mode,
          priority: jobs.get(key)?.priority ?? "high",
          tempPath: reservation.tempPath,
          outputPath: reservation.finalPath,
          paused: context.paused,
          onProgress: (ratio) =>
            Effect.suspend(() => {
              const info = jobs.get(key)
              if (info !== undefined) info.progress = ratio
              return events.publish(new JobProgress({ key, videoId: view.source.id, rallyIndex: index, ratio }))
            })
        })
        const entry = yield* store.commit(reservation, {
          videoId: view.source.id,
          rallyIndex: index,
          mode: view.mode,
          clipStart: result.clipStart,
          clipEnd: result.clipEnd,
          firstFrame: result.firstFrame,
          leadIn: result.leadIn,
          container: result.container,
          sizeBytes: result.sizeBytes,
          priority: jobs.get(key)?.priority ?? "high"
        })
        committed = true
        if (result.fellBack !== undefined) {
          yield* metrics.exportFellBack(view.mode, result.fellBack.to)
          yield* events.publish(
            new ExportFellBack({
              key,
              videoId: view.source.id,
              rallyIndex: index,
              from: view.mode,
              to: result.fellBack.to,
              reason: result.fellBack.reason
            })
          )
        }
        const exportMs = (yield* Clock.currentTimeMillis) - startedAt
        yield* events.publish(
          new ClipReady({ clip: makeClip(view, index, entry, reservation.finalPath, false), exportMs })
        )
        yield* afterCommit(view.source.id)
        return entry
      })
    return Effect.acquireUseRelease(
      // The acquire of acquireUseRelease is uninterruptible, but reserve may
      // wait for another process's export: cancelling must not wait for it.
      // Both stores only take the lock in an uninterruptible step, so an
      // interrupted wait leaks no lock.
      Effect.interruptible(store.reserve(key)),
      (reserved) => reserved._tag === "Cached" ? Effect.succeed(reserved.entry) : use(reserved.reservation),
      (reserved, exit) =>
        reserved._tag === "Reserved" && Exit.isFailure(exit) && !committed
          ? store.abort(reserved.reservation)
          : Effect.void
    )
  }

  const makeJob = (view: VideoView, index: number, priority: Priority): ExportQueue.ExportJob<CacheEntry, ExportError> => {
    const key = view.keys[index]!
    const job: ExportQueue.ExportJob<CacheEntry, ExportError> = {
      key,
      videoId: view.source.id,
      rallyIndex: index,
      priority,
      run: (context) => runExport(view, index, key, context)
    }
    jobModes.set(job, view.mode)
    return job
  }

  /** Queue a rally's export (or join the job of its key). */
  const submit = (view: VideoView, index: number, priority: Priority) =>
    Effect.suspend(() => {
      const key = view.keys[index]!
      if (!jobs.has(key)) {
        jobs.set(key, {
          videoId: view.source.id,
          rallyIndex: index,
          mode: view.mode,
          priority,
          state: "queued",
          progress: 0
        })
      }
      return queue.submit(makeJob(view, index, priority))
    })

  // ---- actor state ---------------------------------------------------------

  const videos = new Map<string, VideoState>()
  const published = yield* SubscriptionRef.make<ReadonlyMap<string, VideoView>>(new Map())
  const republish = Effect.suspend(() =>
    SubscriptionRef.set(published, new Map(Array.from(videos, ([id, state]) => [id, state.view] as const)))
  )

  const forks = yield* FiberSet.make()
  const mailbox = yield* Queue.bounded<Envelope>(config.mailboxCapacity)

  const videoOf = (videoId: string) =>
    Effect.suspend(() => {
      const state = videos.get(videoId)
      return state === undefined ? Effect.fail(new UnknownVideo({ videoId })) : Effect.succeed(state)
    })

  const checkIndex = (state: VideoState, index: number) =>
    isIndex(index, state.view.rallies.length)
      ? Effect.void
      : Effect.fail(
        new RallyNotFound({ videoId: state.view.source.id, index, count: state.view.rallies.length })
      )

  const isDemanded = (key: CacheKey): boolean => (waiters.get(key) ?? 0) > 0

  const releasePin = (state: VideoState) =>
    Effect.suspend(() => {
      const pin = state.pin
      state.pin = null
      return pin === null ? Effect.void : Scope.close(pin, Exit.void)
    })

  /** Cancel the queued (not running) work of `keys` that no caller waits for. */
  const cancelQueued = (keys: Iterable<CacheKey>) =>
    Effect.forEach(
      Array.from(keys).filter((key) => jobs.get(key)?.state === "queued" && !isDemanded(key)),
      (key) => queue.cancel(key),
      { discard: true }
    )

  /**
   * Drop a video's state: cancel its queued work (planned or preloaded),
   * except the clips in `keep`, and release its pin.
   */
  const forget = (state: VideoState, keep: ReadonlySet<CacheKey> = new Set()) =>
    Effect.suspend(() => {
      const videoId = state.view.source.id
      const keys: Array<CacheKey> = []
      for (const [key, info] of jobs) if (info.videoId === videoId && !keep.has(key)) keys.push(key)
      for (const key of state.plan.keys()) if (!keep.has(key)) keys.push(key)
      return Effect.zipRight(cancelQueued(new Set(keys)), releasePin(state))
    })

  // ---- handlers ------------------------------------------------------------

  const startOpen = (message: OpenVideo, reply: Deferred.Deferred<OpenedVideo, OpenError>) =>
    Effect.gen(function*() {
      let id: VideoId | undefined
      if (message.id !== undefined) {
        const decoded = Schema.decodeUnknownEither(VideoId)(message.id)
        if (Either.isLeft(decoded)) {
          return yield* Deferred.fail(
            reply,
            new InvalidInput({
              field: "id",
              reason: message.id.length === 0 ? "the video id is empty" : "the video id is longer than 4096 characters",
              fix: "pass a shorter non-empty id, or leave it out to derive one from the file"
            })
          )
        }
        id = decoded.right
      }
      // The probe may take a while (ffprobe): run it beside the actor, and
      // let the result come back as a message.
      yield* FiberSet.run(
        forks,
        Effect.gen(function*() {
          const info = yield* exporter.probe(message.path)
          const rallies = yield* Policy.validateRallies(message.rallies, {
            maxRallyLength: config.maxRallyLength,
            duration: info.duration,
            frameRate: info.frameRate
          })
          yield* Queue.offer(mailbox, { _tag: "Opened", message, id, info, rallies, reply })
        }).pipe(Effect.catchAll((error) => Deferred.fail(reply, error)), Effect.onInterrupt(() => Deferred.interrupt(reply)))
      )
    })

  const register = (envelope: Extract<Envelope, { _tag: "Opened" }>): Effect.Effect<OpenedVideo> =>
    Effect.gen(function*() {
      const { info, message, rallies } = envelope
      const id = envelope.id ?? videoIdFromFingerprint(info.fingerprint)
      const mode = message.mode ?? config.mode
      const settingsVersion = exporter.settingsVersion(mode)
      const source = new VideoSource({ id, path: message.path, fingerprint: info.fingerprint })
      const keys = rallies.map((rally) =>
        CacheKeys.make({ fingerprint: info.fingerprint, start: rally.start, end: rally.end, mode, settingsVersion })
      )
      const previous = videos.get(id)
      // Reopened: work queued for rallies that are still there stays queued.
      if (previous !== undefined) yield* forget(previous, new Set(keys))
      const view: VideoView = { source, info, rallies, keys, mode, hitClips: new Array(rallies.length) }
      videos.set(id, { view, current: null, plan: new Map(), pin: null })
      yield* republish
      return { source, info, rallies, mode }
    })

  const navigate = (message: Navigate) =>
    Effect.gen(function*() {
      const state = yield* videoOf(message.videoId)
      yield* checkIndex(state, message.index)
      const { view } = state
      const plan = policy.plan({ rallies: view.rallies, current: message.index, ahead: config.preloadAhead })
      const next = new Map<CacheKey, Priority>()
      for (const item of plan) {
        if (!isIndex(item.index, view.keys.length)) continue
        const key = view.keys[item.index]!
        if (next.has(key)) continue
        next.set(key, item.priority)
        const job = jobs.get(key)
        if (job !== undefined) {
          // A clip someone waits for stays high, whatever the plan says.
          const priority = isDemanded(key) && priorityRank(item.priority) > priorityRank(job.priority)
            ? job.priority
            : item.priority
          if (priority !== job.priority) yield* queue.setPriority(key, priority)
          continue
        }
        if (failures.has(key)) continue
        if (Option.isSome(yield* store.lookup(key))) continue
        yield* submit(view, item.index, item.priority)
      }
      const dropped: Array<CacheKey> = []
      for (const key of state.plan.keys()) if (!next.has(key)) dropped.push(key)
      yield* cancelQueued(dropped)
      state.plan = next
      state.current = message.index
      yield* releasePin(state)
      const pin = yield* Scope.make()
      state.pin = pin
      yield* Scope.extend(store.pin(view.keys[message.index]!), pin)
    })

  const getClip = (message: GetClip) =>
    Effect.gen(function*() {
      const state = yield* videoOf(message.videoId)
      yield* checkIndex(state, message.index)
      const { view } = state
      const key = view.keys[message.index]!
      const path = store.pathOf(key)
      // Committed since the caller looked: no export needed.
      const entry = yield* store.lookup(key)
      if (Option.isSome(entry)) {
        const clip = makeClip(view, message.index, entry.value, path, true)
        const hit: Awaiter = Effect.succeed(clip)
        return hit
      }
      // The caller asked again: an earlier failure does not stick.
      failures.delete(key)
      waiters.set(key, (waiters.get(key) ?? 0) + 1)
      const await_ = yield* submit(view, message.index, "high")
      const awaiter: Awaiter = await_.pipe(
        Effect.map((entry) => makeClip(view, message.index, entry, path, false)),
        Effect.ensuring(Effect.sync(() => {
          const n = waiters.get(key) ?? 0
          if (n <= 1) waiters.delete(key)
          else waiters.set(key, n - 1)
        }))
      )
      return awaiter
    })

  const preload = (message: Preload) =>
    Effect.gen(function*() {
      const state = yield* videoOf(message.videoId)
      const { view } = state
      const indexes = message.indexes ?? view.rallies.map((_, i) => i)
      for (const index of indexes) yield* checkIndex(state, index)
      const priority = message.priority ?? "low"
      for (const index of indexes) {
        const key = view.keys[index]!
        const job = jobs.get(key)
        if (job !== undefined) {
          if (priorityRank(priority) < priorityRank(job.priority)) yield* queue.setPriority(key, priority)
          continue
        }
        if (Option.isSome(yield* store.lookup(key))) continue
        failures.delete(key)
        yield* submit(view, index, priority)
      }
    })

  const invalidate = (message: Invalidate, reply: Deferred.Deferred<number, UnknownVideo | RallyNotFound | CacheIOError>) =>
    Effect.gen(function*() {
      const state = yield* videoOf(message.videoId)
      if (message.index !== undefined) yield* checkIndex(state, message.index)
      const keys = message.index === undefined ? state.view.keys : [state.view.keys[message.index]!]
      for (const key of keys) failures.delete(key)
      // Removing files is I/O: do it beside the actor.
      yield* FiberSet.run(
        forks,
        Effect.forEach(keys, (key) => store.remove(key, "manual")).pipe(
          Effect.map((removed) => removed.filter(Boolean).length),
          Effect.exit,
          Effect.flatMap((exit) => Deferred.done(reply, exit)),
          Effect.onInterrupt(() => Deferred.interrupt(reply))
        )
      )
    }).pipe(Effect.catchAll((error) => Deferred.fail(reply, error)))

  const status = (message: Status) =>
    Effect.gen(function*() {
      const state = yield* videoOf(message.videoId)
      const rallies: Array<RallyState> = []
      for (const key of state.view.keys) {
        const job = jobs.get(key)
        if (job !== undefined) {
          rallies.push(
            job.state === "running"
              ? { _tag: "Running", key, priority: job.priority, progress: job.progress }
              : { _tag: "Queued", key, priority: job.priority }
          )
          continue
        }
        const entry = yield* store.lookup(key)
        if (Option.isSome(entry)) {
          rallies.push({ _tag: "Cached", key, sizeBytes: entry.value.sizeBytes })
          continue
        }
        const failure = failures.get(key)
        rallies.push(failure === undefined ? { _tag: "Idle", key } : { _tag: "Failed", key, reason: failure })
      }
      const result: VideoStatus = { videoId: state.view.source.id, current: state.current, rallies }
      return result
    })

  const stats = Effect.gen(function*() {
    const snapshot = yield* metrics.snapshot
    const usage = yield* store.usage
    const queueStatus = yield* queue.status
    return { metrics: snapshot, usage, queue: queueStatus, videos: videos.size }
  })

  const close = (message: Close) =>
    Effect.gen(function*() {
      const state = videos.get(message.videoId)
      if (state === undefined) return
      videos.delete(message.videoId)
      yield* forget(state)
      yield* republish
    })

  const handle = (envelope: Envelope): Effect.Effect<unknown> => {
    switch (envelope._tag) {
      case "OpenVideo":
        return startOpen(envelope.message, envelope.reply)
      case "Opened":
        return Deferred.complete(envelope.reply, register(envelope))
      case "Navigate":
        return Deferred.complete(envelope.reply, navigate(envelope.message))
      case "GetClip":
        return Deferred.complete(envelope.reply, getClip(envelope.message))
      case "Preload":
        return Deferred.complete(envelope.reply, preload(envelope.message))
      case "Invalidate":
        return invalidate(envelope.message, envelope.reply)
      case "Status":
        return Deferred.complete(envelope.reply, status(envelope.message))
      case "Stats":
        return Deferred.complete(envelope.reply, stats)
      case "Close":
        return Deferred.complete(envelope.reply, close(envelope.message))
    }
  }

  // ---- lifetime --------------------------------------------------------------

  // Finalizers run in reverse: the actor stops first, then what is left in
  // the mailbox is answered with an interruption and the pins are released,
  // then forks stop, then (registered earlier) the queue shuts down.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      const left = yield* Queue.takeAll(mailbox)
      yield* Queue.shutdown(mailbox)
      // Every reply type is fine to interrupt; the union of Deferreds just does not unify.
      for (const envelope of left) yield* Deferred.interrupt(envelope.reply as unknown as Deferred.Deferred<unknown, unknown>)
      for (const state of videos.values()) yield* releasePin(state)
      videos.clear()
    })
  )
  yield* Queue.take(mailbox).pipe(
    Effect.flatMap((envelope) =>
      handle(envelope).pipe(
        Effect.catchAllCause((cause) =>
          Cause.isInterruptedOnly(cause)
            ? Effect.failCause(cause)
            : Effect.logError("rallycache: the manager failed to handle a message", cause)
        )
      )
    ),
    Effect.forever,
    Effect.forkScoped
  )

  // ---- client API ------------------------------------------------------------

  const ask = <A, E>(make: (reply: Deferred.Deferred<A, E>) => Envelope): Effect.Effect<A, E> =>
    Effect.flatMap(Deferred.make<A, E>(), (reply) =>
      Effect.zipRight(Queue.offer(mailbox, make(reply)), Deferred.await(reply)))

  /** The clip of a hit, reused while the entry is the same (building a `Clip` costs more than the rest of a hit). */
  const hitClip = (view: VideoView, index: number, entry: CacheEntry): Clip => {
    const known = view.hitClips[index]
    if (
      known !== undefined && known.key === entry.key && known.sizeBytes === entry.sizeBytes &&
      known.clipStart === entry.clipStart && known.clipEnd === entry.clipEnd && known.mode === entry.mode
    ) return known
    const clip = makeClip(view, index, entry, store.pathOf(entry.key), true)
    view.hitClips[index] = clip
    return clip
  }

  const exportClip = (videoId: string, index: number): Effect.Effect<Clip, ClipError> =>
    Effect.flatten(ask<Awaiter, ClipError>((reply) => ({
      _tag: "GetClip",
      message: new GetClipMessage({ videoId, index }),
      reply
    })))

  // The hot path: a Ref read, the store's quick lookup, and no mailbox.
  const clientGetClip = (videoId: string, index: number): Effect.Effect<Clip, ClipError> =>
    Effect.flatMap(SubscriptionRef.get(published), (views) => {
      const view = views.get(videoId)
      if (view === undefined) return Effect.fail(new UnknownVideo({ videoId }))
      if (!isIndex(index, view.keys.length)) {
        return Effect.fail(new RallyNotFound({ videoId, index, count: view.keys.length }))
      }
      const key = view.keys[index]!
      return Effect.flatMap(store.lookup(key), (entry) =>
        Option.isSome(entry)
          ? Effect.as(Effect.zipRight(store.touch(key), metrics.hit), hitClip(view, index, entry.value))
          : Effect.zipRight(metrics.miss, exportClip(videoId, index)))
    })

  const shape: RallyCacheShape = {
    openVideo: (input) =>
      ask((reply) => ({
        _tag: "OpenVideo",
        message: new OpenVideoMessage({
          path: input.path,
          rallies: input.rallies.map((r) => ({ start: r.start, end: r.end })),
          id: input.id,
          mode: input.mode
        }),
        reply
      })),
    navigate: (videoId, index) =>
      ask((reply) => ({ _tag: "Navigate", message: new NavigateMessage({ videoId, index }), reply })),
    getClip: clientGetClip,
    leaseClip: (videoId, index) =>
      Effect.gen(function*() {
        const view = (yield* SubscriptionRef.get(published)).get(videoId)
        const key = view === undefined ? undefined : view.keys[index]
        // Pin before looking: a clip cannot be evicted between the lookup and the pin.
        if (key !== undefined && isIndex(index, view!.keys.length)) yield* store.pin(key)
        return yield* clientGetClip(videoId, index)
      }),
    preload: (videoId, options) =>
      ask((reply) => ({
        _tag: "Preload",
        message: new PreloadMessage({ videoId, indexes: options?.indexes, priority: options?.priority }),
        reply
      })),
    invalidate: (videoId, index) =>
      ask((reply) => ({ _tag: "Invalidate", message: new InvalidateMessage({ videoId, index }), reply })),
    status: (videoId) => ask((reply) => ({ _tag: "Status", message: new StatusMessage({ videoId }), reply })),
    stats: ask((reply) => ({ _tag: "Stats", message: new StatsMessage(), reply })),
    close: (videoId) => ask((reply) => ({ _tag: "Close", message: new CloseMessage({ videoId }), reply })),
    events: events.stream
  }
  return shape
})
