/**
 * Conditional requests against a strong entity tag (RFC 9110 §13).
 */

const tags = (header: string): Array<string> =>
  header.split(",").map((tag) => tag.trim().replace(/^W\//, "")).filter((tag) => tag.length > 0)

/**
 * `If-None-Match` uses the weak comparison: `W/"x"` matches `"x"`, and `*`
 * matches any existing body.
 */
export const noneMatch = (header: string | undefined, etag: string): boolean =>
  header !== undefined && (header.trim() === "*" || tags(header).includes(etag))

/**
 * Whether `If-Range` lets the `Range` apply: only when it names the current
 * entity tag (a date or another tag means "send the whole new body").
 */
export const rangeApplies = (header: string | undefined, etag: string): boolean =>
  header === undefined || header.trim() === etag
