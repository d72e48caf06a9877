/**
 * Every route of the HTTP example, declared once as an Effect `HttpApi`
 * with its schemas (`Api`) and its failures (`ApiErrors`). The server
 * implements it (`HttpApiBuilder`, in `Server`), `/openapi.json` and the
 * `/docs` page are generated from it, and `ViewerClient` derives the client
 * the player page and the tests use. Browser-safe: nothing here touches
 * Node.
 *
 * Rallies are numbered from 0 in every route.
 *
 * @since 0.1.0
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware, HttpApiSchema, OpenApi } from "@effect/platform"
import { HttpApiDecodeError } from "@effect/platform/HttpApiError"
import { Schema } from "effect"
import * as Api from "./Api.js"
import * as Errors from "./ApiErrors.js"

/**
 * The guard in front of every JSON body: a declared `Content-Length` of at
 * most `Api.maxJsonBytes` (else 413 before any byte is read; 411 when
 * chunked), and a body that is JSON (else 400).
 *
 * @since 0.1.0
 * @category middleware
 */
export class JsonBody extends HttpApiMiddleware.Tag<JsonBody>()("JsonBody", {
  failure: Schema.Union(Errors.LengthRequired, Errors.BodyTooLarge, HttpApiDecodeError)
}) {}

const Video = Schema.Uint8ArrayFromSelf.pipe(
  HttpApiSchema.withEncoding({ kind: "Uint8Array", contentType: "video/mp4" })
).annotations({
  description: "The clip (video/mp4, video/webm or video/x-matroska, by its container)"
})

/**
 * The registered videos: list, register, read, close, navigate, status.
 *
 * @since 0.1.0
 * @category groups
 */
export class VideosGroup extends HttpApiGroup.make("videos")
  .add(
    HttpApiEndpoint.get("list", "/api/videos")
      .addSuccess(Schema.Array(Api.VideoSummary))
      .annotate(OpenApi.Description, "The registered videos: id, title (the file name), duration, rally count, mode.")
  )
  .add(
    HttpApiEndpoint.post("register", "/api/videos")
      .setPayload(Api.RegisterVideo)
      .addSuccess(Api.VideoReply, { status: 201 })
      .addError(Errors.InvalidRally)
      .addError(Errors.OutsideMediaRoot)
      .addError(Errors.MediaNotFound)
      .addError(Errors.SourceNotFound)
      .addError(Errors.SourceUnreadable)
      .addError(Errors.NotMediaFile)
      .addError(Errors.UnsupportedSource)
      .middleware(JsonBody)
      .annotate(
        OpenApi.Description,
        "Register a video file under the media root with its rallies: inline (`rallies`) or a rallies file under the media root (`ralliesFile`, the CLI's grammar). Registering it again replaces its rallies."
      )
  )
  .add(
    HttpApiEndpoint.get("get", "/api/videos/:id")
      .setPath(Api.VideoParams)
      .addSuccess(Api.VideoReply)
      .addError(Errors.UnknownVideo)
      .annotate(OpenApi.Description, "A registered video and its rallies' times (indexes from 0).")
  )
  .add(
    HttpApiEndpoint.del("close", "/api/videos/:id")
      .setPath(Api.VideoParams)
      .addSuccess(HttpApiSchema.NoContent)
      .addError(Errors.UnknownVideo)
      .annotate(
        OpenApi.Description,
        "Close a video: its queued exports are cancelled and it leaves the list. Its cached clips stay cached."
      )
  )
  .add(
    HttpApiEndpoint.post("navigate", "/api/videos/:id/navigate")
      .setPath(Api.VideoParams)
      .setPayload(Api.Navigate)
      .addSuccess(Api.NavigateReply)
      .addError(Errors.UnknownVideo)
      .addError(Errors.RallyNotFound)
      .middleware(JsonBody)
      .annotate(OpenApi.Description, "The viewer is at rally `index` (from 0): the cache re-ranks its preloading around it.")
  )
  .add(
    HttpApiEndpoint.get("status", "/api/videos/:id/status")
      .setPath(Api.VideoParams)
      .addSuccess(Api.StatusReply)
      .addError(Errors.UnknownVideo)
      .annotate(OpenApi.Description, "Each rally's state (cached, queued, running with progress, failed, idle), the server's preload window (`preloadAhead`: rallies after the current one it exports ahead), the queue, hit and miss counts.")
  )
  .annotate(OpenApi.Title, "videos")
{}

