/**
 * What the actor does with each message. Runs inside the actor's fiber
 * only, so the navigation state needs no lock.
 *
 * @internal
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js"
import { Deferred, Effect, Either, Exit, FiberSet, Option, Queue, Schema, Scope, SubscriptionRef } from "effect"
import * as CacheKeys from "../../CacheKey.js"
import type { CacheKey, Priority } from "../../Domain.js"
import { priorityRank, VideoId, VideoSource } from "../../Domain.js"
import type { CacheIOError } from "../../Errors.js"
import { InvalidInput, RallyNotFound, UnknownVideo } from "../../Errors.js"
import * as Rallies from "../../Rallies.js"
import type { OpenedVideo, OpenError, RallyState, VideoStatus } from "../../RallyCache.js"
import type { Close, GetClip, Invalidate, Navigate, OpenVideo, Preload, Status } from "../../RallyMessages.js"
import type { Awaiter, Envelope, HandlerDeps, VideoState } from "./mailbox.js"
import { addDemand, cancelQueued, demanding, isDemanded, rallyState } from "./registry.js"
import { isIndex, makeClip, type VideoView } from "./view.js"

const videoIdFromFingerprint = (fingerprint: string): VideoId =>
  bytesToHex(sha256(utf8ToBytes(fingerprint))).slice(0, 32) as VideoId

/** @internal */
export const handlers = (deps: HandlerDeps) => {
  const { config, exporter, forks, mailbox, metrics, policy, registry, store, videos } = deps
  const { queue } = registry

  const republish = Effect.suspend(() =>
    SubscriptionRef.set(deps.published, new Map(Array.from(videos, ([id, state]) => [id, state.view] as const)))
  )

  const videoOf = (videoId: string) =>
    Effect.suspend(() => {
      const state = videos.get(videoId)
      return state === undefined ? Effect.fail(new UnknownVideo({ videoId })) : Effect.succeed(state)
    })

  const checkIndex = (state: VideoState, index: number) =>
    isIndex(index, state.view.rallies.length)
      ? Effect.void
      : Effect.fail(new RallyNotFound({ videoId: state.view.source.id, index, count: state.view.rallies.length }))

  // The export's span is a child of the message's that queued it.
  const submit = (view: VideoView, index: number, priority: Priority) =>
    Effect.flatMap(Effect.option(Effect.currentSpan), (parent) => queue.submit(deps.makeJob(view, index, priority, parent)))

  const releasePin = (state: VideoState) =>
    Effect.suspend(() => {
      const pin = state.pin
      state.pin = null
      return pin === null ? Effect.void : Scope.close(pin, Exit.void)
    })

  /** Drop a video's state: cancel its queued work except the clips in `keep`, and release its pin. */
  const forget = (state: VideoState, keep: ReadonlySet<CacheKey> = new Set()) =>
    Effect.suspend(() => {
      const keys = new Set<CacheKey>()
      for (const key of state.view.keys) if (!keep.has(key)) keys.add(key)
      for (const key of state.plan.keys()) if (!keep.has(key)) keys.add(key)
      return Effect.zipRight(cancelQueued(registry, keys), releasePin(state))
    })

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
      const parent = yield* Effect.option(Effect.currentSpan)
      yield* FiberSet.run(
        forks,
        Effect.gen(function*() {
          const info = yield* exporter.probe(message.path)
          const rallies = yield* Rallies.validateRallies(message.rallies, {
            maxRallyLength: config.maxRallyLength,
            duration: info.duration,
            frameRate: info.frameRate
          })
          yield* Queue.offer(mailbox, { envelope: { _tag: "Opened", message, id, info, rallies, reply }, parent })
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
        const job = yield* queue.state(key)
        if (job !== undefined) {
          // A clip someone waits for stays high, whatever the plan says.
          const priority = isDemanded(registry, key) && priorityRank(item.priority) > priorityRank(job.priority)
            ? job.priority
            : item.priority
          if (priority !== job.priority) yield* queue.setPriority(key, priority)
          continue
        }
        if (registry.failures.has(key) || (yield* store.has(key))) continue
        yield* submit(view, item.index, item.priority)
      }
      const dropped: Array<CacheKey> = []
      for (const key of state.plan.keys()) if (!next.has(key)) dropped.push(key)
      yield* cancelQueued(registry, dropped)
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
      // Committed since the caller looked: a hit after all.
      const entry = yield* store.lookup(key)
      if (Option.isSome(entry)) {
        yield* Effect.zipRight(store.touch(key), metrics.hit)
        const hit: Awaiter = Effect.succeed(makeClip(view, message.index, entry.value, store.pathOf(key), true))
        return hit
      }
      yield* metrics.miss
      // The caller asked again: an earlier failure does not stick.
      registry.failures.delete(key)
      addDemand(registry, key)
      const wait = yield* submit(view, message.index, "high")
      const awaiter: Awaiter = demanding(
        registry,
        key,
        Effect.map(wait, (entry) => makeClip(view, message.index, entry, store.pathOf(entry.key), false))
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
        const job = yield* queue.state(key)
        if (job !== undefined) {
          if (priorityRank(priority) < priorityRank(job.priority)) yield* queue.setPriority(key, priority)
          continue
        }
        if (yield* store.has(key)) continue
        registry.failures.delete(key)
        yield* submit(view, index, priority)
      }
    })

  const invalidate = (message: Invalidate, reply: Deferred.Deferred<number, UnknownVideo | RallyNotFound | CacheIOError>) =>
    Effect.gen(function*() {
      const state = yield* videoOf(message.videoId)
      if (message.index !== undefined) yield* checkIndex(state, message.index)
      const keys = message.index === undefined ? state.view.keys : [state.view.keys[message.index]!]
      for (const key of keys) registry.failures.delete(key)
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
        const job = yield* rallyState(registry, key)
        if (job !== undefined) {
          rallies.push(job)
          continue
        }
        const entry = yield* store.lookup(key)
        if (Option.isSome(entry)) {
          rallies.push({ _tag: "Cached", key, sizeBytes: entry.value.sizeBytes })
          continue
        }
        const failure = registry.failures.get(key)
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

  const message = (envelope: Envelope): Effect.Effect<unknown> => {
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

  return { message, releasePin }
}
