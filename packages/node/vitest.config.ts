import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "node",
    include: ["test/**/*.test.ts"],
    // Most tests here run ffmpeg or start processes: the bound catches a hang, it is not a speed check.
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
