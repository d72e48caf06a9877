/**
 * The Postgres side of the object store: the clip rows (the index and the
 * commit point), the per-key export leases, and the one statement that
 * picks eviction victims across the cluster.
 *
 * Times of entries (`created_at`, `accessed_at`) are the runners' clocks in
 * epoch milliseconds, as every store records them; lease expiries are the
 * database's `now()`, so runners whose clocks disagree still agree on who
 * holds a key.
 *
 * @internal
 */
import { Domain } from "@rallycache/core"
import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Option } from "effect"

type EvictionReason = Domain.EvictionReason

const ruleOrder: ReadonlyArray<EvictionReason> = ["invalid", "age", "per-video", "size"]

/** What the index knows of one clip: its entry and where its object is. */
export interface ClipRow {
  readonly entry: Domain.CacheEntry
  readonly objectKey: string
  readonly etag: string
  /** How `etag` can be recomputed from the bytes: `md5`, `parts:<partSize>`, or `opaque` (size only). */
  readonly etagKind: string
}

interface RawRow {
  readonly key: string
  readonly id: string
  readonly video_id: string
  readonly rally_index: number
  readonly mode: string
  readonly clip_start: number
  readonly clip_end: number
  readonly first_frame: number | null
  readonly lead_in: number | null
  readonly container: string | null
  readonly bytes: number
  readonly created_at: number
  readonly accessed_at: number
  readonly priority: string
  readonly validation: string
  readonly validated_at: number | null
  readonly object_key: string
  readonly etag: string
  readonly etag_kind: string
}

const toRow = (raw: RawRow): ClipRow => ({
  entry: new Domain.CacheEntry({
    id: raw.id,
    key: raw.key as Domain.CacheKey,
    videoId: raw.video_id as Domain.VideoId,
    rallyIndex: raw.rally_index,
    mode: raw.mode as Domain.ExportMode,
    clipStart: raw.clip_start,
    clipEnd: raw.clip_end,
    ...(raw.first_frame === null ? {} : { firstFrame: raw.first_frame }),
    ...(raw.lead_in === null ? {} : { leadIn: raw.lead_in }),
    ...(raw.container === null ? {} : { container: raw.container as Domain.Container }),
    createdAt: raw.created_at,
    accessedAt: raw.accessed_at,
    sizeBytes: raw.bytes,
    priority: raw.priority as Domain.Priority,
    validation: raw.validation as Domain.ValidationStatus,
    validatedAt: raw.validated_at
  }),
  objectKey: raw.object_key,
  etag: raw.etag,
  etagKind: raw.etag_kind
})

