/**
 * The actor: one fiber owns the per-video navigation state (open videos,
 * the current rally, the last preload plan, the pin of the current clip)
 * and handles the messages of a bounded mailbox one at a time.
 *
 * It never waits for an export or for slow I/O: probes and removals run
 * beside it and come back as messages; exports run in the queue, and a
 * `GetClip` caller gets the job's waiting point to wait on outside the
 * actor. Navigation decides from the plan, the queue's job states and the
 * store's in-memory index: no file check per planned rally.
 *
 * @internal
 */
import { Cause, Deferred, Effect, FiberSet, Option, Queue, type Scope, SubscriptionRef } from "effect"
import { handlers } from "./handlers.js"
import type { Envelope, HandlerDeps, Letter, VideoState } from "./mailbox.js"
import type { VideoView } from "./view.js"

/** What the actor's handlers use. @internal */
export type ActorDeps = Omit<HandlerDeps, "videos" | "published" | "forks" | "mailbox">

/**
 * The attributes of a message's span: `rallycache.video` (the video id, or
 * the path of a video being opened), `rallycache.rally` (index),
 * `rallycache.priority`, `rallycache.mode` and `rallycache.runner`.
 */
const spanAttributes = (envelope: Envelope, runner: string): Record<string, unknown> => {
  const attributes: Record<string, unknown> = { "rallycache.runner": runner }
  switch (envelope._tag) {
    case "OpenVideo":
    case "Opened":
      attributes["rallycache.video"] = envelope.message.id ?? envelope.message.path
      if (envelope.message.mode !== undefined) attributes["rallycache.mode"] = envelope.message.mode
      break
    case "Navigate":
    case "GetClip":
      attributes["rallycache.video"] = envelope.message.videoId
      attributes["rallycache.rally"] = envelope.message.index
      if (envelope._tag === "GetClip") attributes["rallycache.priority"] = "high"
      break
    case "Preload":
      attributes["rallycache.video"] = envelope.message.videoId
      attributes["rallycache.priority"] = envelope.message.priority ?? "low"
      break
    case "Invalidate":
      attributes["rallycache.video"] = envelope.message.videoId
      if (envelope.message.index !== undefined) attributes["rallycache.rally"] = envelope.message.index
      break
    case "Status":
    case "Close":
      attributes["rallycache.video"] = envelope.message.videoId
      break
    case "Stats":
      break
  }
  return attributes
}

/** @internal */
export interface Actor {
  /** Send a message and wait for its reply. */
  readonly ask: <A, E>(make: (reply: Deferred.Deferred<A, E>) => Envelope) => Effect.Effect<A, E>
  /** The open videos, for the hit path. */
  readonly published: SubscriptionRef.SubscriptionRef<ReadonlyMap<string, VideoView>>
}

/**
 * Start the actor in the current scope. Closing it stops the actor, answers
 * what waits in the mailbox with an interruption and releases the pins.
 *
 * @internal
 */
export const make = (deps: ActorDeps): Effect.Effect<Actor, never, Scope.Scope> =>
  Effect.gen(function*() {
    const videos = new Map<string, VideoState>()
    const published = yield* SubscriptionRef.make<ReadonlyMap<string, VideoView>>(new Map())
    const forks = yield* FiberSet.make()
    const mailbox = yield* Queue.bounded<Letter>(deps.config.mailboxCapacity)
    const handle = handlers({ ...deps, videos, published, forks, mailbox })

    // Finalizers run in reverse: the actor stops first, then what is left in
    // the mailbox is answered with an interruption and the pins are released,
    // then forks stop, then (registered earlier) the queue shuts down.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        const left = yield* Queue.takeAll(mailbox)
        yield* Queue.shutdown(mailbox)
        // Every reply type is fine to interrupt; the union of Deferreds just does not unify.
        for (const { envelope } of left) {
          yield* Deferred.interrupt(envelope.reply as unknown as Deferred.Deferred<unknown, unknown>)
        }
        for (const state of videos.values()) yield* handle.releasePin(state)
        videos.clear()
      })
    )
    yield* Queue.take(mailbox).pipe(
      Effect.flatMap(({ envelope, parent }) =>
        handle.message(envelope).pipe(
          Effect.withSpan(`rallycache.message.${envelope._tag}`, {
            attributes: spanAttributes(envelope, deps.config.runnerId),
            ...(Option.isSome(parent) ? { parent: parent.value } : {})
          }),
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

    const ask = <A, E>(make: (reply: Deferred.Deferred<A, E>) => Envelope): Effect.Effect<A, E> =>
      Effect.flatMap(Effect.zip(Deferred.make<A, E>(), Effect.option(Effect.currentSpan)), ([reply, parent]) =>
        Effect.zipRight(Queue.offer(mailbox, { envelope: make(reply), parent }), Deferred.await(reply)))

    return { ask, published }
  })
