/**
 * What the page reads from and sends to the server, through the client
 * derived from the API's declaration (`src/ViewerApi.ts`): the videos, the
 * rally states of one, the viewer's position, registration, and the event
 * stream.
 */
import { Cause, Effect, Exit } from "effect"
import type { MediaReply, RallyReply, StatusReply, VideoReply, VideoSummary } from "../src/Api.js"
import { clipPath, eventsPath } from "../src/ViewerApi.js"
import * as ViewerClient from "../src/ViewerClient.js"

/** A rally's state on the server, as `GET /api/videos/:id/status` and the event stream tell it. */
export type RallyStateName = RallyReply["state"]

/** A rally as the page keeps it: the status reply's fields, updated by events. */
export interface RallyView {
  /** The rally's index, from 0, as in the API, the CLI and the README. */
  readonly index: number
  readonly start: number
  readonly end: number
  state: RallyStateName
  priority?: string
  progress?: number
  reason?: string
}

export type { MediaReply, StatusReply, VideoReply, VideoSummary }

/** The fields of a cache event the page uses (see `CacheEvent` in @rallycache/core). */
export interface EventView {
  readonly _tag: string
  readonly videoId?: string
  readonly rallyIndex?: number
  readonly priority?: string
  readonly ratio?: number
  readonly reason?: string
  readonly willRetry?: boolean
  readonly clip?: { readonly videoId: string; readonly rallyIndex: number }
}

const client = Effect.runPromise(ViewerClient.make(location.origin).pipe(Effect.provide(ViewerClient.layerFetch)))

/** One call of the client; a failure becomes an `Error` with the server's one-line message. */
const run = async <A, E>(call: (client: ViewerClient.Client) => Effect.Effect<A, E>): Promise<A> => {
  const exit = await Effect.runPromiseExit(call(await client))
  if (Exit.isSuccess(exit)) return exit.value
  const error = Cause.squash(exit.cause)
  const message = typeof error === "object" && error !== null && "message" in error ? String(error.message) : ""
  throw new Error(message || String(error))
}

/** The URL of a rally's clip: a miss exports it at high priority. */
export const clipUrl = (videoId: string, index: number): string => clipPath(videoId, index)

export const videos = (): Promise<ReadonlyArray<VideoSummary>> => run((c) => c.videos.list())

export const video = (id: string): Promise<VideoReply> => run((c) => c.videos.get({ path: { id } }))

export const status = (id: string): Promise<StatusReply> => run((c) => c.videos.status({ path: { id } }))

/** Tell the server where the viewer is: it re-ranks its preloading around `index`. */
export const navigate = (id: string, index: number): Promise<unknown> =>
  run((c) => c.videos.navigate({ path: { id }, payload: { index } }))

/** The video files and rallies files under the media root. */
export const media = (): Promise<MediaReply> => run((c) => c.media.list())

/** Register a video file under the media root with a rallies file under it. */
export const register = (path: string, ralliesFile: string): Promise<VideoReply> =>
  run((c) => c.videos.register({ payload: { path, ralliesFile } }))

/**
 * Every cache event, parsed; malformed ones are skipped (the next status
 * read corrects the view). Resolves once the stream is open (or after two
 * seconds without it), so that a status read after it misses no change.
 */
export const listen = (onEvent: (event: EventView) => void, onOpen: () => void): Promise<EventSource> => {
  const source = new EventSource(eventsPath)
  source.addEventListener("open", onOpen)
  const opened = new Promise<EventSource>((resolve) => {
    source.addEventListener("open", () => resolve(source), { once: true })
    setTimeout(() => resolve(source), 2000)
  })
  source.addEventListener("message", (message: MessageEvent<string>) => {
    let event: EventView
    try {
      event = JSON.parse(message.data) as EventView
    } catch {
      return
    }
    onEvent(event)
  })
  return opened
}
