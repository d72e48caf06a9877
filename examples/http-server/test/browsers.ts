/**
 * Debian's stock browsers driven by puppeteer-core: Chromium over the
 * DevTools protocol, Firefox ESR over WebDriver BiDi. Each launch gets a
 * fresh profile folder, removed when the browser is closed. Shared by the
 * browser tests, the `viewer` bench scenario and the screenshot script.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import puppeteer, { type Browser, type Page } from "puppeteer-core"

export type BrowserName = "chromium" | "firefox"

export const browserNames: ReadonlyArray<BrowserName> = ["chromium", "firefox"]

export const executablePath = (name: BrowserName): string =>
  name === "chromium"
    ? (process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium")
    : (process.env["FIREFOX_PATH"] ?? "/usr/bin/firefox-esr")

const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--autoplay-policy=no-user-gesture-required"
]

export interface Launched {
  readonly name: BrowserName
  readonly browser: Browser
  /** A new tab at this viewport size. */
  readonly page: (viewport?: { readonly width: number; readonly height: number }) => Promise<Page>
  readonly close: () => Promise<void>
}

export const launch = async (name: BrowserName): Promise<Launched> => {
  const executable = executablePath(name)
  if (!fs.existsSync(executable)) {
    const variable = name === "chromium" ? "CHROMIUM_PATH" : "FIREFOX_PATH"
    throw new Error(
      `no ${name} at ${executable} (apt-get install -y ${name === "chromium" ? "chromium" : "firefox-esr"}, or set ${variable})`
    )
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), `rallycache-${name}-`))
  const browser = await puppeteer.launch(
    name === "chromium"
      ? { browser: "chrome", executablePath: executable, headless: true, userDataDir, args: chromiumArgs }
      : {
        browser: "firefox",
        executablePath: executable,
        headless: true,
        userDataDir,
        extraPrefsFirefox: { "media.autoplay.default": 0 }
      }
  ).catch((error: unknown) => {
    fs.rmSync(userDataDir, { recursive: true, force: true })
    throw error
  })
  return {
    name,
    browser,
    page: async (viewport = { width: 1280, height: 800 }) => {
      const page = await browser.newPage()
      await page.setViewport({ width: viewport.width, height: viewport.height })
      return page
    },
    close: async () => {
      await browser.close().catch(() => undefined)
      fs.rmSync(userDataDir, { recursive: true, force: true })
    }
  }
}

/**
 * In-page code (a string: the Node program has no DOM types) that waits for
 * the first frame of rally `rally` painted after now, and reads it back:
 * on the first animation frame where the visible `<video>` (classes
 * `shown ready` or `shown clean`; the others have opacity 0) holds rally `rally` with a
 * decoded frame, or at its first `requestVideoFrameCallback` once visible,
 * whichever comes first, the frame is drawn into a canvas and its number
 * read from the ten stripes of the frame-coded test video (bit i is the
 * stripe at x = 32i..32i+31 of a 320 px wide frame; white is 1).
 *
 * `action` runs in the page right after the probe is set (a click, a key).
 * Resolves with the frame number, the milliseconds from the action, and
 * how the frame was caught.
 */
export const firstPaintedFrame = (rally: number, action: string): string => `(async () => {
  const readFrame = (video) => {
    const canvas = document.createElement("canvas")
    canvas.width = video.videoWidth
    canvas.height = video.videoHeight
    const ctx = canvas.getContext("2d")
    ctx.drawImage(video, 0, 0)
    const row = ctx.getImageData(0, Math.floor(canvas.height / 2), canvas.width, 1).data
    let n = 0
    for (let bit = 0; bit < 10; bit++) {
      const x = Math.floor(((32 * bit + 16) * canvas.width) / 320)
      if (row[x * 4] > 128) n |= 1 << bit
    }
    return n
  }
  return await new Promise((resolve) => {
    let done = false
    let watched = null
    const finish = (video, via) => {
      if (done) return
      done = true
      const ms = performance.now() - t0
      resolve({ frame: readFrame(video), ms, via, mediaTime: video.currentTime })
    }
    const check = () => {
      if (done) return
      const video = document.querySelector("#stage video.shown")
      if (video !== null && video.dataset.rally === "${rally}") {
        if (watched !== video) {
          watched = video
          const onFrame = () => {
            if (video.classList.contains("ready") || video.classList.contains("clean")) finish(video, "videoFrame")
            else if (!done) video.requestVideoFrameCallback(onFrame)
          }
          video.requestVideoFrameCallback(onFrame)
        }
        if (video.readyState >= 2 && (video.classList.contains("ready") || video.classList.contains("clean"))) return finish(video, "animationFrame")
      }
      requestAnimationFrame(check)
    }
    requestAnimationFrame(check)
    const t0 = performance.now()
    ;(${action})()
  })
})()`
