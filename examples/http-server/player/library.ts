/**
 * The side panel's library: the registered videos (title, duration, rally
 * count), and a form that registers a video by choosing a file under the
 * server's media root and a rallies file, as the server lists them.
 */
import * as Api from "./api.js"
import { formatTime } from "./timeline.js"

const rallyCount = (n: number): string => `${n} ${n === 1 ? "rally" : "rallies"}`

export const describeVideo = (video: Api.VideoSummary): string =>
  `${formatTime(video.duration)} · ${rallyCount(video.rallyCount)}`

export const renderVideos = (list: HTMLElement, videos: ReadonlyArray<Api.VideoSummary>, current: string | null): void => {
  const items = videos.map((video) => {
    const item = document.createElement("li")
    const link = document.createElement("a")
    link.href = `/?video=${encodeURIComponent(video.id)}`
    link.setAttribute("aria-current", String(video.id === current))
    link.dataset["video"] = video.id
    const title = document.createElement("strong")
    title.textContent = video.title
    const meta = document.createElement("small")
    meta.textContent = describeVideo(video)
    link.append(title, meta)
    item.append(link)
    return item
  })
  if (items.length === 0) {
    const empty = document.createElement("li")
    empty.className = "dim"
    empty.textContent = "No video yet."
    items.push(empty)
  }
  list.replaceChildren(...items)
}

const option = (value: string, text: string, disabled = false): HTMLOptionElement => {
  const element = document.createElement("option")
  element.value = value
  element.textContent = text
  element.disabled = disabled
  return element
}

/**
 * Fill the form's two lists from `GET /api/media` and register the chosen
 * pair on submit; `onError` gets the server's one-line message.
 */
export const setUpRegister = async (form: HTMLFormElement, onError: (message: string) => void): Promise<void> => {
  const videoSelect = form.elements.namedItem("path") as HTMLSelectElement
  const ralliesSelect = form.elements.namedItem("ralliesFile") as HTMLSelectElement
  const media = await Api.media()
  videoSelect.replaceChildren(
    ...media.videos.map((file) => option(file.path, file.path))
  )
  ralliesSelect.replaceChildren(
    ...media.ralliesFiles.map((file) =>
      option(
        file.path,
        file.problem !== undefined
          ? `${file.path} (${file.problem})`
          : `${file.path} (${rallyCount(file.rallyCount ?? 0)})`,
        file.problem !== undefined
      )
    )
  )
  // A rallies file named like the video is its likely pair.
  const pair = (): void => {
    const stem = videoSelect.value.replace(/\.[^./]+$/, "")
    const match = media.ralliesFiles.find((file) => file.problem === undefined && file.path.replace(/\.json$/i, "") === stem)
    if (match !== undefined) ralliesSelect.value = match.path
  }
  videoSelect.addEventListener("change", pair)
  pair()
  const submit = form.querySelector("button")
  if (submit !== null) submit.disabled = media.videos.length === 0 || media.ralliesFiles.length === 0
  form.addEventListener("submit", (event) => {
    event.preventDefault()
    Api.register(videoSelect.value, ralliesSelect.value).then(
      (video) => {
        location.search = `?video=${encodeURIComponent(video.id)}`
      },
      (error: unknown) => onError(error instanceof Error ? error.message : String(error))
    )
  })
}
