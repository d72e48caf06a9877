import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Exit, FastCheck as fc } from "effect"
import { CacheEntry, Rally } from "../src/Domain.js"
import type { CacheKey, ValidationStatus, VideoId } from "../src/Domain.js"
import type { InvalidRally } from "../src/Errors.js"
import * as Policy from "../src/Policy.js"

const keyOf = (i: number) => i.toString(16).padStart(32, "0") as CacheKey
const uuidOf = (i: number) => `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`

interface RawEntry {
  readonly video: number
  readonly createdAt: number
  readonly accessedDelta: number
  readonly sizeBytes: number
  readonly validation: ValidationStatus
}

const rawEntry: fc.Arbitrary<RawEntry> = fc.record({
  video: fc.integer({ min: 0, max: 3 }),
  createdAt: fc.integer({ min: 0, max: 1_000 }),
  // Small ranges so that ties in accessedAt are common and the tie-break is exercised.
  accessedDelta: fc.integer({ min: 0, max: 50 }),
  sizeBytes: fc.integer({ min: 0, max: 1_000 }),
  validation: fc.constantFrom<ValidationStatus>("unchecked", "valid", "valid", "invalid")
})

const toEntries = (raws: ReadonlyArray<RawEntry>): Array<CacheEntry> =>
  raws.map((raw, i) =>
    new CacheEntry({
      id: uuidOf(i),
      key: keyOf(i),
      videoId: `video-${raw.video}` as VideoId,
      rallyIndex: i,
      mode: "copy",
      clipStart: 0,
      clipEnd: 1,
      createdAt: raw.createdAt,
      accessedAt: raw.createdAt + raw.accessedDelta,
      sizeBytes: raw.sizeBytes,
      priority: "low",
      validation: raw.validation,
      validatedAt: null
    })
  )

const scenario = fc.record({
  raws: fc.array(rawEntry, { maxLength: 60 }),
  maxBytes: fc.integer({ min: 0, max: 20_000 }),
  maxAge: fc.integer({ min: 0, max: 1_200 }),
  maxEntriesPerVideo: fc.integer({ min: 1, max: 10 }),
  now: fc.integer({ min: 0, max: 1_500 }),
  pinMask: fc.array(fc.boolean(), { minLength: 60, maxLength: 60 })
})

type Scenario = typeof scenario extends fc.Arbitrary<infer A> ? A : never

const run = (s: Scenario) => {
  const entries = toEntries(s.raws)
  const pinned = new Set(entries.filter((_, i) => s.pinMask[i]).map((e) => e.key))
  const limits = { maxBytes: s.maxBytes, maxAge: s.maxAge, maxEntriesPerVideo: s.maxEntriesPerVideo }
  const plan = Policy.planEviction(entries, limits, s.now, pinned)
  const evicted = new Set(plan.map((p) => p.entry.key))
  const kept = entries.filter((e) => !evicted.has(e.key))
  return { entries, pinned, plan, evicted, kept }
}

const older = (a: CacheEntry, b: CacheEntry) => a.accessedAt < b.accessedAt || (a.accessedAt === b.accessedAt && a.key < b.key)

