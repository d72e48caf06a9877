/**
 * Settings of the HTTP layer itself (the cache reads its own
 * `RALLYCACHE_*` settings).
 *
 * @since 0.1.0
 */
import { Config, Context, Duration, Effect, Layer, Option } from "effect"
import type * as Http from "node:http"

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerSettings {
  /** Only files under this folder can be registered. */
  readonly mediaRoot: string
  /** How long a clip request waits for its export before answering 504. */
  readonly clipTimeout: Duration.Duration
  /** On shutdown, how long in-flight responses may take before their connections are closed. */
  readonly shutdownGrace: Duration.Duration
  /** Also expose Effect's runtime metrics (`effect_fiber_*`) at `/metrics`. */
  readonly runtimeMetrics: boolean
}

/**
 * Settings in code: durations as any `Duration.DurationInput`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  readonly mediaRoot?: string | undefined
  readonly clipTimeout?: Duration.DurationInput | undefined
  readonly shutdownGrace?: Duration.DurationInput | undefined
  readonly runtimeMetrics?: boolean | undefined
}

const resolved = (options: ServerOptions): ServerSettings => ({
  mediaRoot: options.mediaRoot ?? process.cwd(),
  clipTimeout: Duration.decode(options.clipTimeout ?? "30 seconds"),
  shutdownGrace: Duration.decode(options.shutdownGrace ?? "30 seconds"),
  runtimeMetrics: options.runtimeMetrics ?? false
})

/**
 * @since 0.1.0
 * @category tags
 */
export class ServerConfig extends Context.Tag("http-server/ServerConfig")<ServerConfig, ServerSettings>() {
  /**
   * Options given in code win; then:
   *
   * | variable                      | default            |
   * |-------------------------------|--------------------|
   * | RALLYCACHE_MEDIA_ROOT         | the current folder |
   * | RALLYCACHE_CLIP_TIMEOUT       | 30 seconds         |
   * | RALLYCACHE_SHUTDOWN_GRACE     | 30 seconds         |
   */
  static readonly layerConfig = (options: ServerOptions = {}) =>
    Layer.effect(
      ServerConfig,
      Effect.map(
        Config.all({
          mediaRoot: Config.option(Config.nonEmptyString("RALLYCACHE_MEDIA_ROOT")),
          clipTimeout: Config.option(Config.duration("RALLYCACHE_CLIP_TIMEOUT")),
          shutdownGrace: Config.option(Config.duration("RALLYCACHE_SHUTDOWN_GRACE"))
        }),
        (env) =>
          resolved({
            mediaRoot: options.mediaRoot ?? Option.getOrUndefined(env.mediaRoot),
            clipTimeout: options.clipTimeout ?? Option.getOrUndefined(env.clipTimeout),
            shutdownGrace: options.shutdownGrace ?? Option.getOrUndefined(env.shutdownGrace),
            runtimeMetrics: options.runtimeMetrics
          })
      )
    )

  /** From code only, ignoring the environment. */
  static readonly layer = (options: ServerOptions = {}) => Layer.succeed(ServerConfig, resolved(options))
}

/**
 * The Node server underneath, when there is one: on shutdown, connections
 * still open after the grace period are closed.
 *
 * @since 0.1.0
 * @category tags
 */
export class NodeServer extends Context.Tag("http-server/NodeServer")<NodeServer, Http.Server>() {}
