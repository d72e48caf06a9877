/**
 * ffmpeg argument lists of an export: the container a stream copy goes to,
 * the stream-copy and re-encode arguments. Kept free of effects so they can
 * be property-tested.
 *
 * @internal
 */

/** What the source holds, as far as choosing a container goes. @internal */
export interface StreamLayout {
  /** codec_name of the first video stream. */
  readonly video: string
  /** codec_tag_string of the first video stream (e.g. `hvc1`, `hev1`, `avc1`, `[0][0][0][0]`). */
  readonly videoTag: string
  /** codec_name of every audio stream, in order. */
  readonly audio: ReadonlyArray<string>
  /** See `seeksByIndex`. */
  readonly seekByIndex: boolean
  /**
   * Whether a stream of the source has a decoding delay (ffprobe's
   * `has_b_frames`): ffmpeg then moves an input seek earlier (see
   * `dtsHeuristic`); all-intra sources (ProRes, DNxHD) have none.
   */
  readonly videoDelay: boolean
  /** Whether the source is a QuickTime/mp4 file (ffprobe's format_name has `mov`). */
  readonly mov: boolean
}

const mp4Video = new Set(["h264", "hevc", "av1", "vp9", "mpeg4"])
const mp4Audio = new Set(["aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"])
/** What a MOV clip of a MOV source keeps as it is: intermediate codecs and PCM, with edit lists. */
const movVideo = new Set([...mp4Video, "prores", "dnxhd", "mjpeg"])
const movAudio = new Set([...mp4Audio, "pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_f32le"])
const webmVideo = new Set(["vp8", "vp9", "av1"])
const webmAudio = new Set(["opus", "vorbis"])

/** The containers a stream copy writes. @internal */
export type CopyContainer = "mp4" | "mov" | "webm" | "mkv"

/**
 * The clip's container for a stream copy of `layout`: mp4 where every stream
 * fits it, else MOV for a MOV source whose streams MOV holds (ProRes, PCM:
 * MOV has the edit lists the exact mode needs), else webm for VP8/VP9/AV1
 * with Opus/Vorbis, else Matroska.
 *
 * @internal
 */
export const containerFor = (layout: StreamLayout): CopyContainer => {
  if (mp4Video.has(layout.video) && layout.audio.every((codec) => mp4Audio.has(codec))) return "mp4"
  if (layout.mov && movVideo.has(layout.video) && layout.audio.every((codec) => movAudio.has(codec))) return "mov"
  if (webmVideo.has(layout.video) && layout.audio.every((codec) => webmAudio.has(codec))) return "webm"
  return "mkv"
}

/**
 * Video codecs whose lead-in an mp4 edit list hides in ffmpeg's own decode
 * (checked by the media corpus test). ffmpeg 5.1's AV1 decoders (libdav1d,
 * libaom) output the frames the edit list marks as discarded, so an exact
 * AV1 clip is cut `accurate` instead.
 *
 * @internal
 */
export const editListCodecs: ReadonlySet<string> = new Set(["h264", "hevc", "vp9", "mpeg4", "prores", "dnxhd"])

/** Whether the container has edit lists (mp4 and MOV): what an exact cut needs. @internal */
export const hasEditLists = (container: CopyContainer): container is "mp4" | "mov" =>
  container === "mp4" || container === "mov"

/** ffmpeg's muxer name of a container. @internal */
export const muxerOf = (container: CopyContainer): string => container === "mkv" ? "matroska" : container

/** @internal */
export interface EncodeSettings {
  readonly preset: string
  readonly crf: number
  readonly audioBitrate: string
}

const common = ["-nostdin", "-y", "-hide_banner", "-v", "error", "-progress", "pipe:1", "-nostats"]
/** The first video stream and every audio track (with its language tag); no data or subtitle streams. */
const maps = ["-map", "0:v:0?", "-map", "0:a?", "-dn", "-sn"]

/** Keep HEVC's `hvc1` tag (parameter sets out of band, as Safari requires); ffmpeg's mp4 default is `hev1`. */
const videoTag = (layout: StreamLayout | undefined): Array<string> =>
  layout?.video === "hevc" && layout.videoTag === "hvc1" ? ["-tag:v", "hvc1"] : []

