/**
 * The player page in Debian's Chromium and Firefox ESR (puppeteer-core, one
 * launch per browser, and one more Chromium beside a server with a preload
 * window of 1), on a frame-coded match whose rallies start mid-GOP
 * (exact mode: each clip hides a lead-in behind its edit list). What was
 * painted is read from the pixels, never from the clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import type { Page } from "puppeteer-core"
import { browserNames, firstPaintedFrame, type Launched, launch } from "./browsers.js"
import { startServer, type TestServer, workspace } from "./fixtures.js"
import { at, frameCodedVideo } from "./frameCoded.js"

/**
 * The first frame of each rally (3 s each): a rally starts in the middle of
 * the frame before, so its first whole frame is this one. Keyframes are
 * every 50 frames, so each clip has a hidden lead-in.
 */
const firstFrames = [13, 112, 212, 312, 412]
const rallies = firstFrames.map((first) => ({ start: at(first - 1), end: at(first + 74) }))

interface Painted {
  readonly frame: number
  readonly ms: number
  readonly via: string
}

interface Shown {
  readonly rally: string | null
  readonly paused: boolean
  readonly count: number
}

const shown = (page: Page): Promise<Shown> =>
  page.evaluate<[], () => Shown>(`(() => {
    const video = document.querySelector("#stage video.shown")
    return { rally: video?.dataset.rally ?? null, paused: video?.paused ?? true, count: document.querySelectorAll("#stage video.shown").length }
  })()`)

const waitFor = (page: Page, condition: string, timeout = 60_000) =>
  page.waitForFunction(condition, { timeout, polling: 50 })

const prepared = (rally: number) =>
  `(() => { const v = document.querySelector('#stage video.ready[data-rally="${rally}"]:not(.shown)'); return v !== null && v.readyState >= 2 && !v.seeking })()`

const key = (name: string) => `() => document.dispatchEvent(new KeyboardEvent("keydown", { key: "${name}", bubbles: true }))`

