import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "core",
    include: ["test/**/*.test.ts"]
  }
}, { media: false })