/** @internal */
export interface StreamCopyCut {
  /** The video input's `-ss`, chosen by `copyPlan` so the demuxer lands on the wanted keyframe (`null`: from the beginning). */
  readonly videoSeek: number | null
  /** Source time (relative) presented first: the keyframe (copy) or the rally's first frame (exact). */
  readonly present: number
  /** Seconds presented from `present`. */
  readonly duration: number
  /**
   * Seconds of audio to copy from `present`: in mp4 more than `duration`
   * (the edit list ends both streams at `duration`); elsewhere the end of
   * the last video frame the copy keeps (see `videoEndOfCopy`).
   */
  readonly audioDuration: number
  /**
   * Video packets presented before this output time are dropped (open GOP:
   * the pictures that lead a non-IDR keyframe reference pictures cut away
   * and decode with errors); `undefined`: none to drop.
   */
  readonly dropBefore?: number | undefined
}

/**
 * Arguments of a stream-copy cut. The video and the audio are read through
 * two inputs of the same file: the video one seeks where the demuxer lands
 * on the keyframe (ffmpeg's own `-ss` would move a seek 3/23 s earlier on
 * B-frame sources and land one GOP early), and `-itsoffset` puts `present`
 * at time 0; the audio one seeks to `present` itself. In mp4, what comes
 * before 0 (the lead-in of an exact cut, the audio before the keyframe) is
 * hidden by the edit list ffmpeg writes; other containers have no edit list,
 * so the audio before 0 is dropped (`-copypriorss:a 0`). So it is from a
 * source seeked by timestamp search (MPEG-TS): the audio seek lands at the
 * start of the PES holding `present`, which a muxer may fill with a third
 * of a second of audio frames.
 *
 * @internal
 */
export const streamCopyArgs = (
  input: string,
  cut: StreamCopyCut,
  layout: StreamLayout,
  container: CopyContainer,
  output: string
): Array<string> => {
  const present = Math.floor(cut.present * 1e6) / 1e6
  const audio = layout.audio.length > 0
  return [
    ...common,
    ...(cut.videoSeek === null ? [] : ["-ss", cut.videoSeek.toFixed(6)]),
    "-itsoffset",
    ((cut.videoSeek ?? 0) - present).toFixed(6),
    "-t",
    cut.duration.toFixed(6),
    "-i",
    input,
    ...(audio ? ["-ss", present.toFixed(6), "-t", cut.audioDuration.toFixed(6), "-i", input] : []),
    "-map",
    "0:v:0",
    ...(audio ? ["-map", "1:a"] : []),
    "-dn",
    "-sn",
    "-c",
    "copy",
    ...(cut.dropBefore === undefined ? [] : ["-bsf:v", `noise=drop=lt(pts*tb\\,${cut.dropBefore.toFixed(6)})`]),
    ...(hasEditLists(container) ? [...videoTag(layout), "-movflags", "+faststart"] : []),
    ...(hasEditLists(container) && layout.seekByIndex ? [] : ["-copypriorss:a", "0"]),
    "-f",
    muxerOf(container),
    output
  ]
}

/**
 * Arguments of a frame-exact cut: input seek (fast) with re-encoding, which
 * decodes from the previous keyframe and drops frames before `start`.
 *
 * @internal
 */
export const accurateArgs = (
  input: string,
  start: number,
  end: number,
  settings: EncodeSettings,
  output: string,
  /** For sources seeked by timestamp search: a seek that lands before the keyframe of `start` (see `copyPlan`); the rest is decoded and dropped. */
  preSeek?: number | null
): Array<string> => [
  ...common,
  ...(preSeek === undefined
    ? ["-ss", start.toFixed(6), "-i", input]
    : [...(preSeek === null ? [] : ["-ss", preSeek.toFixed(6)]), "-i", input, "-ss", (start - (preSeek ?? 0)).toFixed(6)]),
  "-t",
  (end - start).toFixed(6),
  ...maps,
  // Frames keep their times (none repeated to fill a constant rate: a variable-rate source's clip ends with its
  // audio). `-vsync` is read by every ffmpeg since 2012; `-fps_mode`, its new name, only by 5.1 and later.
  "-vsync",
  "vfr",
  "-c:v",
  "libx264",
  "-preset",
  settings.preset,
  "-crf",
  String(settings.crf),
  "-pix_fmt",
  "yuv420p",
  "-c:a",
  "aac",
  "-b:a",
  settings.audioBitrate,
  "-movflags",
  "+faststart",
  "-f",
  "mp4",
  output
]
