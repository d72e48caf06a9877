import { defineConfig } from "vitest/config"
import SlowFirstSequencer from "./test/support/sequencer.js"

export default defineConfig({
  test: {
    // `summary` prints one plain "N passed, N failed" line that any CI can read.
    reporters: ["default", "./test/support/summary-reporter.ts"],
    // vitest's default on 2 cores is one file at a time, but most of the slow files wait on
    // processes (ffmpeg, Postgres, npm, a browser, the CLI) more than they compute: three at once.
    maxWorkers: 3,
    minWorkers: 1,
    // The slowest files first, so that the run does not end with one of them alone.
    sequence: { sequencer: SlowFirstSequencer }
  }
})
