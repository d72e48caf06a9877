/**
 * `Range: bytes=...` for one file (RFC 9110 §14). The answer is always one
 * part: a player asks for one range, and a multipart/byteranges body would
 * cost more than it saves.
 *
 * - The range set is a list (§5.6.1): empty elements (`bytes=0-10,`,
 *   `bytes=,0-10`) and whitespace around elements are ignored.
 * - Of several ranges, the satisfiable ones are coalesced (§14.2 allows it
 *   for ranges that overlap or are separated by less than a part's overhead):
 *   when they make one span, it is sent with 206; otherwise the whole body
 *   with 200 (a server may always ignore `Range`, §14.2).
 * - Unsatisfiable ranges (a start at or past the end, `-0`) are dropped;
 *   when none is left, 416 with `Content-Range: bytes *\/size`.
 * - An invalid specifier (`a > b`, not digits) is rejected with 416 (§14.2
 *   lets a server ignore or reject it); another unit is ignored (200).
 */

/** What to send for a request's `Range` header against a body of `size` bytes. */
export type RangeDecision =
  /** No usable `Range`: send the whole body with 200. */
  | { readonly _tag: "Full" }
  /** Send bytes `start..end` (inclusive) with 206. */
  | { readonly _tag: "Partial"; readonly start: number; readonly end: number }
  /** Invalid or out of the body: 416 with `Content-Range: bytes *\/size`. */
  | { readonly _tag: "Unsatisfiable" }

const full: RangeDecision = { _tag: "Full" }
const unsatisfiable: RangeDecision = { _tag: "Unsatisfiable" }

const spec = /^(\d*)[ \t]*-[ \t]*(\d*)$/

/** More ranges than this in one header: served whole (a list that long is no player's). */
export const maxRanges = 64

/** Gaps smaller than this are sent rather than split into parts (about one part's headers). */
export const coalesceGap = 80

interface Span {
  readonly start: number
  readonly end: number
}

/** One range-spec against `size`: a span, `undefined` when unsatisfiable, `null` when invalid. */
const resolveSpec = (text: string, size: number): Span | undefined | null => {
  const match = spec.exec(text)
  if (match === null) return null
  const [, first = "", last = ""] = match
  if (first === "" && last === "") return null
  if (first === "") {
    const suffix = Number(last)
    return suffix === 0 || size === 0 ? undefined : { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  if (last !== "" && Number(last) < start) return null
  if (start >= size) return undefined
  return { start, end: last === "" ? size - 1 : Math.min(Number(last), size - 1) }
}

/**
 * Decide how to answer `header` for a body of `size` bytes.
 */
export const decide = (header: string | undefined, size: number): RangeDecision => {
  if (header === undefined) return full
  const trimmed = header.trim()
  const eq = trimmed.indexOf("=")
  if (eq < 0) return unsatisfiable
  if (trimmed.slice(0, eq).trim().toLowerCase() !== "bytes") return full
  const specs = trimmed.slice(eq + 1).split(",").map((s) => s.trim()).filter((s) => s !== "")
  if (specs.length === 0) return unsatisfiable
  if (specs.length > maxRanges) return full
  const spans: Array<Span> = []
  for (const text of specs) {
    const span = resolveSpec(text, size)
    if (span === null) return unsatisfiable
    if (span !== undefined) spans.push(span)
  }
  if (spans.length === 0) return unsatisfiable
  spans.sort((a, b) => a.start - b.start)
  const start = spans[0]!.start
  let end = spans[0]!.end
  for (const span of spans.slice(1)) {
    if (span.start > end + coalesceGap) return full
    end = Math.max(end, span.end)
  }
  return { _tag: "Partial", start, end }
}

/** The `Content-Range` value of a partial response. */
export const contentRange = (start: number, end: number, size: number): string => `bytes ${start}-${end}/${size}`

/** The `Content-Range` value of a 416 response. */
export const unsatisfiedRange = (size: number): string => `bytes */${size}`
