import { describe, expect, it } from "@effect/vitest"
import { FastCheck, Schema } from "effect"
import { CacheKey, Domain } from "@rallycache/core"

const input = FastCheck.record({
  fingerprint: FastCheck.string({ minLength: 1 }),
  start: FastCheck.double({ min: 0, max: 1e5, noNaN: true }),
  end: FastCheck.double({ min: 0, max: 1e5, noNaN: true }),
  mode: FastCheck.constantFrom("copy" as const, "accurate" as const),
  settingsVersion: FastCheck.string()
})

describe("CacheKey", () => {
  it("is pinned: the same input gives the same key on every machine", () => {
    // A literal, so a change of the key derivation (which would orphan every
    // cached clip) fails here and is made on purpose, with keyVersion bumped.
    expect(
      CacheKey.make({ fingerprint: "s1024-m1700000000000", start: 12.5, end: 31, mode: "copy", settingsVersion: "copy-v1" })
    ).toMatchInlineSnapshot(`"662f6e2c80fc84f59831ad57b0117781"`)
  })

  it.prop("is 32 lowercase hex characters and a valid CacheKey", [input], ([i]) => {
    const key = CacheKey.make(i)
    expect(key).toMatch(/^[0-9a-f]{32}$/)
    expect(Schema.is(Domain.CacheKey)(key)).toBe(true)
  })

  // Pairs that are equal, equal but for sub-millisecond noise, or differ in
  // exactly one part by the smallest step the key must see: random pairs are
  // almost never equal, so they would prove nothing about determinism.
  type Input = typeof input extends FastCheck.Arbitrary<infer A> ? A : never
  const nearby = (a: Input): FastCheck.Arbitrary<Input> =>
    FastCheck.oneof(
      FastCheck.constant({ ...a }),
      FastCheck.double({ min: -0.0004, max: 0.0004, noNaN: true }).map((d) => ({ ...a, start: a.start + d })),
      FastCheck.double({ min: -0.0004, max: 0.0004, noNaN: true }).map((d) => ({ ...a, end: a.end + d })),
      FastCheck.constantFrom(-0.001, 0.001, 1).map((d) => ({ ...a, start: a.start + d })),
      FastCheck.constantFrom(-0.001, 0.001, 1).map((d) => ({ ...a, end: a.end + d })),
      FastCheck.constant({ ...a, mode: a.mode === "copy" ? "accurate" as const : "copy" as const }),
      FastCheck.constant({ ...a, fingerprint: a.fingerprint + "x" }),
      FastCheck.constant({ ...a, settingsVersion: a.settingsVersion + "x" })
    )
  const pair = input.chain((a) => nearby(a).map((b) => [a, b] as const))

  it("is the same for the same input (up to a millisecond) and changes when any part changes", () => {
    let equal = 0
    let different = 0
    FastCheck.assert(
      FastCheck.property(pair, ([a, b]) => {
        const same = a.fingerprint === b.fingerprint && Math.round(a.start * 1000) === Math.round(b.start * 1000) &&
          Math.round(a.end * 1000) === Math.round(b.end * 1000) && a.mode === b.mode &&
          a.settingsVersion === b.settingsVersion
        if (same) equal++
        else different++
        expect(CacheKey.make(a) === CacheKey.make(b)).toBe(same)
      }),
      { numRuns: 400 }
    )
    // Both sides of the rule were exercised.
    expect(equal).toBeGreaterThan(50)
    expect(different).toBeGreaterThan(50)
  })

  it("ignores sub-millisecond noise in times", () => {
    const base = { fingerprint: "f", start: 12.5, end: 31, mode: "copy", settingsVersion: "v" } as const
    expect(CacheKey.make({ ...base, start: 12.5000000001 })).toBe(CacheKey.make(base))
    expect(CacheKey.make({ ...base, start: 12.501 })).not.toBe(CacheKey.make(base))
  })

  it("cannot be forged by separators inside the fingerprint", () => {
    const a = CacheKey.make({ fingerprint: "a\",1", start: 1, end: 2, mode: "copy", settingsVersion: "v" })
    const b = CacheKey.make({ fingerprint: "a", start: 1, end: 2, mode: "copy", settingsVersion: "v" })
    expect(a).not.toBe(b)
  })
})
