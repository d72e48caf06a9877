import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "cluster-example",
    include: ["test/**/*.test.ts"],
    // Real processes and a real Postgres on a shared 2-core machine: generous limits.
    testTimeout: 180_000,
    hookTimeout: 240_000
  }
}, { bundles: ["runner", "front"] })
