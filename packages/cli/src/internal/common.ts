/**
 * What every command shares: the common options, the cache layer, reading
 * the rallies file, `--only`, and running a command body with `--metrics`.
 *
 * @internal
 */
import { Options } from "@effect/cli"
import type * as CacheEvent from "@rallycache/core/CacheEvent"
import type * as CacheStore from "@rallycache/core/CacheStore"
import type * as Config from "@rallycache/core/Config"
import type * as Exporter from "@rallycache/core/Exporter"
import type * as CoreMetrics from "@rallycache/core/Metrics"
import type * as RallyCache from "@rallycache/core/RallyCache"
import * as Metrics from "@rallycache/core/Metrics"
import type { NodeContext } from "@effect/platform-node"
import type * as FfmpegResolver from "@rallycache/node/FfmpegResolver"
import * as NodeRallyCache from "@rallycache/node/NodeRallyCache"
import * as RalliesFile from "@rallycache/node/RalliesFile"
import { Context, Effect, Either, Layer, Option } from "effect"
import * as CliStats from "./cliStats.js"
import { UsageError } from "../CliErrors.js"
import * as Output from "./output.js"

/**
 * The services a command may use.
 *
 * @internal
 */
export type Services =
  | RallyCache.RallyCache
  | CacheStore.CacheStore
  | CoreMetrics.Metrics
  | CacheEvent.CacheEvents
  | Config.CacheConfig
  | Exporter.Exporter
  | FfmpegResolver.Ffmpeg

/**
 * Options of the cache layer: the folder, and settings given on the
 * command line (they override `RALLYCACHE_*` variables).
 *
 * @internal
 */
export type LayerOptions = Config.Options & { readonly cacheDir: string }

/**
 * Options of the maintenance layer: `readOnly` opens the store read-only
 * (nothing created, repaired or locked), for commands that only look.
 *
 * @internal
 */
export type MaintenanceOptions = LayerOptions & { readonly readOnly?: boolean }

/**
 * The services of the `cache` commands: no manager, no cleanup fibers
 * (`NodeRallyCache.layerMaintenance`).
 *
 * @internal
 */
export type MaintenanceServices = Exclude<NodeRallyCache.MaintenanceServices, NodeContext.NodeContext>

/**
 * Builds the cache layers of commands. `bin.ts` provides the Node layers;
 * tests and embedders may provide others.
 *
 * @internal
 */
export class CacheLayer extends Context.Tag("@rallycache/cli/CacheLayer")<CacheLayer, {
  readonly full: (options: LayerOptions) => Layer.Layer<Services, unknown>
  readonly maintenance: (options: MaintenanceOptions) => Layer.Layer<MaintenanceServices, unknown>
}>() {}

/**
 * The options every command takes.
 *
 * @internal
 */
export const common = {
  cacheDir: Options.directory("cache-dir").pipe(
    Options.withPseudoName("DIR"),
    Options.withDescription(
      "Cache folder (default: $RALLYCACHE_CACHE_DIR, then $XDG_CACHE_HOME/rallycache or ~/.cache/rallycache)"
    ),
    Options.optional
  ),
  json: Options.boolean("json").pipe(Options.withDescription("Print one JSON object on stdout")),
  metrics: Options.boolean("metrics").pipe(
    Options.withDescription("Print the metrics snapshot after the command (on stderr with --json)")
  ),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("Show the cause of errors"))
} as const

/** @internal */
export interface Common {
  readonly cacheDir: Option.Option<string>
  readonly json: boolean
  readonly metrics: boolean
  readonly verbose: boolean
}

/**
 * The cache folder: `--cache-dir`, then the default layer's rule
 * (`$RALLYCACHE_CACHE_DIR`, `$XDG_CACHE_HOME/rallycache`, `~/.cache/rallycache`).
 *
 * @internal
 */
