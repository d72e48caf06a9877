import { describe, expect, it } from "@effect/vitest"
import { FastCheck } from "effect"
import * as Conditional from "../src/internal/conditional.js"
import * as Range from "../src/internal/range.js"

const sizeAndRange = FastCheck.integer({ min: 1, max: 1e9 }).chain((size) =>
  FastCheck.tuple(FastCheck.constant(size), FastCheck.integer({ min: 0, max: size - 1 })).chain(([size, start]) =>
    FastCheck.tuple(FastCheck.constant(size), FastCheck.constant(start), FastCheck.integer({ min: start, max: size * 2 }))
  )
)

describe("Range.decide", () => {
  it("serves the whole body without a Range, for other units, and for ranges one part cannot carry", () => {
    expect(Range.decide(undefined, 100)).toEqual({ _tag: "Full" })
    expect(Range.decide("items=0-5", 100)).toEqual({ _tag: "Full" })
    expect(Range.decide("bytes=0-5, 500-600", 1000)).toEqual({ _tag: "Full" })
    const many = Array.from({ length: Range.maxRanges + 1 }, (_, i) => `${i}-${i}`).join(",")
    expect(Range.decide(`bytes=${many}`, 1000)).toEqual({ _tag: "Full" })
  })

  it("ignores empty list elements and whitespace (RFC 9110 §5.6.1)", () => {
    for (const header of ["bytes=0-10,", "bytes=,0-10", "bytes=0-10, ,", "bytes= 0-10 ", "bytes=\t0-10\t,"]) {
      expect(Range.decide(header, 1000), header).toEqual({ _tag: "Partial", start: 0, end: 10 })
    }
  })

  it("coalesces ranges that overlap or are close, in any order, and drops unsatisfiable ones", () => {
    expect(Range.decide("bytes=0-5, 10-20", 100)).toEqual({ _tag: "Partial", start: 0, end: 20 })
    expect(Range.decide("bytes=50-60, 0-10", 1000)).toEqual({ _tag: "Partial", start: 0, end: 60 })
    expect(Range.decide("bytes=0-500, 100-200", 1000)).toEqual({ _tag: "Partial", start: 0, end: 500 })
    expect(Range.decide("bytes=0-9, 2000-", 1000)).toEqual({ _tag: "Partial", start: 0, end: 9 })
    expect(Range.decide("bytes=-0, 990-", 1000)).toEqual({ _tag: "Partial", start: 990, end: 999 })
    expect(Range.decide("bytes=1000-, 2000-3000", 1000)).toEqual({ _tag: "Unsatisfiable" })
  })

  it("answers first bytes, a middle range, an open range and a suffix", () => {
    expect(Range.decide("bytes=0-99", 1000)).toEqual({ _tag: "Partial", start: 0, end: 99 })
    expect(Range.decide("bytes=400-599", 1000)).toEqual({ _tag: "Partial", start: 400, end: 599 })
    expect(Range.decide("bytes=900-", 1000)).toEqual({ _tag: "Partial", start: 900, end: 999 })
    expect(Range.decide("bytes=-100", 1000)).toEqual({ _tag: "Partial", start: 900, end: 999 })
    expect(Range.decide("bytes=-5000", 1000)).toEqual({ _tag: "Partial", start: 0, end: 999 })
    expect(Range.decide(" Bytes = 10-19 ", 1000)).toEqual({ _tag: "Partial", start: 10, end: 19 })
  })

  it("refuses malformed and unsatisfiable ranges", () => {
    for (const header of ["bytes=1000-", "bytes=5-2", "bytes=-0", "bytes=-", "bytes=abc", "bytes=1-2-3", "bytes", "bytes=0-1,x", "bytes=", "bytes=,", "bytes=0-1,5-2"]) {
      expect(Range.decide(header, 1000), header).toEqual({ _tag: "Unsatisfiable" })
    }
    expect(Range.decide("bytes=0-", 0)).toEqual({ _tag: "Unsatisfiable" })
  })

  it.prop("a satisfiable a-b range is clamped to the body and never leaves it", [sizeAndRange], ([[size, start, end]]) => {
    const decision = Range.decide(`bytes=${start}-${end}`, size)
    expect(decision).toEqual({ _tag: "Partial", start, end: Math.min(end, size - 1) })
  })

  it.prop(
    "a suffix range covers the last n bytes",
    [FastCheck.integer({ min: 1, max: 1e9 }), FastCheck.integer({ min: 1, max: 2e9 })],
    ([size, n]) => {
      const decision = Range.decide(`bytes=-${n}`, size)
      expect(decision).toEqual({ _tag: "Partial", start: Math.max(0, size - n), end: size - 1 })
    }
  )

  it("formats Content-Range", () => {
    expect(Range.contentRange(0, 99, 1000)).toBe("bytes 0-99/1000")
    expect(Range.unsatisfiedRange(1000)).toBe("bytes */1000")
  })
})

describe("Conditional", () => {
  const etag = "\"0123456789abcdef0123456789abcdef\""
  it("If-None-Match matches the tag, a weak form of it, a list containing it, or *", () => {
    expect(Conditional.noneMatch(etag, etag)).toBe(true)
    expect(Conditional.noneMatch(`W/${etag}`, etag)).toBe(true)
    expect(Conditional.noneMatch(`"other", ${etag}`, etag)).toBe(true)
    expect(Conditional.noneMatch("*", etag)).toBe(true)
    expect(Conditional.noneMatch("\"other\"", etag)).toBe(false)
    expect(Conditional.noneMatch(undefined, etag)).toBe(false)
  })
  it("If-Range applies the range only for the current tag", () => {
    expect(Conditional.rangeApplies(undefined, etag)).toBe(true)
    expect(Conditional.rangeApplies(etag, etag)).toBe(true)
    expect(Conditional.rangeApplies("\"old\"", etag)).toBe(false)
    expect(Conditional.rangeApplies("Wed, 21 Oct 2015 07:28:00 GMT", etag)).toBe(false)
  })
})
