/**
 * Where a JSON text stops being valid, for error messages.
 *
 * `JSON.parse` in Node 20 names the offending token but often not its
 * position, and quotes a snippet of the input that may span lines. This
 * scanner finds the offset of the first syntax error so the CLI can say
 * "line 3, column 7" in one line. It keeps an explicit stack instead of
 * recursing, so a deeply nested file cannot overflow the call stack.
 *
 * @internal
 */

/** @internal */
export interface SyntaxErrorAt {
  readonly offset: number
  readonly reason: string
}

const isWs = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39

/**
 * The first syntax error of `text`, or `undefined` when it is valid JSON.
 *
 * @internal
 */
export const findSyntaxError = (text: string): SyntaxErrorAt | undefined => {
  let i = 0
  const n = text.length
  // Each frame: "a" (array) or "o" (object); `expect` says what may come next.
  const stack: Array<"a" | "o"> = []
  type Expect = "value" | "valueOrClose" | "commaOrClose" | "key" | "keyOrClose" | "colon" | "end"
  let expect: Expect = "value"

  const skipWs = () => {
    while (i < n && isWs(text.charCodeAt(i))) i++
  }
  const describe = (at: number): string =>
    at >= n ? "the text ends too early" : `unexpected ${JSON.stringify(text[at])}`

  const afterValue = (): Expect => stack.length === 0 ? "end" : "commaOrClose"

  const scanString = (): SyntaxErrorAt | undefined => {
    i++ // opening quote
    while (i < n) {
      const c = text.charCodeAt(i)
      if (c === 0x22) {
        i++
        return undefined
      }
      if (c < 0x20) return { offset: i, reason: "a control character (such as a line break) inside a string" }
      if (c === 0x5c) {
        const e = text[i + 1]
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return { offset: i, reason: "a bad \\u escape" }
          i += 6
          continue
        }
        if (e === undefined || !"\"\\/bfnrt".includes(e)) return { offset: i, reason: "a bad escape in a string" }
        i += 2
        continue
      }
      i++
    }
    return { offset: n, reason: "a string that is never closed" }
  }

  const scanNumber = (): SyntaxErrorAt | undefined => {
    const start = i
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400))
    if (m === null || m[0].length === 0) return { offset: start, reason: describe(start) }
    i += m[0].length
    if (i < n && (isDigit(text.charCodeAt(i)) || text[i] === ".")) return { offset: i, reason: "a malformed number" }
    return undefined
  }

  while (true) {
    skipWs()
    if (expect === "end") {
      return i >= n ? undefined : { offset: i, reason: `${describe(i)} after the end of the JSON value` }
    }
    if (i >= n) return { offset: n, reason: "the text ends too early" }
    const ch = text[i]!
    switch (expect) {
      case "colon": {
        if (ch !== ":") return { offset: i, reason: `${describe(i)}, expected ':'` }
        i++
        expect = "value"
        continue
      }
      case "commaOrClose": {
        const top = stack[stack.length - 1]!
        if (ch === ",") {
          i++
          expect = top === "a" ? "value" : "key"
          continue
        }
        if ((top === "a" && ch === "]") || (top === "o" && ch === "}")) {
          i++
          stack.pop()
          expect = afterValue()
          continue
        }
        return { offset: i, reason: `${describe(i)}, expected ',' or '${top === "a" ? "]" : "}"}'` }
      }
      case "key":
      case "keyOrClose": {
        if (ch === "}" && expect === "keyOrClose") {
          i++
          stack.pop()
          expect = afterValue()
          continue
        }
        if (ch !== "\"") {
          return {
            offset: i,
            reason: expect === "key" && ch === "}"
              ? "a trailing comma before '}'"
              : `${describe(i)}, expected a quoted property name`
          }
        }
        const error = scanString()
        if (error !== undefined) return error
        expect = "colon"
        continue
      }
      case "value":
      case "valueOrClose": {
        if (ch === "]" && expect === "valueOrClose") {
          i++
          stack.pop()
          expect = afterValue()
          continue
        }
        if (ch === "[") {
          i++
          stack.push("a")
          expect = "valueOrClose"
          continue
        }
        if (ch === "{") {
          i++
          stack.push("o")
          expect = "keyOrClose"
          continue
        }
        if (ch === "\"") {
          const error = scanString()
          if (error !== undefined) return error
          expect = afterValue()
          continue
        }
        if (ch === "-" || isDigit(text.charCodeAt(i))) {
          const error = scanNumber()
          if (error !== undefined) return error
          expect = afterValue()
          continue
        }
        for (const literal of ["true", "false", "null"]) {
          if (text.startsWith(literal, i)) {
            i += literal.length
            expect = afterValue()
            break
          }
        }
        if (expect !== "value" && expect !== "valueOrClose") continue
        if (ch === "]" && stack[stack.length - 1] === "a") return { offset: i, reason: "a trailing comma before ']'" }
        if (/^(NaN|-?Infinity|undefined)/.test(text.slice(i, i + 10))) {
          return { offset: i, reason: "NaN, Infinity and undefined are not JSON; write a number of seconds" }
        }
        return { offset: i, reason: `${describe(i)}, expected a value` }
      }
    }
  }
}

/**
 * 1-based line and column of `offset` in `text`.
 *
 * @internal
 */
export const lineColumn = (text: string, offset: number): { readonly line: number; readonly column: number } => {
  let line = 1
  let lineStart = 0
  const end = Math.min(offset, text.length)
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 0x0a) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: end - lineStart + 1 }
}
