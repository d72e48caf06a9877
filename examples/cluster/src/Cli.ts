/**
 * The options the runner and the front share, and how both run their
 * command: a failure is one line on stderr and an exit code by the rule of
 * `@rallycache/cli/CliErrors` (2 bad flags or input, 1 other failures), and
 * SIGTERM/SIGINT exit 0.
 *
 * @since 0.1.0
 */
import { Command, Options } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Config, Duration, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { Tracing } from "@rallycache/cluster"
import { argvOf, teardown, withOneLineErrors } from "@rallycache/cli/CliErrors"

/**
 * `--port N`, checked to be a port number; `min` is 0 where a free port may be asked for.
 *
 * @since 0.1.0
 * @category options
 */
export const port = (options: {
  readonly min: 0 | 1
  readonly description: string
  readonly env?: string
  readonly default: number
}) => {
  const text = Options.text("port").pipe(Options.withDescription(options.description))
  return (options.env === undefined ? text : text.pipe(Options.withFallbackConfig(Config.string(options.env)))).pipe(
    Options.filterMap(
      (text) => /^\d{1,5}$/.test(text) && Number(text) >= options.min && Number(text) < 65536
        ? Option.some(Number(text))
        : Option.none(),
      `--port${options.env === undefined ? "" : ` (or ${options.env})`} must be a number from ${options.min} to 65535`
    ),
    Options.withDefault(options.default)
  )
}

/**
 * `--host H`, the address to listen on.
 *
 * @since 0.1.0
 * @category options
 */
export const host = Options.text("host").pipe(
  Options.withDescription("Address to listen on (default: 127.0.0.1)"),
  Options.withDefault("127.0.0.1")
)

/**
 * `--database-url URL`, the Postgres every node of the cluster shares.
 *
 * @since 0.1.0
 * @category options
 */
export const databaseUrl = Options.text("database-url").pipe(
  Options.withDescription("The cluster's Postgres (default: DATABASE_URL)"),
  Options.withFallbackConfig(Config.nonEmptyString("DATABASE_URL"))
)

/**
 * How long a runner may be silent before its shards move; every node of a
 * cluster must agree on it, so it comes from the environment only.
 *
 * @since 0.1.0
 * @category config
 */
export const failoverAfter = Config.duration("RALLYCACHE_CLUSTER_FAILOVER").pipe(
  Config.withDefault(Duration.seconds(10))
)

/**
 * Spans to an OTLP/HTTP collector when `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
 *
 * @since 0.1.0
 * @category layers
 */
export const tracing = (serviceName: string) =>
  Layer.unwrapEffect(
    Config.option(Config.string("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")).pipe(
      Effect.map((url) => Option.isSome(url) ? Tracing.layerOtlp({ serviceName, url: url.value }) : Layer.empty)
    )
  )

/**
 * Runs `command` on the process's arguments under `NodeRuntime.runMain`,
 * with JSON log lines on stdout (the tests read them); `name` prefixes the
 * one line a failure prints.
 *
 * @since 0.1.0
 * @category running
 */
export const runMain = <Name extends string, E, A>(
  name: string,
  command: Command.Command<Name, NodeContext.NodeContext, E, A>
): void => {
  const argv = argvOf(process.argv)
  const main = Command.run(command, { name, version: "0.1.0" })(argv).pipe(
    // @effect/cli's own multi-line error report is replaced by one line at the end.
    withOneLineErrors,
    Effect.provide(NodeContext.layer),
    Effect.provide(Logger.json),
    Logger.withMinimumLogLevel(LogLevel.Info)
  )
  NodeRuntime.runMain(main, {
    disableErrorReporting: true,
    // SIGTERM/SIGINT is how a node is stopped: exit code 0. A defect is a bug,
    // its whole cause helps more than one line.
    teardown: teardown({ prefix: name, argv, interrupted: 0, fullDefects: true })
  })
}
