/**
 * `Range: bytes=...` for one file (RFC 9110 §14). Only single ranges are
 * served: a player never asks for several, and a multipart/byteranges body
 * would cost more than serving the whole clip.
 */

/** What to send for a request's `Range` header against a body of `size` bytes. */
export type RangeDecision =
  /** No usable `Range`: send the whole body with 200. */
  | { readonly _tag: "Full" }
  /** Send bytes `start..end` (inclusive) with 206. */
  | { readonly _tag: "Partial"; readonly start: number; readonly end: number }
  /** Malformed or out of the body: 416 with `Content-Range: bytes *\/size`. */
  | { readonly _tag: "Unsatisfiable" }

const full: RangeDecision = { _tag: "Full" }
const unsatisfiable: RangeDecision = { _tag: "Unsatisfiable" }

const spec = /^(\d*)-(\d*)$/

/**
 * Decide how to answer `header` for a body of `size` bytes.
 *
 * - No header, another unit, or several ranges: the whole body (servers may
 *   ignore `Range`, and a multi-range answer is not worth it).
 * - `bytes=a-b`, `bytes=a-`, `bytes=-n` (the last n bytes): the clamped range.
 * - A syntax error, `a > b`, a start at or past the end, `-0`, or any range
 *   of an empty body: unsatisfiable.
 */
export const decide = (header: string | undefined, size: number): RangeDecision => {
  if (header === undefined) return full
  const trimmed = header.trim()
  const eq = trimmed.indexOf("=")
  if (eq < 0) return unsatisfiable
  if (trimmed.slice(0, eq).trim().toLowerCase() !== "bytes") return full
  const specs = trimmed.slice(eq + 1).split(",").map((s) => s.trim())
  if (specs.length !== 1) return specs.every((s) => spec.test(s)) ? full : unsatisfiable
  const match = spec.exec(specs[0]!)
  if (match === null) return unsatisfiable
  const [, first = "", last = ""] = match
  if (first === "" && last === "") return unsatisfiable
  if (size === 0) return unsatisfiable
  if (first === "") {
    const suffix = Number(last)
    if (suffix === 0) return unsatisfiable
    return { _tag: "Partial", start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  if (start >= size) return unsatisfiable
  if (last === "") return { _tag: "Partial", start, end: size - 1 }
  const end = Number(last)
  if (end < start) return unsatisfiable
  return { _tag: "Partial", start, end: Math.min(end, size - 1) }
}

/** The `Content-Range` value of a partial response. */
export const contentRange = (start: number, end: number, size: number): string => `bytes ${start}-${end}/${size}`

/** The `Content-Range` value of a 416 response. */
export const unsatisfiedRange = (size: number): string => `bytes */${size}`
