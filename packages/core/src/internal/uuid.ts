import { Effect, Random } from "effect"

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0")

/**
 * A random version-4 UUID from Effect's `Random` (no platform crypto in
 * core; entry ids only need to be unique, not secret), so a seeded `Random`
 * makes ids reproducible in tests.
 */
export const randomUUID: Effect.Effect<string> = Effect.gen(function*() {
  const words: Array<number> = []
  for (let i = 0; i < 8; i++) words.push(yield* Random.nextIntBetween(0, 0x10000))
  const [a, b, c, d, e, f, g, h] = words as [number, number, number, number, number, number, number, number]
  return `${hex(a, 4)}${hex(b, 4)}-${hex(c, 4)}-${hex(0x4000 | (d & 0x0fff), 4)}-${hex(0x8000 | (e & 0x3fff), 4)}-${
    hex(f, 4)
  }${hex(g, 4)}${hex(h, 4)}`
})
