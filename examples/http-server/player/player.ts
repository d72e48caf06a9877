/**
 * The player page: plays a match rally by rally. The neighbours of the
 * rally on screen are prepared in the page (see `stage.ts`), within the
 * server's preload window; play-through moves on at a rally's end; the
 * timeline shows every rally's state on the server, live from the event
 * stream (`GET /api/events`).
 */
import * as Api from "./api.js"
import { describeVideo, renderVideos, setUpRegister } from "./library.js"
import { runSingle } from "./single.js"
import { Stage } from "./stage.js"
import { formatTime, renderTimeline, stateLabel } from "./timeline.js"

const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id)
  if (found === null) throw new Error(`the page has no #${id}`)
  return found as T
}

const params = new URLSearchParams(location.search)
const videoId = params.get("video")

const playThroughKey = "rallycache.playThrough"

/** Drawn icons: the glyphs (⏯ 🔊) are missing from many fonts. */
const icon = (path: string): string => `<svg viewBox="0 0 24 24" aria-hidden="true"><path d="${path}"/></svg>`
const icons = {
  play: icon("M7 4v16l13-8z"),
  pause: icon("M6 4h4v16H6zM14 4h4v16h-4z"),
  sound: icon("M4 9v6h4l5 5V4L8 9zM16 8a5 5 0 0 1 0 8v-2a3 3 0 0 0 0-4z"),
  muted: icon("M4 9v6h4l5 5V4L8 9zM16 9l1.4-1.4L19 9.2l1.6-1.6L22 9l-1.6 1.6L22 12.2l-1.4 1.4-1.6-1.6-1.6 1.6L16 12.2l1.6-1.6z")
}

let rallies: Array<Api.RallyView> = []
let duration = 0
let current = 0
let playing = true
let playThrough = localStorage.getItem(playThroughKey) !== "off"
/** The server's preload window (`preloadAhead` in the status): the page prepares no further ahead than it exports. */
let serverAhead = 0

const errorLine = element<HTMLParagraphElement>("error")
const showError = (message: string): void => {
  errorLine.textContent = message
}
const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

const stage = new Stage({
  container: element("stage"),
  clipUrl: (index) => Api.clipUrl(videoId ?? "", index),
  onEnded: (index) => {
    if (playThrough && index + 1 < rallies.length) go(index + 1)
    else setPlaying(false)
  },
  onChange: () => render(),
  onError: (index, message) => {
    if (index === current) showError(`rally ${index} cannot be played: ${message}`)
  }
})

/**
 * The rallies to hold ready beside the current one: the previous one and
 * the next (and, while playing through, the one after), among those the
 * server has cut and within its own preload window.
 */
const preparedWindow = (): Array<number> => {
  const ahead = Math.min(serverAhead, playThrough && playing ? 2 : 1)
  const indexes = [current - 1]
  for (let k = 1; k <= ahead; k++) indexes.push(current + k)
  return indexes.filter((index) => rallies[index]?.state === "cached")
}

const go = (index: number): void => {
  if (rallies.length === 0) return
  const target = Math.max(0, Math.min(rallies.length - 1, index))
  if (target === current && stage.shown === target) return
  current = target
  showError("")
  stage.show(target)
  render()
  // The new picture is painted first; the neighbours and the server follow.
  afterPaint(() => {
    if (current !== target) return
    stage.prepare(preparedWindow())
    Api.navigate(videoId ?? "", target).catch((error: unknown) => showError(`navigate failed: ${messageOf(error)}`))
  })
}

/** Run `f` once the next frame has been painted. */
const afterPaint = (f: () => void): void => {
  requestAnimationFrame(() => setTimeout(f, 0))
}

const setPlaying = (value: boolean): void => {
  playing = value
  stage.setPlaying(value)
  stage.prepare(preparedWindow())
  render()
}

const render = (): void => {
  renderTimeline(element("timeline"), rallies, duration, current, go)
  const rally = rallies[current]
  element("position").textContent = rally === undefined
    ? "–"
    : `Rally ${rally.index} · ${formatTime(rally.start)}–${formatTime(rally.end)}`
  const play = element<HTMLButtonElement>("play")
  play.innerHTML = playing ? icons.pause : icons.play
  play.setAttribute("aria-label", playing ? "Pause (space)" : "Play (space)")
  play.setAttribute("aria-pressed", String(playing))
  element<HTMLButtonElement>("prev").disabled = current <= 0
  element<HTMLButtonElement>("next").disabled = current >= rallies.length - 1
  element<HTMLInputElement>("play-through").checked = playThrough
  const mute = element<HTMLButtonElement>("mute")
  mute.innerHTML = stage.muted ? icons.muted : icons.sound
  mute.setAttribute("aria-label", stage.muted ? "Unmute" : "Mute")
  const waiting = element("waiting")
  waiting.hidden = stage.ready || rally === undefined
  if (rally !== undefined && !stage.ready) {
    element("waiting-text").textContent = rally.state === "cached" ? "loading…" : stateLabel(rally)
    waiting.style.setProperty("--progress", String(rally.state === "running" ? (rally.progress ?? 0) : 0))
  }
}