/**
 * The files a client may register.
 *
 * @since 0.1.0
 * @category groups
 */
export class MediaGroup extends HttpApiGroup.make("media")
  .add(
    HttpApiEndpoint.get("list", "/api/media")
      .addSuccess(Api.MediaReply)
      .annotate(
        OpenApi.Description,
        "The video files and the rallies files (JSON) under the media root, paths relative to it, each rallies file with its rally count or its problem."
      )
  )
{}

/**
 * One rally's clip.
 *
 * @since 0.1.0
 * @category groups
 */
export class ClipsGroup extends HttpApiGroup.make("clips")
  .add(
    HttpApiEndpoint.get("clip", "/api/videos/:id/rallies/:n/clip")
      .setPath(Api.RallyParams)
      .setHeaders(Api.ClipHeaders)
      .addSuccess(Video)
      .addSuccess(Video.annotations(HttpApiSchema.annotations({ status: 206 })))
      .addSuccess(HttpApiSchema.Empty(304))
      .addError(Errors.UnknownVideo)
      .addError(Errors.RallyNotFound)
      .addError(Errors.RangeNotSatisfiable)
      .addError(Errors.SourceNotFound)
      .addError(Errors.SourceUnreadable)
      .addError(Errors.NotMediaFile)
      .addError(Errors.UnsupportedSource)
      .addError(Errors.InvalidRally)
      .addError(Errors.ExportCancelled)
      .addError(Errors.ClipTimeout)
      .annotate(
        OpenApi.Description,
        "Rally `n`'s clip (from 0), streamed. A miss waits for a high-priority export (concurrent requests share it) up to the clip timeout (504). `ETag` is the cache key; `If-None-Match` gives 304; `Range` gives 206 with `Content-Range` (RFC 9110: empty list elements and whitespace are allowed; of several ranges the first satisfiable one is sent); no satisfiable range is 416 with `Content-Range: bytes */size`; `If-Range` is honoured. `X-Cache: hit|miss`."
      )
  )
{}

/**
 * The cache's events, as Server-Sent Events.
 *
 * @since 0.1.0
 * @category groups
 */
export class EventsGroup extends HttpApiGroup.make("events")
  .add(
    HttpApiEndpoint.get("events", "/api/events")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/event-stream" }))
      .annotate(
        OpenApi.Description,
        "Server-Sent Events, until the server shuts down: `retry: 2000` first, then each cache event (`JobQueued`, `JobStarted`, `JobProgress`, `ClipReady`, `JobFailed`, `Evicted`, ...) as a `data:` line of JSON without the server's file paths (`rallyIndex` from 0), and a `: keep-alive` comment every 15 seconds. Read it with `EventSource`."
      )
  )
{}

/**
 * Prometheus metrics.
 *
 * @since 0.1.0
 * @category groups
 */
export class MetricsGroup extends HttpApiGroup.make("metrics")
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .annotate(
        OpenApi.Description,
        "Prometheus text: the `rallycache_*` metrics (every one listed from the start) and `rallycache_http_clip_responses_total{status,cache}`."
      )
  )
{}

/**
 * The whole API.
 *
 * @since 0.1.0
 * @category api
 */
export class ViewerApi extends HttpApi.make("rallycache")
  .add(VideosGroup)
  .add(MediaGroup)
  .add(ClipsGroup)
  .add(EventsGroup)
  .add(MetricsGroup)
  .addError(Errors.InternalError)
  .addError(Errors.ClusterUnavailable)
  .annotate(OpenApi.Title, "rallycache HTTP example")
  .annotate(OpenApi.Version, "0.1.0")
  .annotate(
    OpenApi.Description,
    "Rally clips of registered match videos, cut in the background and served from a bounded cache. Rallies are numbered from 0. Every error answers `{ \"_tag\", \"message\" }` with a one-line message."
  )
{}

/**
 * A rally's clip path, for a `<video src>`: `/api/videos/:id/rallies/:n/clip`.
 *
 * @since 0.1.0
 * @category paths
 */
export const clipPath = (id: string, index: number): string =>
  `/api/videos/${encodeURIComponent(id)}/rallies/${index}/clip`

/**
 * The event stream's path, for an `EventSource`.
 *
 * @since 0.1.0
 * @category paths
 */
export const eventsPath = "/api/events"
