/**
 * The `rallycache` command line, as a library: its command tree, `run`, and
 * the rallies file reader it uses (from `@rallycache/node`).
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"
export {
  /** @since 0.1.0 */
  RalliesFile
} from "@rallycache/node"
