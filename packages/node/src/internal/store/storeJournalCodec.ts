/**
 * The index journal's records and their JSON encoding (see `storeJournal.ts`
 * for the format table): decoding trusts nothing a line holds, since a
 * journal can be torn by a crash or written by another version, and keys
 * become file names.
 *
 * @internal
 */
import { Domain } from "@rallycache/core"
import { keyPattern } from "./storeLayout.js"

type CacheEntry = Domain.CacheEntry
type CacheKey = Domain.CacheKey
type ValidationStatus = Domain.ValidationStatus
const CacheEntry = Domain.CacheEntry

/** Version of the journal format, written in each journal's header line. */
export const formatVersion = 1

export type JournalRecord =
  | { readonly o: "h"; readonly v: number }
  | { readonly o: "p"; readonly e: CacheEntry }
  | { readonly o: "d"; readonly k: CacheKey }
  | { readonly o: "t"; readonly k: CacheKey; readonly t: number }
  | { readonly o: "v"; readonly k: CacheKey; readonly s: ValidationStatus; readonly t: number }


/** A cache key as found in a record, or `undefined`: keys become file names, so nothing else passes. */
export const asKey = (value: unknown): CacheKey | undefined =>
  typeof value === "string" && keyPattern.test(value) ? value as CacheKey : undefined

const isTime = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value) && value >= 0
const isStatus = (value: unknown): value is ValidationStatus =>
  Domain.validationStatuses.includes(value as ValidationStatus)

/**
 * Builds a `CacheEntry` from fields already checked, without the Schema
 * class constructor. The constructor (even with validation disabled) merges
 * defaults field by field and costs 2-4x more, which shows at start-up
 * (every entry of the index). A plain constructor function whose
 * `prototype` is `CacheEntry.prototype` gives the same object (that
 * prototype, the fields as own properties, as `Data.Class` builds it; a
 * test checks it is `Equal` to a constructed one), and V8 lays its 13
 * fields out inside the object (`Object.create` plus assignments would put
 * most of them in a separate, growing properties array).
 */
const LoadedEntry = function(this: Record<string, unknown>, fields: CacheEntry) {
  this["id"] = fields.id
  this["key"] = fields.key
  this["videoId"] = fields.videoId
  this["rallyIndex"] = fields.rallyIndex
  this["mode"] = fields.mode
  this["clipStart"] = fields.clipStart
  this["clipEnd"] = fields.clipEnd
  this["createdAt"] = fields.createdAt
  this["accessedAt"] = fields.accessedAt
  this["sizeBytes"] = fields.sizeBytes
  this["priority"] = fields.priority
  this["validation"] = fields.validation
  this["validatedAt"] = fields.validatedAt
  // Stream-copy clips with a hidden lead-in only (exact mode), or a container other than mp4.
  if (fields.firstFrame !== undefined) this["firstFrame"] = fields.firstFrame
  if (fields.leadIn !== undefined) this["leadIn"] = fields.leadIn
  if (fields.container !== undefined) this["container"] = fields.container
} as unknown as { new(fields: CacheEntry): CacheEntry; prototype: unknown }
LoadedEntry.prototype = CacheEntry.prototype

/** A `CacheEntry` from fields already checked (see `LoadedEntry`). */
export const makeEntry = (fields: CacheEntry): CacheEntry => new LoadedEntry(fields)

/**
 * The entry in a put record, checked field by field. Cheaper than a Schema
 * decode by two orders of magnitude (a start-up reads every entry), and as
 * strict about what matters: the key (it becomes a file name) and the types.
 */
const decodeEntry = (value: unknown): CacheEntry | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const e = value as Record<string, unknown>
  if (
    typeof e["id"] === "string" && asKey(e["key"]) !== undefined &&
    typeof e["videoId"] === "string" && e["videoId"].length > 0 &&
    Number.isInteger(e["rallyIndex"]) && (e["rallyIndex"] as number) >= 0 &&
    Domain.exportModes.includes(e["mode"] as Domain.ExportMode) &&
    (e["firstFrame"] === undefined || typeof e["firstFrame"] === "number") &&
    (e["leadIn"] === undefined || typeof e["leadIn"] === "number") &&
    (e["container"] === undefined || Domain.containers.includes(e["container"] as Domain.Container)) &&
    typeof e["clipStart"] === "number" && typeof e["clipEnd"] === "number" &&
    isTime(e["createdAt"]) && isTime(e["accessedAt"]) &&
    Number.isInteger(e["sizeBytes"]) && (e["sizeBytes"] as number) >= 0 &&
    Domain.priorities.includes(e["priority"] as Domain.Priority) &&
    isStatus(e["validation"]) && (e["validatedAt"] === null || isTime(e["validatedAt"]))
  ) {
    return makeEntry(e as unknown as CacheEntry)
  }
  return undefined
}

/** One line of the journal, or `undefined` for a torn or foreign line. */
export const decodeLine = (line: string): JournalRecord | undefined => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    return undefined
  }
  if (typeof value !== "object" || value === null) return undefined
  const r = value as Record<string, unknown>
  switch (r["o"]) {
    case "p": {
      const e = decodeEntry(r["e"])
      return e === undefined ? undefined : { o: "p", e }
    }
    case "d": {
      const k = asKey(r["k"])
      return k === undefined ? undefined : { o: "d", k }
    }
    case "t": {
      const k = asKey(r["k"])
      return k === undefined || !isTime(r["t"]) ? undefined : { o: "t", k, t: r["t"] }
    }
    case "v": {
      const k = asKey(r["k"])
      return k === undefined || !isStatus(r["s"]) || !isTime(r["t"]) ? undefined : { o: "v", k, s: r["s"], t: r["t"] }
    }
    case "h":
      return typeof r["v"] === "number" ? { o: "h", v: r["v"] } : undefined
    default:
      return undefined
  }
}

const encodeEntry = (e: CacheEntry) => ({
  id: e.id,
  key: e.key,
  videoId: e.videoId,
  rallyIndex: e.rallyIndex,
  mode: e.mode,
  clipStart: e.clipStart,
  clipEnd: e.clipEnd,
  createdAt: e.createdAt,
  accessedAt: e.accessedAt,
  sizeBytes: e.sizeBytes,
  priority: e.priority,
  validation: e.validation,
  validatedAt: e.validatedAt,
  ...(e.firstFrame === undefined ? {} : { firstFrame: e.firstFrame }),
  ...(e.leadIn === undefined ? {} : { leadIn: e.leadIn }),
  ...(e.container === undefined ? {} : { container: e.container })
})

export const encodeRecord = (record: JournalRecord): string =>
  JSON.stringify(record.o === "p" ? { o: "p", e: encodeEntry(record.e) } : record)

type Mutable<A> = { -readonly [K in keyof A]: A[K] }

/**
 * A copy of `entry` with its access time or validation replaced (entries are
 * immutable: callers may hold them). One object, no intermediate spreads: a
 * journal replays up to `compactFactor` touches per entry at start-up.
 */
export const withEntry = (
  entry: CacheEntry,
  patch: Partial<Pick<CacheEntry, "accessedAt" | "validation" | "validatedAt">>
): CacheEntry => {
  const next = new LoadedEntry(entry) as Mutable<CacheEntry>
  if (patch.accessedAt !== undefined) next.accessedAt = patch.accessedAt
  if (patch.validation !== undefined) next.validation = patch.validation
  if (patch.validatedAt !== undefined) next.validatedAt = patch.validatedAt
  return next
}
