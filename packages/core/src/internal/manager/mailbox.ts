/**
 * The actor's mailbox: its envelopes (a message and where its reply goes),
 * the state the actor keeps per video, and what its handlers depend on.
 *
 * @internal
 */
import type { Deferred, Effect, FiberSet, Option, Queue, Scope, SubscriptionRef, Tracer } from "effect"
import type { CacheStoreShape } from "../../CacheStore.js"
import type { RallyCacheConfig } from "../../Config.js"
import type { CacheEntry, CacheKey, Clip, Priority, Rally, SourceInfo, VideoId } from "../../Domain.js"
import type { CacheIOError, ExportError, RallyNotFound, UnknownVideo } from "../../Errors.js"
import type { ExporterShape } from "../../Exporter.js"
import type { ExportJob } from "../../ExportQueue.js"
import type { MetricsShape } from "../../Metrics.js"
import type { PreloadPolicyShape } from "../../PreloadPolicy.js"
import type { ClipError, OpenedVideo, OpenError, Stats, VideoStatus } from "../../RallyCache.js"
import type { Close, GetClip, Invalidate, Navigate, OpenVideo, Preload, Stats as StatsMessage, Status } from "../../RallyMessages.js"
import type { Registry } from "./registry.js"
import type { VideoView } from "./view.js"

/** The actor's own state of a video. @internal */
export interface VideoState {
  readonly view: VideoView
  current: number | null
  /** The last preload plan: key -> priority. */
  plan: ReadonlyMap<CacheKey, Priority>
  /** Holds the pin of the current clip. */
  pin: Scope.CloseableScope | null
}

/** A message and where its reply goes. @internal */
export type Envelope =
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

/** An envelope in the mailbox, with the span of the caller that sent it. @internal */
export interface Letter {
  readonly envelope: Envelope
  readonly parent: Option.Option<Tracer.AnySpan>
}

/** A `GetClip` reply: the clip, waited for outside the actor. @internal */
export type Awaiter = Effect.Effect<Clip, ClipError>

/** @internal */
export interface HandlerDeps {
  readonly config: RallyCacheConfig
  readonly store: CacheStoreShape
  readonly exporter: ExporterShape
  readonly metrics: MetricsShape
  readonly policy: PreloadPolicyShape
  readonly registry: Registry
  readonly makeJob: (
    view: VideoView,
    index: number,
    priority: Priority,
    parent: Option.Option<Tracer.AnySpan>
  ) => ExportJob<CacheEntry, ExportError>
  readonly videos: Map<string, VideoState>
  readonly published: SubscriptionRef.SubscriptionRef<ReadonlyMap<string, VideoView>>
  readonly forks: FiberSet.FiberSet
  readonly mailbox: Queue.Queue<Letter>
}
