/**
 * What the engine knows of an open video, shared by the actor (which owns
 * it), the export job and the hit path.
 *
 * @internal
 */
import type { CacheEntry, CacheKey, ExportMode, Rally, SourceInfo, VideoSource } from "../../Domain.js"
import { Clip, roundTime } from "../../Domain.js"

/** An open video, as published to the hit path. @internal */
export interface VideoView {
  readonly source: VideoSource
  readonly info: SourceInfo
  readonly rallies: ReadonlyArray<Rally>
  readonly keys: ReadonlyArray<CacheKey>
  readonly mode: ExportMode
  /** Memo of the `Clip` served on hits, per rally. */
  readonly hitClips: Array<Clip | undefined>
}

/** @internal */
export const isIndex = (index: number, count: number): boolean => Number.isInteger(index) && index >= 0 && index < count

/** @internal */
export const makeClip = (view: VideoView, index: number, entry: CacheEntry, path: string, cached: boolean): Clip => {
  const rally = view.rallies[index]!
  // Trusted values from the store and the validated rally: skip re-validation on the hot path.
  return new Clip({
    key: entry.key,
    videoId: view.source.id,
    rallyIndex: index,
    mode: entry.mode,
    path,
    // Times come out rounded here, the one place clips (and so ClipReady
    // events and getClip answers) are built.
    start: roundTime(rally.start),
    end: roundTime(rally.end),
    clipStart: roundTime(entry.clipStart),
    clipEnd: roundTime(entry.clipEnd),
    ...(entry.firstFrame === undefined ? {} : { firstFrame: roundTime(entry.firstFrame) }),
    ...(entry.leadIn === undefined ? {} : { leadIn: roundTime(entry.leadIn) }),
    ...(entry.container === undefined ? {} : { container: entry.container }),
    sizeBytes: entry.sizeBytes,
    cached
  }, true)
}