describe.each(browserNames)("player page in %s", (name) => {
  let ws: ReturnType<typeof workspace>
  let server: TestServer
  let browser: Launched
  let id: string

  beforeAll(async () => {
    ws = workspace(await frameCodedVideo(20), "frames.mp4")
    server = await startServer({ cacheDir: ws.cacheDir, server: { mediaRoot: ws.mediaRoot } })
    id = (await server.register({ path: "frames.mp4", rallies })).id
    browser = await launch(name)
  })

  afterAll(async () => {
    await browser?.close()
    await server?.dispose()
    ws?.cleanup()
  })

  /** The page at rally 0, with play-through as asked (the page remembers the toggle in localStorage). */
  const open = async (playThrough: boolean): Promise<Page> => {
    // Only when needed: the first page opens on a fresh video and sees every export from its start.
    const status = await server.json<{ current: number | null }>(`/api/videos/${id}/status`)
    if (status.body.current !== null && status.body.current !== 0) await server.post(`/api/videos/${id}/navigate`, { index: 0 })
    const page = await browser.page()
    // Every state a timeline marker shows, from the page's first render on.
    await page.evaluateOnNewDocument(`(() => {
      localStorage.setItem("rallycache.playThrough", "${playThrough ? "on" : "off"}")
      window.markerStates = {}
      new MutationObserver(() => {
        for (const marker of document.querySelectorAll("#timeline .marker")) {
          const seen = (window.markerStates[marker.dataset.index] ??= [])
          if (seen.at(-1) !== marker.dataset.state) seen.push(marker.dataset.state)
        }
      }).observe(document, { subtree: true, childList: true, attributes: true })
    })()`)
    await page.goto(`${server.url}/?video=${encodeURIComponent(id)}`)
    return page
  }

  it("shows the rally's first frame after a switch, prepared in the page or not, and the timeline's states", async () => {
    const page = await open(false)
    try {
      await waitFor(page, `document.querySelector("#stage video.shown")?.dataset.rally === "0"`)
      // The next rally is prepared in the page once the server has cut it.
      await waitFor(page, prepared(1))
      const element = await page.$('#stage video[data-rally="1"]')

      const next = await page.evaluate<[], () => Promise<Painted>>(firstPaintedFrame(1, key("ArrowRight")))
      expect(next.frame).toBe(firstFrames[1])
      // The switch showed the element that held rally 1, not a new load.
      expect(await page.evaluate((e) => e?.classList.contains("shown"), element)).toBe(true)

      // Rally 4 is cached on the server but not next to rally 1: it loads on the click.
      await waitFor(page, `document.querySelector('#timeline .marker[data-index="4"]')?.dataset.state === "cached"`)
      expect(await page.$('#stage video[data-rally="4"]')).toBeNull()
      const jump = await page.evaluate<[], () => Promise<Painted>>(
        firstPaintedFrame(4, `() => document.querySelector('#timeline .marker[data-index="4"]').click()`)
      )
      expect(jump.frame).toBe(firstFrames[4])
      expect((await shown(page)).count).toBe(1)

      // The timeline followed the export of every rally live: queued or running before cached.
      await waitFor(page, `[...document.querySelectorAll("#timeline .marker")].every((m) => m.dataset.state === "cached")`)
      const states = await page.evaluate<[], () => Record<string, Array<string>>>(`window.markerStates`)
      expect(Object.keys(states).sort()).toEqual(["0", "1", "2", "3", "4"])
      const passedThrough = Object.values(states).filter((seen) =>
        seen.some((state) => state === "queued" || state === "running")
      )
      expect(passedThrough.length).toBeGreaterThan(0)
      for (const seen of Object.values(states)) expect(seen.at(-1)).toBe("cached")
      expect(await page.$eval('#timeline .marker[aria-current="true"]', (m) => m.getAttribute("data-index"))).toBe("4")
    } finally {
      await page.close()
    }
  })

  it("plays through to the next rally at a rally's end, and stops there when play-through is off", async () => {
    const page = await open(true)
    try {
      // Rally 0 plays to its end; rally 1 follows by itself, on its first frame.
      const through = await page.evaluate<[], () => Promise<Painted>>(firstPaintedFrame(1, `() => undefined`))
      expect(through.frame).toBe(firstFrames[1])
      await page.click("#play-through")
      expect(await page.$eval("#play-through", (input) => (input as unknown as { checked: boolean }).checked)).toBe(false)
      await waitFor(page, `document.querySelector("#stage video.shown").ended`)
      const after = await shown(page)
      expect(after.rally).toBe("1")
      expect(after.paused).toBe(true)
      expect(await page.$eval("#play", (b) => b.getAttribute("aria-pressed"))).toBe("false")
    } finally {
      await page.close()
    }
  })

  it("answers the keyboard: → and ← move, space pauses and plays", async () => {
    const page = await open(false)
    try {
      await waitFor(page, `document.querySelector("#stage video.shown")?.dataset.rally === "0"`)
      await page.keyboard.press("ArrowRight")
      await waitFor(page, `document.querySelector("#stage video.shown")?.dataset.rally === "1"`)
      await page.keyboard.press("ArrowRight")
      await waitFor(page, `document.querySelector("#stage video.shown")?.dataset.rally === "2"`)
      await page.keyboard.press("ArrowLeft")
      await waitFor(page, `document.querySelector("#stage video.shown")?.dataset.rally === "1"`)
      await waitFor(page, `!document.querySelector("#stage video.shown").paused`)
      await page.keyboard.press("Space")
      await waitFor(page, `document.querySelector("#stage video.shown").paused`)
      const paused = await page.evaluate(`document.querySelector("#stage video.shown").currentTime`)
      await page.keyboard.press("Space")
      await waitFor(page, `document.querySelector("#stage video.shown").currentTime > ${paused}`)
      expect((await shown(page)).rally).toBe("1")
      expect(await page.$eval('#timeline .marker[aria-current="true"]', (m) => m.getAttribute("data-index"))).toBe("1")
      // Rally numbers on the page are the API's indexes.
      expect(await page.$eval("#position", (p) => p.textContent)).toMatch(/^Rally 1 /)
    } finally {
      await page.close()
    }
  })

  it("shows a miss's state from the event stream while it is cut, then the rally", async () => {
    // A video never opened before: rally 0 is cut on the page's own request. Fresh keys (the rallies moved by
    // a millisecond, within the same frames), so nothing the other tests cut is reused.
    const missId = `miss-${name}`
    const fresh = await server.post("/api/videos", {
      path: "frames.mp4",
      id: missId,
      rallies: rallies.map(({ end, start }) => ({ start: start + 0.001, end: end + 0.001 }))
    })
    expect(fresh.status).toBe(201)
    const page = await browser.page()
    try {
      await page.evaluateOnNewDocument(`(() => {
        window.waitingTexts = []
        new MutationObserver(() => {
          const waiting = document.getElementById("waiting")
          const text = document.getElementById("waiting-text")?.textContent
          if (waiting !== null && !waiting.hidden && text && window.waitingTexts.at(-1) !== text) window.waitingTexts.push(text)
        }).observe(document, { subtree: true, childList: true, attributes: true, characterData: true })
      })()`)
      await page.goto(`${server.url}/?video=${encodeURIComponent(missId)}`)
      await waitFor(page, `(() => { const v = document.querySelector("#stage video.shown.ready"); return v?.dataset.rally === "0" })()`)
      await waitFor(page, `document.getElementById("waiting").hidden`)
      const texts = await page.evaluate<[], () => Array<string>>(`window.waitingTexts`)
      expect(texts.some((text) => /^(queued|exporting)/.test(text)), texts.join(" | ")).toBe(true)
    } finally {
      await page.close()
    }
  })

  it("fits a phone's width and keeps the video's own shape", async () => {
    const page = await browser.page({ width: 390, height: 844 })
    try {
      await page.goto(`${server.url}/?video=${encodeURIComponent(id)}`)
      await waitFor(page, `document.querySelector("#stage video.shown")?.readyState >= 1`)
      const layout = await page.evaluate<[], () => { scroll: number; width: number; stage: number; buttons: Array<number> }>(`(() => {
        const stage = document.getElementById("stage").getBoundingClientRect()
        return {
          scroll: document.documentElement.scrollWidth,
          width: window.innerWidth,
          stage: stage.width / stage.height,
          buttons: ["prev", "play", "next"].map((id) => Math.min(document.getElementById(id).getBoundingClientRect().width, document.getElementById(id).getBoundingClientRect().height))
        }
      })()`)
      expect(layout.scroll).toBeLessThanOrEqual(layout.width)
      expect(layout.stage).toBeCloseTo(320 / 180, 1)
      for (const size of layout.buttons) expect(size).toBeGreaterThanOrEqual(44)
    } finally {
      await page.close()
    }
  })
})

