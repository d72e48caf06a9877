/**
 * rallycache on Node, composed by the bench: the same services as
 * `@rallycache/node`'s default layer (manager, FfmpegExporter with its
 * run folder and export timeout, FileSystemCacheStore after reaping stale
 * exports, default preload policy, metrics, events, cleanup), with one
 * difference: a pass-through CommandExecutor that records every command
 * the cache starts, so that a baseline can replay the very same ffmpeg
 * command line. The default layer provides its own NodeContext, which is
 * why it cannot be wrapped from outside. Scenarios that need no recording
 * use the default layer itself.
 */
import type * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { NodeContext } from "@effect/platform-node"
import { CacheEvent, Cleanup, Config, Metrics, PreloadPolicy, RallyCache } from "@rallycache/core"
import type { CacheStore } from "@rallycache/core"
import { FfmpegExporter, FileSystemCacheStore } from "@rallycache/node"
import { Effect, Layer } from "effect"
import { join } from "node:path"

export interface RecordedCommand {
  readonly command: string
  readonly args: ReadonlyArray<string>
  readonly at: number
}

const recordingExecutor = (sink: Array<RecordedCommand>) =>
  Layer.effect(
    CommandExecutor.CommandExecutor,
    Effect.map(CommandExecutor.CommandExecutor, (inner) =>
      CommandExecutor.makeExecutor((command: Command.Command) => {
        if (command._tag === "StandardCommand") {
          sink.push({ command: command.command, args: command.args, at: performance.now() })
        }
        return inner.start(command)
      }))
  ).pipe(Layer.provide(NodeContext.layer))

export interface NodeCacheOptions {
  readonly cacheDir: string
  readonly config?: Config.Options
  /** When given, every command the cache starts is appended here. */
  readonly recorder?: Array<RecordedCommand>
  /** Exporter options beside the run folder and timeout (e.g. `inProcess: false`). */
  readonly exporter?: FfmpegExporter.Options
}

export type NodeCacheServices = RallyCache.RallyCache | CacheStore.CacheStore | CacheEvent.CacheEvents

export const nodeCacheLayer = (options: NodeCacheOptions): Layer.Layer<NodeCacheServices, unknown> => {
  const platform = options.recorder === undefined
    ? NodeContext.layer
    : Layer.merge(NodeContext.layer, recordingExecutor(options.recorder))
  const base = Layer.mergeAll(
    Config.CacheConfig.layer(options.config ?? {}),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer,
    PreloadPolicy.layer
  )
  const runDir = join(options.cacheDir, "run")
  const store = FileSystemCacheStore.layer({ cacheDir: options.cacheDir }).pipe(
    Layer.provide(Layer.effectDiscard(FfmpegExporter.reapStale(runDir)).pipe(Layer.provide(platform)))
  )
  const services = Layer.mergeAll(
    FfmpegExporter.layer({ ...options.exporter, runDir, timeout: Config.defaults.exportTimeout }).pipe(Layer.provide(platform)),
    store
  ).pipe(Layer.provideMerge(base))
  const withCleanup = Cleanup.layer.pipe(Layer.provideMerge(services))
  return RallyCache.layer.pipe(Layer.provideMerge(withCleanup))
}

/** The ffmpeg invocation inside a recorded command (after setpriv/nice wrappers). */
export const ffmpegInvocation = (
  recorded: RecordedCommand,
  ffmpegPath: string
): { readonly binary: string; readonly args: ReadonlyArray<string> } | undefined => {
  const all = [recorded.command, ...recorded.args]
  const i = all.indexOf(ffmpegPath)
  return i < 0 ? undefined : { binary: ffmpegPath, args: all.slice(i + 1) }
}
