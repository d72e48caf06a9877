/**
 * The `rallycache` command line, as a library: its command tree, `run`, and
 * the rallies file parser.
 *
 * @since 0.1.0
 */
export * as Cli from "./Cli.js"
export * as RalliesFile from "./RalliesFile.js"
