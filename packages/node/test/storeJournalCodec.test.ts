import { describe, expect, it } from "@effect/vitest"
import { Domain } from "@rallycache/core"
import { Arbitrary, Equal, FastCheck as fc, Schema } from "effect"
import * as Journal from "../src/internal/store/storeJournal.js"

// The journal codec lists CacheEntry's fields by hand (it is on the start-up
// path of a 100k-entry index). These properties fail as soon as a field added
// to the schema is forgotten by the encoder, the decoder or the fast
// constructor.
const finite = (n: number) => Number.isFinite(n) ? n + 0 : 0
// Real entries hold finite numbers (JSON has no NaN or -0) and leave unset
// optional fields out rather than holding `undefined`.
const entries = Arbitrary.make(Domain.CacheEntry).map((entry) => {
  const fields: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(entry)) {
    if (value !== undefined) fields[name] = typeof value === "number" ? finite(value) : value
  }
  return new Domain.CacheEntry(fields as unknown as Domain.CacheEntry)
})

describe("journal codec", () => {
  it("every CacheEntry survives a journal line, field for field", () => {
    let runs = 0
    fc.assert(
      fc.property(entries, (entry) => {
        runs++
        const decoded = Journal.decodeLine(Journal.encodeRecord({ o: "p", e: entry }))
        expect(decoded?.o).toBe("p")
        const back = decoded?.o === "p" ? decoded.e : undefined
        expect(back).toBeInstanceOf(Domain.CacheEntry)
        expect(Equal.equals(back, entry)).toBe(true)
        expect(Schema.is(Domain.CacheEntry)(back)).toBe(true)
      }),
      { numRuns: 200 }
    )
    expect(runs).toBe(200)
  })

  it("the fast constructor sets the same own fields as the schema's", () => {
    fc.assert(
      fc.property(entries, (entry) => {
        const fast = Journal.makeEntry(entry)
        expect(Object.getOwnPropertyNames(fast).sort()).toEqual(Object.getOwnPropertyNames(entry).sort())
        expect(Equal.equals(fast, entry)).toBe(true)
      }),
      { numRuns: 100 }
    )
  })

  it("every field of the schema is written to the journal when it is set", () => {
    const required = Object.entries(Domain.CacheEntry.fields)
      .filter(([, field]) => !Schema.isPropertySignature(field))
      .map(([name]) => name)
    fc.assert(
      fc.property(entries, (entry) => {
        const written = JSON.parse(Journal.encodeRecord({ o: "p", e: entry })) as { e: Record<string, unknown> }
        for (const name of required) expect(written.e).toHaveProperty(name)
        for (const name of Object.keys(entry)) expect(written.e).toHaveProperty(name)
      }),
      { numRuns: 100 }
    )
  })
})
