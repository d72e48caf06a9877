import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
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
