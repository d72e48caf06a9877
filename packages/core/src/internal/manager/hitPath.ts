/**
 * The client's hit path: `getClip` and `leaseClip` answer a cached clip from
 * the videos the actor publishes (a `Ref` read) and the store's quick
 * lookup, never through the mailbox. Only a miss goes to the actor, which
 * counts it (or the hit, when the clip was committed meanwhile).
 *
 * @internal
 */
import { Effect, Option, type Scope, type SubscriptionRef } from "effect"
import type { CacheStoreShape } from "../../CacheStore.js"
import type { CacheEntry, Clip } from "../../Domain.js"
import { RallyNotFound, UnknownVideo } from "../../Errors.js"
import type { MetricsShape } from "../../Metrics.js"
import type { ClipError } from "../../RallyCache.js"
import { isIndex, makeClip, type VideoView } from "./view.js"

/** @internal */
export interface HitPath {
  readonly getClip: (videoId: string, index: number) => Effect.Effect<Clip, ClipError>
  readonly leaseClip: (videoId: string, index: number) => Effect.Effect<Clip, ClipError, Scope.Scope>
}

/** @internal */
export const make = (deps: {
  readonly store: CacheStoreShape
  readonly metrics: MetricsShape
  readonly published: SubscriptionRef.SubscriptionRef<ReadonlyMap<string, VideoView>>
  /** Ask the actor for the clip: it exports it, or finds it committed. */
  readonly miss: (videoId: string, index: number) => Effect.Effect<Clip, ClipError>
}): HitPath => {
  const { metrics, published, store } = deps

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

  const getClip = (videoId: string, index: number): Effect.Effect<Clip, ClipError> =>
    Effect.flatMap(published.get, (views) => {
      const view = views.get(videoId)
      if (view === undefined) return Effect.fail(new UnknownVideo({ videoId }))
      if (!isIndex(index, view.keys.length)) {
        return Effect.fail(new RallyNotFound({ videoId, index, count: view.keys.length }))
      }
      const key = view.keys[index]!
      return Effect.flatMap(store.lookup(key), (entry) =>
        Option.isSome(entry)
          ? Effect.as(Effect.zipRight(store.touch(key), metrics.hit), hitClip(view, index, entry.value))
          : deps.miss(videoId, index))
    })

  const leaseClip = (videoId: string, index: number) =>
    Effect.gen(function*() {
      const view = (yield* published.get).get(videoId)
      // Pin before looking: a clip cannot be evicted between the lookup and the pin.
      if (view !== undefined && isIndex(index, view.keys.length)) yield* store.pin(view.keys[index]!)
      return yield* getClip(videoId, index)
    })

  return { getClip, leaseClip }
}