describe("Policy.planEviction", () => {
  it.prop("never evicts a pinned entry, and evicts each entry at most once", [scenario], ([s]) => {
    const { evicted, pinned, plan } = run(s)
    for (const key of pinned) expect(evicted.has(key)).toBe(false)
    expect(evicted.size).toBe(plan.length)
  })

  it.prop("keeps at most maxBytes when the pinned entries fit", [scenario], ([s]) => {
    const { entries, kept, pinned } = run(s)
    const pinnedBytes = entries.filter((e) => pinned.has(e.key)).reduce((n, e) => n + e.sizeBytes, 0)
    const keptBytes = kept.reduce((n, e) => n + e.sizeBytes, 0)
    if (pinnedBytes <= s.maxBytes) expect(keptBytes).toBeLessThanOrEqual(s.maxBytes)
  })

  it.prop("keeps every video within maxEntriesPerVideo, unless its pinned entries alone exceed it", [scenario], ([s]) => {
    const { kept, pinned } = run(s)
    const count = new Map<string, { all: number; pinned: number }>()
    for (const e of kept) {
      const c = count.get(e.videoId) ?? { all: 0, pinned: 0 }
      count.set(e.videoId, { all: c.all + 1, pinned: c.pinned + (pinned.has(e.key) ? 1 : 0) })
    }
    for (const c of count.values()) expect(c.all).toBeLessThanOrEqual(Math.max(s.maxEntriesPerVideo, c.pinned))
  })

  it.prop("removes every unpinned invalid and expired entry, with the right reason", [scenario], ([s]) => {
    const { entries, pinned, plan } = run(s)
    const reasonOf = new Map(plan.map((p) => [p.entry.key, p.reason]))
    for (const e of entries) {
      if (pinned.has(e.key)) continue
      if (e.validation === "invalid") expect(reasonOf.get(e.key)).toBe("invalid")
      else if (s.now - e.createdAt > s.maxAge) expect(reasonOf.get(e.key)).toBe("age")
      else expect(reasonOf.get(e.key)).not.toBeOneOf(["invalid", "age"])
    }
  })

  it.prop("evicts for size in LRU order: every size eviction is older than every kept unpinned entry", [scenario], ([s]) => {
    const { kept, pinned, plan } = run(s)
    const bySize = plan.filter((p) => p.reason === "size").map((p) => p.entry)
    const keptUnpinned = kept.filter((e) => !pinned.has(e.key))
    for (const gone of bySize) for (const stay of keptUnpinned) expect(older(gone, stay)).toBe(true)
  })

  it.prop("evicts per video in LRU order within the video", [scenario], ([s]) => {
    const { kept, pinned, plan } = run(s)
    for (const gone of plan.filter((p) => p.reason === "per-video").map((p) => p.entry)) {
      for (const stay of kept) {
        if (stay.videoId === gone.videoId && !pinned.has(stay.key)) expect(older(gone, stay)).toBe(true)
      }
    }
  })

  it.prop("is deterministic: the input order does not change the plan", [scenario], ([s]) => {
    const { entries, pinned, plan } = run(s)
    const limits = { maxBytes: s.maxBytes, maxAge: s.maxAge, maxEntriesPerVideo: s.maxEntriesPerVideo }
    const reversed = Policy.planEviction(entries.slice().reverse(), limits, s.now, pinned)
    expect(reversed.map((p) => [p.entry.key, p.reason])).toEqual(plan.map((p) => [p.entry.key, p.reason]))
  })

  it("groups evictions by rule: invalid, age, per-video, size", () => {
    const entries = toEntries([
      { video: 0, createdAt: 100, accessedDelta: 0, sizeBytes: 10, validation: "valid" }, // size
      { video: 0, createdAt: 0, accessedDelta: 0, sizeBytes: 10, validation: "valid" }, // age
      { video: 1, createdAt: 100, accessedDelta: 5, sizeBytes: 10, validation: "invalid" }, // invalid
      { video: 1, createdAt: 100, accessedDelta: 1, sizeBytes: 10, validation: "valid" }, // per-video
      { video: 1, createdAt: 100, accessedDelta: 2, sizeBytes: 10, validation: "valid" }, // kept
      { video: 1, createdAt: 100, accessedDelta: 3, sizeBytes: 10, validation: "valid" } // kept
    ])
    const plan = Policy.planEviction(entries, { maxBytes: 20, maxAge: 50, maxEntriesPerVideo: 2 }, 120, new Set())
    expect(plan.map((p) => [p.entry.rallyIndex, p.reason])).toEqual([
      [2, "invalid"],
      [1, "age"],
      [3, "per-video"],
      [0, "size"]
    ])
  })

  it("keeps an entry whose age is exactly maxAge and expires it one millisecond later", () => {
    const [entry] = toEntries([{ video: 0, createdAt: 1_000, accessedDelta: 0, sizeBytes: 1, validation: "valid" }])
    const limits = { maxBytes: 100, maxAge: Duration.seconds(10), maxEntriesPerVideo: 10 }
    expect(Policy.planEviction([entry!], limits, 11_000, new Set())).toEqual([])
    expect(Policy.planEviction([entry!], limits, 11_001, new Set()).map((p) => p.reason)).toEqual(["age"])
    expect(Policy.planEviction([entry!], { ...limits, maxAge: "10 seconds" }, 11_001, new Set()).length).toBe(1)
  })
})

