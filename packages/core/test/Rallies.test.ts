import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import { Rally } from "../src/Domain.js"
import type { InvalidRally } from "../src/Errors.js"
import * as Rallies from "../src/Rallies.js"

describe("Rallies.validateRallies", () => {
  const limits = { maxRallyLength: 60, duration: 100 }
  const good = { start: 1, end: 5 }

  const failure = (input: ReadonlyArray<{ start: number; end: number }>, options = limits): InvalidRally => {
    const exit = Effect.runSyncExit(Rallies.validateRallies(input, options))
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    if (error === undefined) throw new Error("expected a typed failure")
    return error
  }

  it.effect("accepts valid rallies and numbers them", () =>
    Effect.gen(function*() {
      const rallies = yield* Rallies.validateRallies([good, { start: 10, end: 70 }, { start: 90, end: 100.04 }], limits)
      expect(rallies.map((r) => [r.index, r.start, r.end])).toEqual([[0, 1, 5], [1, 10, 70], [2, 90, 100.04]])
      expect(rallies[0]).toBeInstanceOf(Rally)
      // Without a known duration, only the other rules apply.
      const unbounded = yield* Rallies.validateRallies([{ start: 1000, end: 1010 }], { maxRallyLength: 60 })
      expect(unbounded.length).toBe(1)
    }))

  const cases: ReadonlyArray<[string, { start: number; end: number }, RegExp]> = [
    ["NaN start", { start: Number.NaN, end: 5 }, /start is NaN, not a finite number/],
    ["NaN end", { start: 1, end: Number.NaN }, /end is NaN, not a finite number/],
    ["infinite end", { start: 1, end: Number.POSITIVE_INFINITY }, /end is Infinity/],
    ["infinite start", { start: Number.NEGATIVE_INFINITY, end: 5 }, /start is -Infinity/],
    ["negative start", { start: -1, end: 5 }, /start -1 s is negative/],
    ["reversed", { start: 9, end: 5 }, /end 5 s is not after start 9 s/],
    ["empty", { start: 5, end: 5 }, /end 5 s is not after start 5 s/],
    ["too long", { start: 0, end: 60.5 }, /lasts 60.5 s, longer than maxRallyLength 60 s/],
    ["past the end", { start: 90, end: 100.06 }, /end 100.06 s is past the end of the video \(100 s\)/]
  ]
  for (const [name, bad, pattern] of cases) {
    it(`rejects a ${name} rally and names its index`, () => {
      const error = failure([good, good, bad, good])
      expect(error._tag).toBe("InvalidRally")
      expect(error.index).toBe(2)
      expect(error.message).toMatch(/^rally 2: /)
      expect(error.message).toMatch(pattern)
      expect(error.message).not.toContain("\n")
    })
  }

  it("reports the first bad rally", () => {
    expect(failure([{ start: -1, end: 2 }, { start: 3, end: 1 }]).index).toBe(0)
  })
})
