import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "node",
    include: ["test/**/*.test.ts"],
    // Most tests here run ffmpeg or start processes: the bound catches a hang, it is not a speed check.
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