const ralliesOf = (n: number) => Array.from({ length: n }, (_, index) => new Rally({ index, start: index * 10, end: index * 10 + 5 }))

const preloadInput = fc.integer({ min: 1, max: 40 }).chain((n) =>
  fc.record({
    n: fc.constant(n),
    current: fc.integer({ min: 0, max: n - 1 }),
    ahead: fc.integer({ min: 0, max: 6 })
  })
)

describe("Policy.planPreload", () => {
  it.prop("plans every rally once: current high, the next `ahead` normal, the rest low", [preloadInput], ([p]) => {
    const plan = Policy.planPreload({ rallies: ralliesOf(p.n), current: p.current, ahead: p.ahead })
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
    const plan = Policy.planPreload({ rallies: ralliesOf(p.n), current: p.current, ahead: p.ahead })
    const lows = plan.filter((x) => x.priority === "low").map((x) => x.index)
    const after = lows.filter((i) => i > p.current)
    const before = lows.filter((i) => i < p.current)
    expect(lows).toEqual([...after, ...before])
    expect(after).toEqual(after.slice().sort((a, b) => a - b))
    expect(before).toEqual(before.slice().sort((a, b) => b - a))
  })

  it.prop("planWindow plans only the current rally and the next n", [preloadInput, fc.integer({ min: 0, max: 5 })], ([p, n]) => {
    const plan = Policy.planWindow(n)({ rallies: ralliesOf(p.n), current: p.current, ahead: p.ahead })
    const expected = [{ index: p.current, priority: "high" }]
    for (let i = p.current + 1; i <= Math.min(p.n - 1, p.current + n); i++) expected.push({ index: i, priority: "normal" })
    expect(plan).toEqual(expected)
  })

  it("plans nothing for an empty list and clamps an out-of-range current", () => {
    expect(Policy.planPreload({ rallies: [], current: 0, ahead: 2 })).toEqual([])
    expect(Policy.planPreload({ rallies: ralliesOf(3), current: 7, ahead: 2 })[0]).toEqual({ index: 2, priority: "high" })
    expect(Policy.planWindow()({ rallies: ralliesOf(5), current: 0, ahead: 1 })).toEqual([
      { index: 0, priority: "high" },
      { index: 1, priority: "normal" }
    ])
  })
})

describe("Policy.validateRallies", () => {
  const limits = { maxRallyLength: 60, duration: 100 }
  const good = { start: 1, end: 5 }

  const failure = (input: ReadonlyArray<{ start: number; end: number }>, options = limits): InvalidRally => {
    const exit = Effect.runSyncExit(Policy.validateRallies(input, options))
    if (Exit.isSuccess(exit)) throw new Error("expected a failure")
    const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    if (error === undefined) throw new Error("expected a typed failure")
    return error
  }

  it.effect("accepts valid rallies and numbers them", () =>
    Effect.gen(function*() {
      const rallies = yield* Policy.validateRallies([good, { start: 10, end: 70 }, { start: 90, end: 100.04 }], limits)
      expect(rallies.map((r) => [r.index, r.start, r.end])).toEqual([[0, 1, 5], [1, 10, 70], [2, 90, 100.04]])
      expect(rallies[0]).toBeInstanceOf(Rally)
      // Without a known duration, only the other rules apply.
      const unbounded = yield* Policy.validateRallies([{ start: 1000, end: 1010 }], { maxRallyLength: 60 })
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
