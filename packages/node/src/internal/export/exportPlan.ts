/**
 * The choice of one export's ffmpeg run: per mode (copy, exact, accurate),
 * where the clip starts and ends, the arguments, and why a mode fell back.
 *
 * @internal
 */
import type { Domain, Exporter } from "@rallycache/core"
import { Errors } from "@rallycache/core"
import type { EncodeSettings } from "./ffmpegArgs.js"
import { accurateArgs, containerFor, editListCodecs, hasEditLists, streamCopyArgs } from "./ffmpegArgs.js"
import type { SourceEntry } from "../media/ffprobe.js"
import type { Keyframe } from "./keyframePlan.js"
import { copyPlan, exactPlan, firstFrameAt, frameIndexAt, hasLeadingPictures, videoEndOfCopy } from "./keyframePlan.js"

/**
 * How far before a frame's listed time a re-encode's seek and end go: listed
 * times are rounded to the microsecond, and a seek just after the first frame
 * would drop it, an end just after the next one would keep it.
 */
const seekMargin = 0.00001

/**
 * Seconds of audio a stream copy keeps: in mp4, a little more than shown
 * (the edit list ends both streams together); elsewhere, up to the end of
 * the last video frame the copy keeps.
 */
export const audioDurationOf = (entry: SourceEntry, container: Domain.Container, present: number, duration: number): number => {
  if (hasEditLists(container)) return duration + 0.25
  const frame = entry.info.keyframeInterval === null ? 0.04 : medianFrameDuration(entry.framePts)
  return videoEndOfCopy(entry.packets ?? [], present, duration, frame)
}

export const truncatedSource = (
  path: string,
  truncated: { readonly dataEnd: number; readonly detail: string },
  duration: number
) =>
  new Errors.SourceUnreadable({
    path,
    reason: `the file is truncated: its data ends at ${truncated.dataEnd.toFixed(3)} s of ${
      duration.toFixed(3)
    } s, before this rally ends (${truncated.detail}); copy it again`
  })

/** Per frame list: a 2-hour source has 200,000 frames, and sorting their gaps for every cut would cost more than the cut. */
const medians = new WeakMap<Float64Array, number>()

const medianFrameDuration = (framePts: Float64Array | undefined): number => {
  if (framePts === undefined || framePts.length < 2) return 0.04
  const known = medians.get(framePts)
  if (known !== undefined) return known
  const gaps = new Float64Array(framePts.length - 1)
  for (let i = 1; i < framePts.length; i++) gaps[i - 1] = framePts[i]! - framePts[i - 1]!
  gaps.sort()
  const median = gaps[gaps.length >> 1]!
  medians.set(framePts, median)
  return median
}

/** One ffmpeg run and what its clip covers. */
export interface Cut {
  readonly mode: Domain.ExportMode
  readonly args: ReadonlyArray<string>
  readonly clipStart: number
  readonly clipEnd: number
  /** Seconds a player presents. */
  readonly presented: number
  readonly firstFrame: number | undefined
  readonly container: Domain.Container
  /**
   * Open GOP: pictures decoded after the keyframe but presented before it
   * reference pictures the cut removes; a cut drops them (never shown).
   */
  readonly dropLeading: boolean
}


/** The planned run, the accurate run a failed cut falls back to, and why the mode fell back. @internal */
export interface CutPlan {
  readonly cut: Cut
  readonly accurate: Cut
  readonly fellBack: { to: Domain.ExportMode; reason: string } | undefined
}

/**
 * Plans the cut of `request`'s rally (ending at `end`) from the source's
 * probe and keyframes.
 *
 * @internal
 */
