/**
 * The player page: plays one rally at a time, and shows what the cache is
 * doing. State comes from `GET /api/videos/:id/status`, kept fresh by the
 * Server-Sent Events of `GET /api/events`.
 */

type RallyStateName = "cached" | "queued" | "running" | "failed" | "idle"

interface RallyView {
  readonly index: number
  readonly start: number
  readonly end: number
  state: RallyStateName
  priority?: string
  progress?: number
  reason?: string
}

interface StatusView {
  readonly videoId: string
  readonly current: number | null
  readonly rallies: Array<RallyView>
  readonly queue: { readonly high: number; readonly normal: number; readonly low: number; readonly running: number }
  readonly stats: { readonly hits: number; readonly misses: number; readonly hitRate: number }
}

/** The fields of a cache event the page uses (see `CacheEvent` in @rallycache/core). */
interface EventView {
  readonly _tag: string
  readonly videoId?: string
  readonly rallyIndex?: number
  readonly priority?: string
  readonly ratio?: number
  readonly reason?: string
  readonly willRetry?: boolean
  readonly clip?: { readonly videoId: string; readonly rallyIndex: number }
}

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`the page has no #${id}`)
  return found as T
}

const video = element<HTMLVideoElement>("video")
const list = element<HTMLOListElement>("rallies")
const errorLine = element<HTMLParagraphElement>("error")
const position = element<HTMLSpanElement>("position")
const form = element<HTMLFormElement>("open")

const videoId = new URLSearchParams(location.search).get("video")
const api = (path: string): string => `/api/videos/${encodeURIComponent(videoId ?? "")}${path}`

let rallies: Array<RallyView> = []
let current = 0

const showError = (message: string): void => {
  errorLine.textContent = message
}

const readJson = async <T>(response: Response): Promise<T> => {
  const body: unknown = await response.json()
  if (!response.ok) {
    const message = typeof body === "object" && body !== null && "message" in body ? String(body.message) : ""
    throw new Error(message || `${response.status} ${response.statusText}`)
  }
  return body as T
}

const formatTime = (seconds: number): string => {
  const m = Math.floor(seconds / 60)
  const s = (seconds - m * 60).toFixed(1).padStart(4, "0")
  return `${m}:${s}`
}

const label = (rally: RallyView): string => {
  switch (rally.state) {
    case "cached":
      return "cached"
    case "queued":
      return rally.priority === undefined ? "queued" : `queued (${rally.priority})`
    case "running":
      return `exporting ${Math.round((rally.progress ?? 0) * 100)}%`
    case "failed":
      return "failed"
    case "idle":
      return "not cached"
  }
}

const renderRallies = (): void => {
  const items = rallies.map((rally) => {
    const item = document.createElement("li")
    item.dataset["index"] = String(rally.index)
    item.dataset["state"] = rally.state
    item.setAttribute("aria-current", String(rally.index === current))
    if (rally.reason !== undefined) item.title = rally.reason
    const name = document.createElement("span")
    name.textContent = `#${rally.index + 1}  ${formatTime(rally.start)} – ${formatTime(rally.end)}`
    const state = document.createElement("span")
    state.className = "state"
    state.textContent = label(rally)
    item.append(name, state)
    item.addEventListener("click", () => void go(rally.index))
    return item
  })
  list.replaceChildren(...items)
  position.textContent = rallies.length === 0 ? "–" : `rally ${current + 1} / ${rallies.length}`
}

const renderPanel = (status: StatusView): void => {
  element("hit-rate").textContent = `${(status.stats.hitRate * 100).toFixed(0)}%`
  element("hits").textContent = `${status.stats.hits} / ${status.stats.misses}`
  element("queue").textContent = `${status.queue.high} high, ${status.queue.normal} normal, ${status.queue.low} low`
  element("running").textContent = String(status.queue.running)
}

const refresh = async (): Promise<StatusView> => {
  const status = await readJson<StatusView>(await fetch(api("/status")))
  rallies = status.rallies
  renderRallies()
  renderPanel(status)
  return status
}