export const resolveCacheDir = (flag: Option.Option<string>): Effect.Effect<string, UsageError> =>
  Option.isSome(flag) && flag.value.trim().length === 0
    ? new UsageError({
      message: "--cache-dir is empty (pass a folder, or leave the option out to use the default cache folder)"
    })
    : NodeRallyCache.resolveCacheDir({ cacheDir: Option.getOrUndefined(flag) })

/**
 * Run a command body on the cache layer, then print the metrics snapshot
 * when `--metrics` is set (also after a failure).
 *
 * @internal
 */
export const withCache = <A, E, R>(
  options: Common,
  settings: Config.Options,
  body: (cacheDir: string) => Effect.Effect<A, E, R>
): Effect.Effect<A, unknown, Exclude<R, Services> | CacheLayer> =>
  Effect.gen(function*() {
    const makeLayer = (yield* CacheLayer).full
    const cacheDir = yield* resolveCacheDir(options.cacheDir)
    yield* CliStats.sweep(cacheDir)
    return yield* Effect.provide(withMetrics(options, body(cacheDir)), makeLayer({ ...settings, cacheDir }))
  })

/**
 * `withCache` on the maintenance layer (store, exporter, ffmpeg);
 * `"read-only"` for commands that only look at the folder, so they work
 * on one they cannot write.
 *
 * @internal
 */
export const withStore = <A, E, R>(
  options: Common,
  body: (cacheDir: string) => Effect.Effect<A, E, R>,
  access: "read-write" | "read-only" = "read-write"
): Effect.Effect<A, unknown, Exclude<R, MaintenanceServices> | CacheLayer> =>
  Effect.gen(function*() {
    const makeLayer = (yield* CacheLayer).maintenance
    const cacheDir = yield* resolveCacheDir(options.cacheDir)
    const readOnly = access === "read-only"
    if (!readOnly) yield* CliStats.sweep(cacheDir)
    return yield* Effect.provide(withMetrics(options, body(cacheDir)), makeLayer({ cacheDir, readOnly }))
  })

/** With `--metrics`, print the metrics snapshot after `program` (also after a failure). */
const withMetrics = <A, E, R>(options: Common, program: Effect.Effect<A, E, R>) =>
  options.metrics
    ? Effect.ensuring(
      program,
      Effect.ignore(Effect.gen(function*() {
        const snapshot = yield* (yield* Metrics.Metrics).snapshot
        yield* options.json
          ? Output.stderr(JSON.stringify({ metrics: snapshot }))
          : Output.stdout("\n" + Output.metricsTable(snapshot))
      }))
    )
    : program

/**
 * Read and parse a rallies file; every problem is exit code 2.
 *
 * @internal
 */
export const readRallies = (path: string) => RalliesFile.read(path, { hint: "check the --rallies path" })

/**
 * Parse `--only 3,5-7` into sorted, distinct rally indexes, checked
 * against the number of rallies.
 *
 * @internal
 */
export const parseOnly = (spec: string, count: number): Either.Either<ReadonlyArray<number>, UsageError> => {
  const fail = (reason: string) =>
    Either.left(new UsageError({ message: `--only ${JSON.stringify(spec)}: ${reason} (for example --only 3,5-7)` }))
  const indexes = new Set<number>()
  const parts = spec.split(",").map((part) => part.trim())
  if (spec.trim().length === 0) return fail("it is empty")
  for (const part of parts) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part)
    if (m === null) return fail(`${JSON.stringify(part)} is not an index or a range`)
    const from = Number(m[1])
    const to = m[2] === undefined ? from : Number(m[2])
    if (to < from) return fail(`the range ${part} goes backwards`)
    if (to >= count) {
      return fail(`rally ${to} does not exist; the rallies file has ${count} (indexes 0 to ${count - 1})`)
    }
    for (let i = from; i <= to; i++) indexes.add(i)
  }
  return Either.right([...indexes].sort((a, b) => a - b))
}
