/**
 * The `rallycache` command line, as a library: its command tree, `run`, the
 * rule that turns a failure into one line and an exit code (`CliErrors`,
 * shared with the example programs), and the rallies file reader it uses
 * (from `@rallycache/node`).
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"

/**
 * Failure to one line and an exit code: 0 ok, 1 runtime failure, 2 bad usage or input, 130 interrupted.
 *
 * @since 0.1.0
 */
export * as CliErrors from "./CliErrors.js"
export {
  /** @since 0.1.0 */
  RalliesFile
} from "@rallycache/node"