let refreshTimer: ReturnType<typeof setTimeout> | undefined
/** Many events arrive in bursts: one status read per burst is enough. */
const refreshSoon = (): void => {
  if (refreshTimer !== undefined) return
  refreshTimer = setTimeout(() => {
    refreshTimer = undefined
    refresh().catch((error: unknown) => showError(String(error)))
  }, 250)
}

const go = async (index: number): Promise<void> => {
  if (rallies.length === 0) return
  const target = Math.max(0, Math.min(rallies.length - 1, index))
  current = target
  renderRallies()
  showError("")
  // The clip request itself exports at high priority on a miss; navigate
  // re-ranks the preloading around the new position.
  video.src = api(`/rallies/${target}/clip`)
  video.play().catch(() => {
    // Autoplay may be refused before the first user gesture; the controls remain.
  })
  try {
    await readJson(await fetch(api("/navigate"), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ index: target })
    }))
  } catch (error) {
    showError(`navigate failed: ${error instanceof Error ? error.message : String(error)}`)
  }
  refreshSoon()
}

const applyEvent = (event: EventView): void => {
  const target = event.clip ?? event
  if (target.videoId !== videoId || target.rallyIndex === undefined) {
    if (event._tag === "EntryInvalid") refreshSoon()
    return
  }
  const rally = rallies[target.rallyIndex]
  if (rally === undefined) return
  switch (event._tag) {
    case "JobQueued":
    case "JobReprioritized":
      rally.state = "queued"
      if (event.priority !== undefined) rally.priority = event.priority
      break
    case "JobStarted":
      rally.state = "running"
      rally.progress = 0
      break
    case "JobProgress":
      rally.state = "running"
      rally.progress = event.ratio ?? 0
      break
    case "ClipReady":
      rally.state = "cached"
      break
    case "JobFailed":
      rally.state = event.willRetry === true ? "queued" : "failed"
      if (event.reason !== undefined) rally.reason = event.reason
      break
    case "JobCancelled":
      rally.state = event.reason === "preempted" ? "queued" : "idle"
      break
    case "Evicted":
      rally.state = "idle"
      break
  }
  renderRallies()
  refreshSoon()
}

const listen = (): void => {
  const source = new EventSource("/api/events")
  source.addEventListener("open", refreshSoon)
  source.addEventListener("message", (message: MessageEvent<string>) => {
    try {
      applyEvent(JSON.parse(message.data) as EventView)
    } catch {
      // A malformed event is ignored; the next status read corrects the view.
    }
  })
}

const openForm = (): void => {
  form.hidden = false
  form.addEventListener("submit", (event) => {
    event.preventDefault()
    const data = new FormData(form)
    const run = async (): Promise<void> => {
      const body = { path: String(data.get("path")), rallies: JSON.parse(String(data.get("rallies"))) as unknown }
      const opened = await readJson<{ readonly id: string }>(await fetch("/api/videos", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(body)
      }))
      location.search = `?video=${encodeURIComponent(opened.id)}`
    }
    run().catch((error: unknown) => showError(error instanceof Error ? error.message : String(error)))
  })
}

const start = async (): Promise<void> => {
  element("prev").addEventListener("click", () => void go(current - 1))
  element("next").addEventListener("click", () => void go(current + 1))
  document.addEventListener("keydown", (event) => {
    const target = event.target
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) return
    if (event.key === "ArrowLeft") void go(current - 1)
    if (event.key === "ArrowRight") void go(current + 1)
  })
  video.addEventListener("error", () => {
    if (video.error !== null) showError(`cannot play this clip: ${video.error.message || `code ${video.error.code}`}`)
  })
  if (videoId === null) {
    openForm()
    return
  }
  element("video-name").textContent = videoId
  listen()
  const status = await refresh()
  await go(status.current ?? 0)
  setInterval(refreshSoon, 2000)
}

start().catch((error: unknown) => showError(error instanceof Error ? error.message : String(error)))
