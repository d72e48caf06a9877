import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "cluster-example",
    include: ["test/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 120_000
  }
})