/** The index on one SqlClient, its tables named `<table>_clips` and `<table>_leases`. */
export const make = (table: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const clips = sql(`${table}_clips`)
    const leases = sql(`${table}_leases`)
    const columns = sql.literal(
      `key, id::text AS id, video_id, rally_index, mode, clip_start, clip_end, first_frame, lead_in, container,
       bytes::float8 AS bytes, created_at::float8 AS created_at, accessed_at::float8 AS accessed_at, priority,
       validation, validated_at::float8 AS validated_at, object_key, etag, etag_kind`
    )

    // Several runners start at once on an empty database: `CREATE ... IF NOT
    // EXISTS` alone races on the catalog (duplicate pg_type rows), so the DDL
    // runs in a transaction under a transaction-scoped advisory lock.
    const migrate = sql.withTransaction(Effect.gen(function*() {
      yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`rallycache-s3:${table}`}))`
      yield* sql`CREATE TABLE IF NOT EXISTS ${clips} (
        key text PRIMARY KEY,
        id uuid NOT NULL,
        video_id text NOT NULL,
        rally_index integer NOT NULL,
        mode text NOT NULL,
        clip_start double precision NOT NULL,
        clip_end double precision NOT NULL,
        first_frame double precision,
        lead_in double precision,
        container text,
        bytes bigint NOT NULL,
        created_at bigint NOT NULL,
        accessed_at bigint NOT NULL,
        priority text NOT NULL,
        validation text NOT NULL DEFAULT 'unchecked',
        validated_at bigint,
        object_key text NOT NULL UNIQUE,
        etag text NOT NULL,
        etag_kind text NOT NULL,
        runner text NOT NULL
      )`
      yield* sql`CREATE INDEX IF NOT EXISTS ${sql(`${table}_clips_video`)} ON ${clips} (video_id)`
      yield* sql`CREATE TABLE IF NOT EXISTS ${leases} (
        key text PRIMARY KEY,
        owner text NOT NULL,
        acquired_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL
      )`
    }))

    const find = (key: string): Effect.Effect<Option.Option<ClipRow>, SqlError> =>
      Effect.map(
        sql<RawRow>`SELECT ${columns} FROM ${clips} WHERE key = ${key}`,
        (rows) => Option.map(Option.fromNullable(rows[0]), toRow)
      )

    const all: Effect.Effect<ReadonlyArray<ClipRow>, SqlError> = Effect.map(
      sql<RawRow>`SELECT ${columns} FROM ${clips}`,
      (rows) => rows.map(toRow)
    )

    /** Of `keys`, the ones that have a row. */
    const existing = (keys: ReadonlyArray<string>): Effect.Effect<ReadonlySet<string>, SqlError> =>
      keys.length === 0
        ? Effect.succeed(new Set())
        : Effect.map(sql<{ key: string }>`SELECT key FROM ${clips} WHERE ${sql.in("key", keys)}`, (rows) =>
          new Set(rows.map((row) => row.key)))

    /** Of `objectKeys`, the ones a row points at. */
    const referenced = (objectKeys: ReadonlyArray<string>): Effect.Effect<ReadonlySet<string>, SqlError> =>
      objectKeys.length === 0
        ? Effect.succeed(new Set())
        : Effect.map(
          sql<{ object_key: string }>`SELECT object_key FROM ${clips} WHERE ${sql.in("object_key", objectKeys)}`,
          (rows) => new Set(rows.map((row) => row.object_key))
        )

    const usage = Effect.map(
      sql<{ bytes: number; entries: number }>`SELECT coalesce(sum(bytes), 0)::float8 AS bytes, count(*)::int AS entries FROM ${clips}`,
      (rows) => ({ bytes: rows[0]?.bytes ?? 0, entries: rows[0]?.entries ?? 0 })
    )

    /**
     * The commit point: insert the row and give the lease back, in one
     * transaction. `false` when another runner committed the key first (its
     * row stays; the caller deletes its own object).
     */
    const commit = (
      row: ClipRow,
      owner: string
    ): Effect.Effect<boolean, SqlError> =>
      sql.withTransaction(Effect.gen(function*() {
        const e = row.entry
        const inserted = yield* sql<{ key: string }>`INSERT INTO ${clips} (key, id, video_id, rally_index, mode,
          clip_start, clip_end, first_frame, lead_in, container, bytes, created_at, accessed_at, priority,
          validation, validated_at, object_key, etag, etag_kind, runner)
          VALUES (${e.key}, ${e.id}, ${e.videoId}, ${e.rallyIndex}, ${e.mode}, ${e.clipStart}, ${e.clipEnd},
          ${e.firstFrame ?? null}, ${e.leadIn ?? null}, ${e.container ?? null}, ${e.sizeBytes}, ${e.createdAt},
          ${e.accessedAt}, ${e.priority}, ${e.validation}, ${e.validatedAt}, ${row.objectKey}, ${row.etag},
          ${row.etagKind}, ${owner})
          ON CONFLICT (key) DO NOTHING
          RETURNING key`
        yield* sql`DELETE FROM ${leases} WHERE key = ${e.key} AND owner = ${owner}`
        return inserted.length > 0
      }))

    /** Take the lease of `key` if it is free, expired, or already ours. */
    const acquire = (key: string, owner: string, ttlMillis: number): Effect.Effect<boolean, SqlError> =>
      Effect.map(
        sql<{ owner: string }>`INSERT INTO ${leases} (key, owner, acquired_at, expires_at)
          VALUES (${key}, ${owner}, now(), now() + ${ttlMillis} * interval '1 millisecond')
          ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, acquired_at = EXCLUDED.acquired_at,
            expires_at = EXCLUDED.expires_at
          WHERE ${leases}.expires_at < now() OR ${leases}.owner = EXCLUDED.owner
          RETURNING owner`,
        (rows) => rows.length > 0
      )

    /** Push the expiry of our lease on; `false` when it is no longer ours. */
    const renew = (key: string, owner: string, ttlMillis: number): Effect.Effect<boolean, SqlError> =>
      Effect.map(
        sql<{ key: string }>`UPDATE ${leases} SET expires_at = now() + ${ttlMillis} * interval '1 millisecond'
          WHERE key = ${key} AND owner = ${owner} RETURNING key`,
        (rows) => rows.length > 0
      )

    const release = (key: string, owner: string): Effect.Effect<void, SqlError> =>
      Effect.asVoid(sql`DELETE FROM ${leases} WHERE key = ${key} AND owner = ${owner}`)

    /** Lease rows of owners that died: nobody renews them. */
    const dropExpiredLeases = Effect.asVoid(sql`DELETE FROM ${leases} WHERE expires_at < now() - interval '1 minute'`)

    /** Remove the row of `key` if it still points at `objectKey`; the row removed, if any. */
    const remove = (key: string, objectKey?: string): Effect.Effect<Option.Option<ClipRow>, SqlError> =>
      Effect.map(
        objectKey === undefined
          ? sql<RawRow>`DELETE FROM ${clips} WHERE key = ${key} RETURNING ${columns}`
          : sql<RawRow>`DELETE FROM ${clips} WHERE key = ${key} AND object_key = ${objectKey} RETURNING ${columns}`,
        (rows) => Option.map(Option.fromNullable(rows[0]), toRow)
      )

    const touch = (keys: ReadonlyArray<string>, now: number): Effect.Effect<void, SqlError> =>
      keys.length === 0
        ? Effect.void
        : Effect.asVoid(sql`UPDATE ${clips} SET accessed_at = GREATEST(accessed_at, ${now}) WHERE ${sql.in("key", keys)}`)

    const markValidated = (key: string, status: Domain.ValidationStatus, now: number) =>
      Effect.asVoid(sql`UPDATE ${clips} SET validation = ${status}, validated_at = ${now} WHERE key = ${key}`)

    /**
     * The cluster's limits in one statement: rows that are invalid, older
     * than `maxAgeMillis`, beyond `maxEntriesPerVideo` in their video, or
     * beyond `maxBytes` in all (least recently used first, as
     * `Eviction.planEviction` orders them), are deleted and returned with
     * their reason. `pinned` keys are never chosen, but count in the totals.
     */
    const evict = (
      limits: { readonly maxBytes: number; readonly maxAgeMillis: number; readonly maxEntriesPerVideo: number },
      now: number,
      pinned: ReadonlyArray<string>
    ): Effect.Effect<ReadonlyArray<{ readonly row: ClipRow; readonly reason: EvictionReason }>, SqlError> => {
      const isPinned = pinned.length === 0 ? sql.literal("false") : sql.in("key", pinned)
      return Effect.map(
        sql<RawRow & { reason: EvictionReason }>`WITH base AS (
            SELECT key, video_id, bytes, accessed_at, ${isPinned} AS pinned,
              validation = 'invalid' AS bad, ${now} - created_at > ${limits.maxAgeMillis} AS old
            FROM ${clips}
          ), alive AS (
            SELECT *, row_number() OVER (PARTITION BY video_id ORDER BY accessed_at DESC, key DESC) AS rank_in_video
            FROM base WHERE pinned OR NOT (bad OR old)
          ), fitting AS (
            SELECT *, sum(bytes) OVER (ORDER BY accessed_at DESC, key DESC ROWS UNBOUNDED PRECEDING) AS running
            FROM alive WHERE pinned OR rank_in_video <= ${limits.maxEntriesPerVideo}
          ), victims AS (
            SELECT key, 'invalid' AS reason FROM base WHERE NOT pinned AND bad
            UNION ALL SELECT key, 'age' FROM base WHERE NOT pinned AND NOT bad AND old
            UNION ALL SELECT key, 'per-video' FROM alive WHERE NOT pinned AND rank_in_video > ${limits.maxEntriesPerVideo}
            UNION ALL SELECT key, 'size' FROM fitting WHERE NOT pinned AND running > ${limits.maxBytes}
          )
          DELETE FROM ${clips} AS c USING victims v WHERE c.key = v.key
          RETURNING c.key, c.id::text AS id, c.video_id, c.rally_index, c.mode, c.clip_start, c.clip_end,
            c.first_frame, c.lead_in, c.container, c.bytes::float8 AS bytes, c.created_at::float8 AS created_at,
            c.accessed_at::float8 AS accessed_at, c.priority, c.validation, c.validated_at::float8 AS validated_at,
            c.object_key, c.etag, c.etag_kind, v.reason`,
        // Grouped by rule, least recently used first in each, as `Eviction.planEviction` lists them.
        (rows) =>
          rows.map((raw) => ({ row: toRow(raw), reason: raw.reason })).sort((x, y) =>
            ruleOrder.indexOf(x.reason) - ruleOrder.indexOf(y.reason) ||
            x.row.entry.accessedAt - y.row.entry.accessedAt ||
            (x.row.entry.key < y.row.entry.key ? -1 : 1)
          )
      )
    }

    return {
      migrate,
      find,
      all,
      existing,
      referenced,
      usage,
      commit,
      acquire,
      renew,
      release,
      dropExpiredLeases,
      remove,
      touch,
      markValidated,
      evict
    }
  })

/** @internal */
export type SqlIndex = Effect.Effect.Success<ReturnType<typeof make>>
