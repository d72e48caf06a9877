import { project } from "../../test/support/project.js"

export default project({
  test: {
    name: "http-server",
    include: ["test/**/*.test.ts"],
    // Real ffmpeg, real processes and a real browser: generous limits.
    testTimeout: 120_000,
    hookTimeout: 120_000
  }
}, { bundles: ["main"] })
