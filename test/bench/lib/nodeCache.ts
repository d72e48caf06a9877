/**
 * rallycache on Node, built for the bench: the same services as the node
 * default layer (manager, FfmpegExporter, FileSystemCacheStore, default
 * preload policy, metrics, events, cleanup) on a given folder, plus an
 * optional pass-through CommandExecutor that records every command the
 * cache runs, so a baseline can replay the very same ffmpeg command line.
 */
import type * as Command from "@effect/platform/Command"
import * as CommandExecutor from "@effect/platform/CommandExecutor"
import { NodeContext } from "@effect/platform-node"
import { CacheEvent, Cleanup, Config, Metrics, PreloadPolicy, RallyCache } from "@rallycache/core"
import type { CacheStore } from "@rallycache/core"
import { FfmpegExporter, FileSystemCacheStore } from "@rallycache/node"
import { Effect, Layer, Stream } from "effect"
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
  const services = Layer.mergeAll(
    FfmpegExporter.layer({ runDir: join(options.cacheDir, "run") }).pipe(Layer.provide(platform)),
    FileSystemCacheStore.layer({ cacheDir: options.cacheDir })
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

/** Wait until `count` ClipReady events of `videoId` arrived on `events` (subscribe before starting the work). */
export const awaitClipsReady = (
  events: Stream.Stream<CacheEvent.CacheEvent>,
  videoId: string,
  count: number
): Effect.Effect<void> =>
  events.pipe(
    Stream.filter((event) => event._tag === "ClipReady" && event.clip.videoId === videoId),
    Stream.take(count),
    Stream.runDrain
  )
