/**
 * The match's timeline: one marker per rally, placed at its time in the
 * whole video and coloured by its state on the server (cached, queued,
 * running with its progress, failed). Clicking a marker jumps there.
 */
import type { RallyView } from "./api.js"

export const formatTime = (seconds: number): string => {
  const whole = Math.max(0, Math.floor(seconds))
  const h = Math.floor(whole / 3600)
  const m = Math.floor((whole % 3600) / 60)
  const s = String(whole % 60).padStart(2, "0")
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`
}

export const stateLabel = (rally: RallyView): string => {
  switch (rally.state) {
    case "cached":
      return "ready"
    case "queued":
      return rally.priority === undefined ? "queued" : `queued (${rally.priority})`
    case "running":
      return `exporting ${Math.round((rally.progress ?? 0) * 100)}%`
    case "failed":
      return rally.reason === undefined ? "failed" : `failed: ${rally.reason}`
    case "idle":
      return "not cut yet"
  }
}

export const renderTimeline = (
  container: HTMLElement,
  rallies: ReadonlyArray<RallyView>,
  duration: number,
  current: number,
  onPick: (index: number) => void
): void => {
  const span = duration > 0 ? duration : (rallies.at(-1)?.end ?? 1)
  const markers = rallies.map((rally) => {
    const marker = document.createElement("button")
    marker.type = "button"
    marker.className = "marker"
    marker.dataset["index"] = String(rally.index)
    marker.dataset["state"] = rally.state
    marker.style.left = `${(rally.start / span) * 100}%`
    marker.style.width = `${((rally.end - rally.start) / span) * 100}%`
    marker.style.setProperty("--progress", String(rally.state === "running" ? (rally.progress ?? 0) : 0))
    marker.setAttribute("aria-current", String(rally.index === current))
    const label = `Rally ${rally.index}, ${formatTime(rally.start)}–${formatTime(rally.end)}: ${stateLabel(rally)}`
    marker.setAttribute("aria-label", label)
    marker.title = label
    const number = document.createElement("span")
    number.textContent = String(rally.index)
    marker.append(number)
    marker.addEventListener("click", () => onPick(rally.index))
    return marker
  })
  container.replaceChildren(...markers)
}
