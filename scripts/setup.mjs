#!/usr/bin/env node
// Installs what the test suite needs beyond Node.js and the npm packages, where
// it is missing and this machine can (root with apt-get: Debian, Ubuntu);
// otherwise stops at once with one line saying what to install.
//
//   chromium    the browser tests of the HTTP example (or set CHROMIUM_PATH)
//   firefox-esr the same tests in Firefox, over WebDriver BiDi (or set FIREFOX_PATH)
//   ffmpeg      a full ffmpeg/ffprobe on PATH: the bundled static builds lack
//               encoders and muxers the media tests cover
//   postgresql  the cluster and object-store tests start a real server from
//               PG_BIN (default: the newest /usr/lib/postgresql/<major>/bin)
//               as the `postgres` user (the S3 server they need, s3rver, is
//               an npm package: `pnpm install` brings it)
//   procps      `ps`, with which the process tests find child processes
//
// `pnpm test` runs it first; `pnpm test:setup` runs it alone. It does nothing when
// everything is present.
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { postgresBin } from "./postgresBin.mjs"

const env = process.env

const onPath = (name) =>
  (env.PATH ?? "")
    .split(path.delimiter)
    .filter((dir) => dir.length > 0)
    .some((dir) => {
      try {
        fs.accessSync(path.join(dir, name), fs.constants.X_OK)
        return fs.statSync(path.join(dir, name)).isFile()
      } catch {
        return false
      }
    })

const isExecutable = (file) => {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** What the tests need: how to tell it is there, and the Debian package that provides it. */
const requirements = [
  {
    what: "Chromium",
    apt: "chromium",
    present: () => env.CHROMIUM_PATH !== undefined ? isExecutable(env.CHROMIUM_PATH) : onPath("chromium")
  },
  {
    what: "Firefox ESR",
    apt: "firefox-esr",
    present: () => env.FIREFOX_PATH !== undefined ? isExecutable(env.FIREFOX_PATH) : onPath("firefox-esr")
  },
  { what: "ffmpeg and ffprobe", apt: "ffmpeg", present: () => onPath("ffmpeg") && onPath("ffprobe") },
  {
    what: `PostgreSQL (${postgresBin(env)})`,
    apt: "postgresql",
    present: () => ["initdb", "pg_ctl", "postgres"].every((tool) => isExecutable(path.join(postgresBin(env), tool)))
  },
  { what: "ps", apt: "procps", present: () => onPath("ps") },
  // The HTTP example's README shows curl commands, and its commands test runs them.
  { what: "curl", apt: "curl", present: () => onPath("curl") }
]

const missing = requirements.filter((requirement) => !requirement.present())
if (missing.length === 0) process.exit(0)

const packages = missing.map((requirement) => requirement.apt)
const what = missing.map((requirement) => requirement.what).join(", ")
const isRoot = typeof process.getuid === "function" && process.getuid() === 0

if (!isRoot || !onPath("apt-get")) {
  process.stderr.write(
    `the tests need ${what}: install ${
      onPath("apt-get") ? `them with \`sudo apt-get install -y ${packages.join(" ")}\`` : `the packages ${packages.join(", ")} (Debian names)`
    }, then run the tests again\n`
  )
  process.exit(1)
}

process.stderr.write(`installing ${packages.join(" ")} for the tests (${what} missing)...\n`)
const apt = (args) => {
  const result = spawnSync("apt-get", args, {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...env, DEBIAN_FRONTEND: "noninteractive" }
  })
  if (result.status !== 0) {
    process.stderr.write(
      `apt-get ${args.join(" ")} failed (exit ${result.status ?? result.signal}): install ${packages.join(" ")} by hand, then run the tests again\n`
    )
    process.exit(1)
  }
}
apt(["update", "-qq"])
apt(["install", "-y", "-qq", ...packages])

const still = missing.filter((requirement) => !requirement.present())
if (still.length > 0) {
  process.stderr.write(
    `${still.map((requirement) => requirement.what).join(", ")} still missing after apt-get install ${
      packages.join(" ")
    }: install them by hand, then run the tests again\n`
  )
  process.exit(1)
}
