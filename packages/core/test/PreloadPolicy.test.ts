import { describe, expect, it } from "@effect/vitest"
import { Effect, FastCheck as fc } from "effect"
import { Rally } from "../src/Domain.js"
import * as PreloadPolicy from "../src/PreloadPolicy.js"

const rallies = Array.from({ length: 6 }, (_, index) => new Rally({ index, start: index * 10, end: index * 10 + 5 }))
const planWith = (layer: ReturnType<typeof PreloadPolicy.layerWindow>, current: number, ahead = 2) =>
  Effect.provide(Effect.map(PreloadPolicy.PreloadPolicy, (p) => p.plan({ rallies, current, ahead })), layer)

describe("PreloadPolicy layers", () => {
  it.effect("the default layer plans every rally", () =>
    Effect.gen(function*() {
      const plan = yield* planWith(PreloadPolicy.layer, 2)
      expect(plan.map((p) => `${p.index}${p.priority[0]}`)).toEqual(["2h", "3n", "4n", "5l", "1l", "0l"])
    }))

  it.effect("the window layer plans only the current rally and n ahead", () =>
    Effect.gen(function*() {
      expect(yield* planWith(PreloadPolicy.layerWindow(1), 4)).toEqual([
        { index: 4, priority: "high" },
        { index: 5, priority: "normal" }
      ])
      expect((yield* planWith(PreloadPolicy.layerWindow(), 0, 3)).length).toBe(4)
    }))

  it.effect("a user policy is cleaned of unknown and repeated rallies", () =>
    Effect.gen(function*() {
      const layer = PreloadPolicy.layerFrom(({ current }) => [
        { index: current, priority: "high" },
        { index: current - 1, priority: "normal" },
        { index: current, priority: "low" },
        { index: 99, priority: "low" }
      ])
      expect(yield* planWith(layer, 0)).toEqual([{ index: 0, priority: "high" }])
      expect(yield* planWith(layer, 3)).toEqual([{ index: 3, priority: "high" }, { index: 2, priority: "normal" }])
    }))
})

const ralliesOf = (n: number) => Array.from({ length: n }, (_, index) => new Rally({ index, start: index * 10, end: index * 10 + 5 }))

const preloadInput = fc.integer({ min: 1, max: 40 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    current: fc.integer({ min: 0, max: n - 1 }),
    ahead: fc.integer({ min: 0, max: 6 })
  })
)

describe("PreloadPolicy.planPreload", () => {
  it.prop("plans every rally once: current high, the next `ahead` normal, the rest low", [preloadInput], ([p]) => {
    const plan = PreloadPolicy.planPreload({ rallies: ralliesOf(p.n), current: p.current, ahead: p.ahead })
    expect(plan.map((x) => x.index).sort((a, b) => a - b)).toEqual(Array.from({ length: p.n }, (_, i) => i))
    expect(plan[0]).toEqual({ index: p.current, priority: "high" })
    for (const { index, priority } of plan) {
      const expected = index === p.current
        ? "high"
        : index > p.current && index <= p.current + p.ahead
        ? "normal"
        : "low"
      expect(priority).toBe(expected)
    }
  })

  it.prop("lists the work by priority, then forward, then backward nearest first", [preloadInput], ([p]) => {
    const plan = PreloadPolicy.planPreload({ rallies: ralliesOf(p.n), current: p.current, ahead: p.ahead })
    const lows = plan.filter((x) => x.priority === "low").map((x) => x.index)
    const after = lows.filter((i) => i > p.current)
    const before = lows.filter((i) => i < p.current)
    expect(lows).toEqual([...after, ...before])
    expect(after).toEqual(after.slice().sort((a, b) => a - b))
    expect(before).toEqual(before.slice().sort((a, b) => b - a))
  })

  it.prop("planWindow plans only the current rally and the next n", [preloadInput, fc.integer({ min: 0, max: 5 })], ([p, n]) => {
    const plan = PreloadPolicy.planWindow(n)({ rallies: ralliesOf(p.n), current: p.current, ahead: p.ahead })
    const expected = [{ index: p.current, priority: "high" }]
    for (let i = p.current + 1; i <= Math.min(p.n - 1, p.current + n); i++) expected.push({ index: i, priority: "normal" })
    expect(plan).toEqual(expected)
  })

  it("plans nothing for an empty list and clamps an out-of-range current", () => {
    expect(PreloadPolicy.planPreload({ rallies: [], current: 0, ahead: 2 })).toEqual([])
    expect(PreloadPolicy.planPreload({ rallies: ralliesOf(3), current: 7, ahead: 2 })[0]).toEqual({ index: 2, priority: "high" })
    expect(PreloadPolicy.planWindow()({ rallies: ralliesOf(5), current: 0, ahead: 1 })).toEqual([
      { index: 0, priority: "high" },
      { index: 1, priority: "normal" }
    ])
  })
})
