import { describe, expect, it } from "@effect/vitest"
import { Duration, FastCheck as fc } from "effect"
import { CacheEntry } from "../src/Domain.js"
import type { CacheKey, ValidationStatus, VideoId } from "../src/Domain.js"
import * as Eviction from "../src/Eviction.js"
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
  const plan = Eviction.planEviction(entries, limits, s.now, pinned)
  const evicted = new Set(plan.map((p) => p.entry.key))
  const kept = entries.filter((e) => !evicted.has(e.key))
  return { entries, pinned, plan, evicted, kept }
}

const older = (a: CacheEntry, b: CacheEntry) => a.accessedAt < b.accessedAt || (a.accessedAt === b.accessedAt && a.key < b.key)

describe("Eviction.planEviction", () => {
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
    const reversed = Eviction.planEviction(entries.slice().reverse(), limits, s.now, pinned)
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
    const plan = Eviction.planEviction(entries, { maxBytes: 20, maxAge: 50, maxEntriesPerVideo: 2 }, 120, new Set())
    expect(plan.map((p) => [p.entry.rallyIndex, p.reason])).toEqual([
      [2, "invalid"],
      [1, "age"],
      [3, "per-video"],
      [0, "size"]
    ])
  })

  it("measures age from creation, not from the last access: a clip used a moment ago still expires", () => {
    // Created at 1 s, last used at 10.5 s; maxAge 10 s; now 11.001 s: 10.001 s old, used 0.501 s ago.
    const [entry] = toEntries([{ video: 0, createdAt: 1_000, accessedDelta: 9_500, sizeBytes: 1, validation: "valid" }])
    const limits = { maxBytes: 100, maxAge: Duration.seconds(10), maxEntriesPerVideo: 10 }
    expect(Eviction.isExpired(entry!, 10_000, 11_001)).toBe(true)
    expect(Eviction.planEviction([entry!], limits, 11_001, new Set()).map((p) => p.reason)).toEqual(["age"])
    // And the other way round: one not used for longer than maxAge, created within it, is kept.
    expect(Eviction.isExpired(entry!, 10_000, 10_999)).toBe(false)
  })

  it("keeps an entry whose age is exactly maxAge and expires it one millisecond later", () => {
    const [entry] = toEntries([{ video: 0, createdAt: 1_000, accessedDelta: 0, sizeBytes: 1, validation: "valid" }])
    const limits = { maxBytes: 100, maxAge: Duration.seconds(10), maxEntriesPerVideo: 10 }
    expect(Eviction.planEviction([entry!], limits, 11_000, new Set())).toEqual([])
    expect(Eviction.planEviction([entry!], limits, 11_001, new Set()).map((p) => p.reason)).toEqual(["age"])
    expect(Eviction.planEviction([entry!], { ...limits, maxAge: "10 seconds" }, 11_001, new Set()).length).toBe(1)
  })
})
