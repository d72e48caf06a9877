import { project } from "./support/project.js"

export default project({
  test: {
    name: "integration",
    include: ["**/*.test.ts"],
    exclude: ["bench/**", "node_modules/**"],
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
