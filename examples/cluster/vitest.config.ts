import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "cluster-example",
    include: ["test/**/*.test.ts"],
    testTimeout: 180_000,
    hookTimeout: 120_000
  }
})