describe("player page under a server preload window of 1, in chromium", () => {
  let ws: ReturnType<typeof workspace>
  let server: TestServer
  let browser: Launched
  let id: string

  beforeAll(async () => {
    ws = workspace(await frameCodedVideo(20), "frames.mp4")
    server = await startServer({ cacheDir: ws.cacheDir, cache: { preloadAhead: 1 }, server: { mediaRoot: ws.mediaRoot } })
    id = (await server.register({ path: "frames.mp4", rallies: rallies.slice(0, 4) })).id
    // Every rally is cut before the page opens: only the window limits what the page prepares.
    for (let n = 0; n < 4; n++) await (await fetch(`${server.url}/api/videos/${id}/rallies/${n}/clip`)).arrayBuffer()
    browser = await launch("chromium")
  })

  afterAll(async () => {
    await browser?.close()
    await server?.dispose()
    ws?.cleanup()
  })

  it("prepares only the next rally while playing through, never the one after", async () => {
    const page = await browser.page()
    try {
      // How far past the rally on screen any element of the stage ever held a rally.
      await page.evaluateOnNewDocument(`(() => {
        localStorage.setItem("rallycache.playThrough", "on")
        window.maxAhead = null
        new MutationObserver(() => {
          const shown = document.querySelector("#stage video.shown")?.dataset.rally
          if (shown === undefined) return
          for (const video of document.querySelectorAll("#stage video[data-rally]")) {
            window.maxAhead = Math.max(window.maxAhead ?? -Infinity, Number(video.dataset.rally) - Number(shown))
          }
        }).observe(document, { subtree: true, childList: true, attributes: true })
      })()`)
      await page.goto(`${server.url}/?video=${encodeURIComponent(id)}`)
      await waitFor(page, `document.querySelector("#stage video.shown")?.dataset.rally === "0"`)
      await waitFor(page, prepared(1))
      expect(await page.$('#stage video[data-rally="2"]')).toBeNull()
      // Play-through moves to rally 1; rally 2 is then the one prepared, rally 3 is not.
      await waitFor(page, `document.querySelector("#stage video.shown")?.dataset.rally === "1"`)
      await waitFor(page, prepared(2))
      expect(await page.$('#stage video[data-rally="3"]')).toBeNull()
      expect(await page.evaluate(`window.maxAhead`)).toBe(1)
    } finally {
      await page.close()
    }
  })
})
