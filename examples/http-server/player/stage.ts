/**
 * The picture: a few `<video>` elements stacked in one box. One is shown;
 * the others hold the neighbouring rallies, loaded and decoded to their
 * first frame, so that a switch only changes which element is visible.
 * Elements are reused: one that leaves the prepared window gives up its
 * clip and waits for the next rally to prepare.
 *
 * Classes: `shown` on the element of the current rally, `ready` on those
 * decoded at their rally's first frame, `clean` on those whose first
 * decoded frame is their rally's first frame; only `shown ready` and
 * `shown clean` are visible, so no other picture is ever painted for a
 * rally.
 */
import { leadIn } from "./mp4.js"

/**
 * Firefox presents an mp4 from its first decoded sample and ignores the
 * edit list that hides an exact clip's lead-in (Mozilla bug 1735300), so
 * the page skips the lead-in itself there: it reads the edit list from the
 * head of the clip, starts the element at the rally's first frame and
 * stops it at the rally's end. Chromium and Safari honour the edit list.
 */
const ignoresEditLists = /\bFirefox\//.test(navigator.userAgent)

/** Enough of a faststart clip's head to hold its `moov`. */
const headBytes = 64 * 1024

interface Slot {
  readonly index: number
  readonly video: HTMLVideoElement
  /** Where the rally's first frame is in the element's timeline: 0 where edit lists are honoured. */
  offset: number
  /** The offset is known (at once where edit lists are honoured). */
  placed: boolean
  /** Its first frame is decoded and on display if shown. */
  ready: boolean
}

export interface StageOptions {
  readonly container: HTMLElement
  readonly clipUrl: (index: number) => string
  /** The shown rally played to its end. */
  readonly onEnded: (index: number) => void
  /** The shown rally became ready (its first frame is on screen) or stopped being so. */
  readonly onChange: () => void
  readonly onError: (index: number, message: string) => void
}

export class Stage {
  private readonly slots = new Map<number, Slot>()
  private readonly spare: Array<HTMLVideoElement> = []
  private shownSlot: Slot | undefined
  private playing = false
  /** The window asked for while the shown rally was still loading. */
  private pending: ReadonlyArray<number> | undefined
  muted = false

  constructor(private readonly options: StageOptions) {}

  /** The rally on screen. */
  get shown(): number | undefined {
    return this.shownSlot?.index
  }

  /** Whether the shown rally has its first frame (or later) on screen. */
  get ready(): boolean {
    return this.shownSlot?.ready === true
  }

  /** The element on screen, for the time bar. */
  get video(): HTMLVideoElement | undefined {
    return this.shownSlot?.video
  }

  /** Seconds into the shown rally, and its length (`NaN` until known). */
  get time(): { readonly current: number; readonly duration: number } {
    const slot = this.shownSlot
    if (slot === undefined) return { current: 0, duration: Number.NaN }
    return { current: Math.max(0, slot.video.currentTime - slot.offset), duration: slot.video.duration }
  }

  /** Seek within the shown rally, `seconds` from its first frame. */
  seek(seconds: number): void {
    const slot = this.shownSlot
    if (slot !== undefined && slot.ready) slot.video.currentTime = slot.offset + seconds
  }

  /**
   * Show rally `index`: at once when it is prepared; otherwise its clip is
   * requested now (a miss exports it at high priority) and shown when the
   * first frame arrives.
   */
  show(index: number): void {
    const slot = this.slots.get(index) ?? this.load(index)
    const previous = this.shownSlot
    if (previous === slot) return
    this.shownSlot = slot
    slot.video.classList.add("shown")
    slot.video.removeAttribute("aria-hidden")
    if (previous !== undefined) {
      previous.video.classList.remove("shown")
      previous.video.setAttribute("aria-hidden", "true")
      previous.video.pause()
    }
    this.fitShape()
    // A prepared rally starts playing with the next frame painted, so that
    // frame is its first one; one still loading starts when it is ready.
    if (this.playing && slot.ready) requestAnimationFrame(() => this.playing && this.playShown())
    this.options.onChange()
  }

  /**
   * Keep exactly `indexes` (and the shown rally) loaded: new ones are
   * prepared, rallies that left the window give their element back, and a
   * rally that was played and is still wanted returns to its first frame.
   */
  prepare(indexes: ReadonlyArray<number>): void {
    const wanted = new Set(indexes)
    // Downloads that are no longer wanted stop at once.
    for (const [index, slot] of this.slots) {
      if (slot !== this.shownSlot && !wanted.has(index)) this.release(slot)
    }
    // The rally on screen loads first: new neighbours wait until it shows.
    if (this.shownSlot !== undefined && !this.shownSlot.ready) {
      this.pending = indexes
      return
    }
    this.pending = undefined
    for (const slot of this.slots.values()) {
      if (slot === this.shownSlot) continue
      if (slot.placed && !slot.video.seeking && Math.abs(slot.video.currentTime - slot.offset) > 0.001) this.rewind(slot)
    }
    for (const index of wanted) if (!this.slots.has(index)) this.load(index)
  }

  setPlaying(playing: boolean): void {
    this.playing = playing
    if (!playing) this.shownSlot?.video.pause()
    else if (this.shownSlot?.ready === true) this.playShown()
  }

  setMuted(muted: boolean): void {
    this.muted = muted
    for (const slot of this.slots.values()) slot.video.muted = muted
  }

  /** Drop a clip the server no longer has (evicted): it is fetched again when needed. */
  forget(index: number): void {
    const slot = this.slots.get(index)
    if (slot !== undefined && slot !== this.shownSlot) this.release(slot)
  }

