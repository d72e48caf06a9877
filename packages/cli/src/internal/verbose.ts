/**
 * What `--verbose` adds to a failure's one line: ffmpeg's own stderr and the
 * full cause.
 *
 * @internal
 */
import { Cause, Predicate } from "effect"

/**
 * ffmpeg's own last stderr lines carried by a failure, for `--verbose`.
 *
 * @internal
 */
export const ffmpegSaid = (error: unknown): string | undefined =>
  Predicate.hasProperty(error, "stderr") && typeof error.stderr === "string" && error.stderr.length > 0
    ? `ffmpeg said:\n${error.stderr}`
    : undefined

/**
 * Extra detail printed with `--verbose`: ffmpeg's stderr, the full cause.
 *
 * @internal
 */
export const verboseDetail = (cause: Cause.Cause<unknown>): string => {
  const parts: Array<string> = []
  for (const error of Cause.failures(cause)) {
    const said = ffmpegSaid(error)
    if (said !== undefined) parts.push(said)
  }
  parts.push(Cause.pretty(cause, { renderErrorCause: true }))
  return parts.join("\n")
}
