/**
 * The one-element player (`/?video=ID&player=single`): the page as it was
 * before preloading, one `<video>` whose `src` is swapped on every switch.
 * Kept only as the baseline of the `viewer` bench scenario.
 */
import * as Api from "./api.js"

export const runSingle = async (videoId: string): Promise<void> => {
  const video = document.createElement("video")
  // Always visible: "shown ready" is what the bench's frame probe looks for.
  video.className = "shown ready"
  video.playsInline = true
  video.preload = "auto"
  const prev = document.createElement("button")
  prev.id = "prev"
  prev.textContent = "◀"
  const next = document.createElement("button")
  next.id = "next"
  next.textContent = "▶"
  const stage = document.createElement("div")
  stage.id = "stage"
  stage.append(video)
  document.body.replaceChildren(stage, prev, next)

  const status = await Api.status(videoId)
  const count = status.rallies.length
  let current = 0
  const go = (index: number): void => {
    current = Math.max(0, Math.min(count - 1, index))
    video.dataset["rally"] = String(current)
    video.src = Api.clipUrl(videoId, current)
    video.play().catch(() => undefined)
    Api.navigate(videoId, current).catch(() => undefined)
  }
  prev.addEventListener("click", () => go(current - 1))
  next.addEventListener("click", () => go(current + 1))
  // The bench's far jumps (the page has no timeline): `#N` goes to rally N.
  window.addEventListener("hashchange", () => go(Number(location.hash.slice(1))))
  document.addEventListener("keydown", (event) => {
    if (event.key === "ArrowLeft") go(current - 1)
    if (event.key === "ArrowRight") go(current + 1)
  })
  go(status.current ?? 0)
}