  private playShown(): void {
    const slot = this.shownSlot
    if (slot === undefined) return
    const video = slot.video
    if (this.isAtEnd(slot)) video.currentTime = slot.offset
    video.play().catch((error: unknown) => {
      // Browsers refuse sound before the first gesture on the page; muted play is allowed.
      if (error instanceof DOMException && error.name === "NotAllowedError" && !video.muted) {
        this.setMuted(true)
        this.options.onChange()
        video.play().catch(() => undefined)
      }
    })
    if (ignoresEditLists) this.watchEnd(slot)
  }

  private isAtEnd(slot: Slot): boolean {
    const video = slot.video
    return video.ended || (ignoresEditLists && video.currentTime >= slot.offset + video.duration - 0.02)
  }

  /** Where the browser plays past the rally (the clip's frames after its edit), stop at the rally's end. */
  private watchEnd(slot: Slot): void {
    const video = slot.video
    const check = (): void => {
      if (this.shownSlot !== slot || video.paused) return
      if (video.currentTime >= slot.offset + video.duration - 0.02) {
        video.pause()
        this.options.onEnded(slot.index)
        return
      }
      video.requestVideoFrameCallback(check)
    }
    video.requestVideoFrameCallback(check)
  }

  private element(): HTMLVideoElement {
    const reused = this.spare.pop()
    if (reused !== undefined) return reused
    const video = document.createElement("video")
    video.playsInline = true
    video.preload = "auto"
    video.setAttribute("aria-hidden", "true")
    video.addEventListener("ended", () => {
      const slot = this.slotOf(video)
      if (slot !== undefined && slot === this.shownSlot) this.options.onEnded(slot.index)
    })
    video.addEventListener("loadedmetadata", () => {
      if (this.shownSlot?.video === video) this.fitShape()
    })
    video.addEventListener("loadeddata", () => this.place(video))
    video.addEventListener("seeked", () => this.markReady(video))
    video.addEventListener("error", () => {
      const slot = this.slotOf(video)
      if (slot === undefined || video.error === null) return
      this.options.onError(slot.index, video.error.message || `media error ${video.error.code}`)
    })
    this.options.container.append(video)
    return video
  }

  /**
   * The box takes the shown video's own shape (its display size, rotation
   * applied), so nothing is letterboxed inside a forced ratio.
   */
  private fitShape(): void {
    const video = this.shownSlot?.video
    if (video === undefined || video.videoWidth === 0 || video.videoHeight === 0) return
    this.options.container.style.setProperty("--ratio", `${video.videoWidth} / ${video.videoHeight}`)
  }

  private load(index: number): Slot {
    const video = this.element()
    video.muted = this.muted
    const url = this.options.clipUrl(index)
    video.src = url
    const slot: Slot = { index, video, offset: 0, placed: false, ready: false }
    video.dataset["rally"] = String(index)
    this.slots.set(index, slot)
    if (!ignoresEditLists) this.setPlaced(slot)
    if (ignoresEditLists) {
      fetch(url, { headers: { range: `bytes=0-${headBytes - 1}` } })
        .then((response) => response.ok ? response.arrayBuffer() : new ArrayBuffer(0))
        .then((head) => leadIn(head), () => 0)
        .then((offset) => {
          if (this.slots.get(index) !== slot) return
          slot.offset = offset
          this.setPlaced(slot)
          this.place(video)
        })
    }
    return slot
  }

  /** Once data and offset are known, go to the rally's first frame (or mark it ready if there already). */
  private place(video: HTMLVideoElement): void {
    const slot = this.slotOf(video)
    if (slot === undefined || !slot.placed || video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) return
    if (Math.abs(video.currentTime - slot.offset) > 0.001) video.currentTime = slot.offset
    else this.markReady(video)
  }

  private rewind(slot: Slot): void {
    slot.video.pause()
    // Until the seek lands, its picture is the last one played.
    slot.video.classList.remove("clean")
    this.setReady(slot, false)
    slot.video.currentTime = slot.offset
  }

  private release(slot: Slot): void {
    this.slots.delete(slot.index)
    const video = slot.video
    video.pause()
    video.classList.remove("ready", "clean")
    delete video.dataset["rally"]
    // Stops the download and frees the decoder.
    video.removeAttribute("src")
    video.load()
    this.spare.push(video)
  }

  private slotOf(video: HTMLVideoElement): Slot | undefined {
    const index = Number(video.dataset["rally"])
    const slot = this.slots.get(index)
    return slot?.video === video ? slot : undefined
  }

  /**
   * An element whose first decoded frame is its rally's first frame (no
   * lead-in to skip) is shown as soon as it has one, while it is still
   * being marked ready.
   */
  private setPlaced(slot: Slot): void {
    slot.placed = true
    slot.video.classList.toggle("clean", slot.offset === 0)
  }

  private setReady(slot: Slot, ready: boolean): void {
    slot.ready = ready
    slot.video.classList.toggle("ready", ready)
    if (ready) slot.video.classList.toggle("clean", slot.offset === 0)
  }

  private markReady(video: HTMLVideoElement): void {
    const slot = this.slotOf(video)
    if (slot === undefined || slot.ready || !slot.placed || video.seeking) return
    if (video.readyState < HTMLMediaElement.HAVE_CURRENT_DATA) return
    this.setReady(slot, true)
    if (slot === this.shownSlot) {
      if (this.playing) this.playShown()
      if (this.pending !== undefined) this.prepare(this.pending)
      this.options.onChange()
    }
  }
}
