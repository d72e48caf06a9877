import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "node",
    include: ["test/**/*.test.ts"]
  }
})
