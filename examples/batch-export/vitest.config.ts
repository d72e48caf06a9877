import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "batch-export",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
}, { bundles: ["main"] })
