/**
 * `pnpm --filter http-server screenshot [-- OUT.png]`: a fresh screenshot of
 * the player page, from the running example. Starts the example as a
 * process (`--demo`, a temp cache and media folder holding a copy of the
 * demo match and its rallies file, so the library and the form have
 * something to list), opens the printed player URL in headless Chromium
 * (puppeteer-core), moves to the next rally, lets it play a moment, and
 * writes the PNG (default: `screenshot.png` beside the README).
 */
import * as ChildProcess from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { launch } from "../test/browsers.js"

const packageDir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..")
const out = path.resolve(process.env["INIT_CWD"] ?? process.cwd(), process.argv.slice(2).find((a) => a !== "--") ?? path.join(packageDir, "screenshot.png"))

const main = async (): Promise<void> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rallycache-screenshot-"))
  const media = path.join(dir, "media")
  fs.mkdirSync(media)
  const server = ChildProcess.spawn(
    path.join(packageDir, "node_modules", ".bin", "tsx"),
    ["src/main.ts", "--demo", "--cache-dir", path.join(dir, "cache"), "--media-root", media],
    { cwd: packageDir, stdio: ["ignore", "pipe", "inherit"] }
  )
  const browser = await launch("chromium")
  try {
    const playerUrl = await new Promise<string>((resolve, reject) => {
      let text = ""
      server.stdout.on("data", (chunk: Buffer) => {
        text += chunk.toString()
        const found = /^player: (\S+)$/m.exec(text)
        if (found?.[1] !== undefined) resolve(found[1])
      })
      server.on("exit", (code) => reject(new Error(`the example exited with code ${code} before printing its URL`)))
    })
    // The demo match, as a file one could register from the page.
    const demo = fs.readdirSync(path.join(dir, "cache", "demo")).find((name) => name.endsWith(".mp4"))
    if (demo !== undefined) fs.copyFileSync(path.join(dir, "cache", "demo", demo), path.join(media, "semi-final.mp4"))
    fs.writeFileSync(
      path.join(media, "semi-final.json"),
      JSON.stringify({ rallies: [{ start: 3, end: 9.5 }, { start: "0:14", end: "0:21.5" }, { start: "0:30", end: "0:41" }] })
    )
    const page = await browser.page({ width: 1280, height: 860 })
    await page.goto(playerUrl)
    const shown = (rally: number) =>
      `(() => { const v = document.querySelector("#stage video.shown"); return v?.dataset.rally === "${rally}" && v.classList.contains("ready") && v.currentTime > 1.2 })()`
    await page.waitForFunction(shown(0), { timeout: 60_000, polling: 100 })
    await page.keyboard.press("ArrowRight")
    await page.waitForFunction(shown(1), { timeout: 60_000, polling: 100 })
    await page.screenshot({ path: out })
    process.stdout.write(`wrote ${out}\n`)
  } finally {
    await browser.close()
    if (server.exitCode === null) {
      const exited = new Promise((resolve) => server.once("exit", resolve))
      server.kill("SIGTERM")
      await exited
    }
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`screenshot: ${error instanceof Error ? error.message : String(error)}\n`)
  process.exitCode = 1
})
