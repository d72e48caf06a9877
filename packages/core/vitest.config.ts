import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "core",
    include: ["test/**/*.test.ts"],
    // A bound that turns a hang into a failure, not a speed check: the properties run dozens of cases,
    // which vitest's 5 s default does not fit on a loaded 2-core machine.
    testTimeout: 60_000
  }
}, { media: false })
