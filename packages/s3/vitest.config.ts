import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "s3",
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
})