const renderStats = (status: Api.StatusReply): void => {
  element("hit-rate").textContent = `${(status.stats.hitRate * 100).toFixed(0)}%`
  element("hits").textContent = `${status.stats.hits} / ${status.stats.misses}`
  element("queue").textContent = `${status.queue.high + status.queue.normal + status.queue.low}`
  element("running").textContent = String(status.queue.running)
}

const refresh = async (): Promise<Api.StatusReply> => {
  const status = await Api.status(videoId ?? "")
  rallies = status.rallies.map((rally) => ({ ...rally }))
  serverAhead = status.preloadAhead
  stage.prepare(preparedWindow())
  render()
  renderStats(status)
  return status
}

let refreshTimer: ReturnType<typeof setTimeout> | undefined
/** Events arrive in bursts: one status read per burst keeps the counters right. */
const refreshSoon = (): void => {
  if (refreshTimer !== undefined) return
  refreshTimer = setTimeout(() => {
    refreshTimer = undefined
    refresh().catch((error: unknown) => showError(messageOf(error)))
  }, 500)
}

const applyEvent = (event: Api.EventView): void => {
  const target = event.clip ?? event
  if (target.videoId !== videoId || target.rallyIndex === undefined) return
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
      // A neighbour just became available: prepare it now.
      stage.prepare(preparedWindow())
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
      stage.forget(rally.index)
      break
    default:
      return
  }
  render()
  refreshSoon()
}

const seekBar = (): void => {
  const bar = element("timebar")
  bar.addEventListener("click", (event) => {
    const { duration } = stage.time
    if (!Number.isFinite(duration)) return
    const box = bar.getBoundingClientRect()
    stage.seek(((event.clientX - box.left) / box.width) * duration)
  })
  const fill = element("timebar-fill")
  const tick = (): void => {
    const { current, duration } = stage.time
    fill.style.transform = `scaleX(${duration > 0 ? Math.min(1, current / duration) : 0})`
    requestAnimationFrame(tick)
  }
  requestAnimationFrame(tick)
}

const controls = (): void => {
  element("prev").addEventListener("click", () => go(current - 1))
  element("next").addEventListener("click", () => go(current + 1))
  element("play").addEventListener("click", () => setPlaying(!playing))
  element("mute").addEventListener("click", () => {
    stage.setMuted(!stage.muted)
    render()
  })
  element<HTMLInputElement>("play-through").addEventListener("change", (event) => {
    playThrough = (event.target as HTMLInputElement).checked
    localStorage.setItem(playThroughKey, playThrough ? "on" : "off")
    stage.prepare(preparedWindow())
  })
  document.addEventListener("keydown", (event) => {
    const target = event.target
    if (
      target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement || target instanceof HTMLSelectElement
    ) return
    if (event.altKey || event.ctrlKey || event.metaKey) return
    if (event.key === "ArrowLeft") go(current - 1)
    else if (event.key === "ArrowRight") go(current + 1)
    else if (event.key === " ") setPlaying(!playing)
    else return
    event.preventDefault()
  })
  seekBar()
}

const library = async (): Promise<void> => {
  const videos = await Api.videos()
  renderVideos(element("videos"), videos, videoId)
  await setUpRegister(element<HTMLFormElement>("register"), showError)
}

const start = async (): Promise<void> => {
  // The library is not needed to play: a failure there is shown, not fatal.
  const listed = library().catch((error: unknown) => showError(messageOf(error)))
  if (videoId === null) {
    element("player").hidden = true
    element("empty").hidden = false
    await listed
    return
  }
  controls()
  await Api.listen(applyEvent, refreshSoon)
  const [video, status] = await Promise.all([Api.video(videoId), refresh()])
  duration = video.duration
  element("title").textContent = video.title
  element("meta").textContent = `${describeVideo(video)} · ${video.mode} clips`
  document.title = `${video.title} · rallycache`
  go(status.current ?? 0)
  stage.setPlaying(playing)
  // Counters (hits, queue) are not events: read them now and then.
  setInterval(refreshSoon, 3000)
  await listed
}

if (videoId !== null && params.get("player") === "single") {
  runSingle(videoId).catch((error: unknown) => document.body.append(messageOf(error)))
} else {
  start().catch((error: unknown) => showError(messageOf(error)))
}
