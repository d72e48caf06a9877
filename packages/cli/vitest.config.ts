import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "cli",
    include: ["test/**/*.test.ts"]
  }
}, { media: false })
