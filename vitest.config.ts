import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // `summary` prints one plain "N passed, N failed" line that any CI can read.
    reporters: ["default", "./test/support/summary-reporter.ts"]
  }
})
