/**
 * Reading a finished ffmpeg run: the `-progress` parser and the
 * classification of its stderr (failure kind, truncated input).
 *
 * @internal
 */

/**
 * Output time in seconds from one `-progress` line, `"end"` for the last
 * block, or `null`. `out_time_ms` is really microseconds, like `out_time_us`.
 *
 * @internal
 */
export const parseProgressLine = (line: string): number | "end" | null => {
  const eq = line.indexOf("=")
  if (eq < 0) return null
  const key = line.slice(0, eq).trim()
  const value = line.slice(eq + 1).trim()
  if (key === "progress") return value === "end" ? "end" : null
  if (key === "out_time_us" || key === "out_time_ms") {
    const us = Number(value)
    return Number.isFinite(us) && us >= 0 ? us / 1e6 : null
  }
  return null
}

/** @internal */
export type FailureClass =
  | { readonly _tag: "NoSpace" }
  | { readonly _tag: "Io" }
  | { readonly _tag: "SourceMissing" }
  | { readonly _tag: "SourceUnreadable" }
  | { readonly _tag: "NotMedia" }
  | { readonly _tag: "Exit" }

/**
 * What a non-zero ffmpeg exit means, from its last stderr lines.
 *
 * @internal
 */
export const classifyStderr = (lines: ReadonlyArray<string>, input: string): FailureClass => {
  const text = lines.join("\n")
  if (/No space left on device|ENOSPC/i.test(text)) return { _tag: "NoSpace" }
  if (/Input\/output error|\bEIO\b/i.test(text)) return { _tag: "Io" }
  const aboutInput = lines.filter((line) => line.includes(input)).join("\n")
  if (/No such file or directory/i.test(aboutInput)) return { _tag: "SourceMissing" }
  if (/Permission denied/i.test(aboutInput)) return { _tag: "SourceUnreadable" }
  if (/Invalid data found when processing input|moov atom not found/i.test(aboutInput)) return { _tag: "NotMedia" }
  return { _tag: "Exit" }
}

/**
 * What a demuxer says when the input ends inside its data (a file cut short
 * by a failed copy or download): ffmpeg and ffprobe still exit 0, and the
 * last packet they read is partial or missing. The line without its
 * `[demuxer @ 0x...]` prefix, or `undefined`.
 *
 * @internal
 */
export const truncationOf = (lines: ReadonlyArray<string>): string | undefined => {
  const line = lines.find((l) => /partial file|File ended prematurely|Truncating packet/i.test(l))
  return line?.replace(/^\[[^\]]*\]\s*/, "").trim()
}

/**
 * The last `n` lines as one string for an error's `stderr` field.
 *
 * @internal
 */
export const tail = (lines: ReadonlyArray<string>, n = 20): string => lines.slice(-n).join("\n")