export const planCut = (
  request: Exporter.ExportRequest,
  entry: SourceEntry,
  keyframes: ReadonlyArray<Keyframe>,
  end: number,
  settings: EncodeSettings
): CutPlan => {
  const path = request.source.path
  const rally = request.rally
  const info = entry.info
  const layout = entry.layout
  const container = containerFor(layout)
  // The median frame duration is asked for only where a plan needs it: it is a median over the whole source's frames.
  const frame = () => medianFrameDuration(entry.framePts)
  // The output time before which open-GOP leading pictures are dropped: half a frame before the keyframe.
  const leading = (keyframePts: number) => hasLeadingPictures(entry.packets ?? [], keyframes, keyframePts)
  const dropBefore = (keyframePts: number, present: number) =>
    leading(keyframePts) ? keyframePts - present - frame() / 2 : undefined
  // A re-encode starts at the rally's first frame itself: started between two frames, ffmpeg's
  // constant-frame-rate output would show the first frame twice (once in the gap before it). It ends
  // where the encoder ends its last frame (one frame duration after it, at most at the next frame),
  // so the audio lasts as long as the picture.
  const framePts = entry.framePts ?? []
  const listed = firstFrameAt(framePts, rally.start)
  const first = listed !== undefined && listed < end ? listed : undefined
  const accurateStart = first ?? rally.start
  const last = framePts[frameIndexAt(framePts, end) - 1]
  const accurateEnd = first === undefined || last === undefined || last < first
    ? end
    : Math.min(last + frame(), firstFrameAt(framePts, end) ?? Infinity, info.duration)
  const preSeek = layout.seekByIndex
    ? undefined
    : copyPlan(keyframes, accurateStart, end, info.duration, false).seek
  const accurate: Cut = {
    mode: "accurate",
    args: accurateArgs(path, Math.max(0, accurateStart - seekMargin), accurateEnd - seekMargin, settings, request.tempPath, preSeek),
    clipStart: accurateStart,
    clipEnd: accurateEnd,
    presented: accurateEnd - accurateStart,
    firstFrame: first,
    container: "mp4",
    dropLeading: false
  }
  let cut: Cut = accurate
  let fellBack: { to: Domain.ExportMode; reason: string } | undefined
  if (request.mode === "copy") {
    const plan = copyPlan(keyframes, rally.start, end, info.duration, layout.seekByIndex, layout.videoDelay)
    cut = {
      mode: "copy",
      args: streamCopyArgs(
        path,
        {
          videoSeek: plan.seek,
          present: plan.clipStart,
          duration: plan.clipEnd - plan.clipStart,
          audioDuration: audioDurationOf(entry, container, plan.clipStart, plan.clipEnd - plan.clipStart),
          dropBefore: dropBefore(plan.clipStart, plan.clipStart)
        },
        layout,
        container,
        request.tempPath
      ),
      clipStart: plan.clipStart,
      clipEnd: plan.clipEnd,
      presented: plan.clipEnd - plan.clipStart,
      firstFrame: undefined,
      container,
      dropLeading: leading(plan.clipStart)
    }
  } else if (request.mode === "exact") {
    const usable = hasEditLists(container) && editListCodecs.has(layout.video)
    const plan = usable
      ? exactPlan(keyframes, entry.framePts ?? [], rally.start, end, info.duration, layout.seekByIndex, layout.videoDelay)
      : null
    if (plan === null) {
      fellBack = {
        to: "accurate",
        reason: usable
          ? "no video frame starts inside the rally"
          : hasEditLists(container)
          ? `edit lists are not honoured by ffmpeg's ${layout.video} decoder`
          : `its streams (${[layout.video, ...layout.audio].join(", ")}) do not fit mp4 or MOV, whose edit list the exact mode needs`
      }
    } else {
      cut = {
        mode: "exact",
        args: streamCopyArgs(
          path,
          {
            ...plan,
            audioDuration: audioDurationOf(entry, container, plan.present, plan.duration),
            dropBefore: dropBefore(plan.clipStart, plan.present)
          },
          layout,
          container,
          request.tempPath
        ),
        clipStart: plan.clipStart,
        clipEnd: plan.clipEnd,
        presented: plan.duration,
        firstFrame: plan.firstFrame,
        container,
        dropLeading: leading(plan.clipStart)
      }
    }
  }
  return { cut, accurate, fellBack }
}
