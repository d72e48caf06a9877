import { SqlClient } from "@effect/sql"
import { Domain, type RallyMessages } from "@rallycache/core"
import { Effect, Option, Schema } from "effect"

/**
 * What `OpenVideo` was asked, kept in Postgres so that the runner that takes
 * a video's shard over (after a crash or a rebalance) can open the video in
 * its own engine before it answers the first message.
 */
const Stored = Schema.parseJson(
  Schema.Struct({
    path: Schema.String,
    rallies: Schema.Array(Schema.Struct({ start: Schema.Number, end: Schema.Number })),
    mode: Schema.optional(Domain.ExportMode)
  })
)

export type Stored = typeof Stored.Type

const table = "rallycache_cluster_videos"

/** Creates the table; run under the start-up lock (see `startupLock.ts`). */
export const migrate = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS ${sql(table)} (
    video_id TEXT PRIMARY KEY,
    input TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT NOW()
  )`
})

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const encode = Schema.encodeSync(Stored)
  const decode = Schema.decodeUnknownOption(Stored)

  const save = (videoId: string, input: RallyMessages.OpenVideo) =>
    sql`INSERT INTO ${sql(table)} (video_id, input) VALUES (${videoId}, ${
      encode({ path: input.path, rallies: input.rallies, ...(input.mode === undefined ? {} : { mode: input.mode }) })
    })
      ON CONFLICT (video_id) DO UPDATE SET input = EXCLUDED.input, updated_at = NOW()`.pipe(Effect.asVoid)

  const load = (videoId: string) =>
    sql<{ input: string }>`SELECT input FROM ${sql(table)} WHERE video_id = ${videoId}`.pipe(
      Effect.map((rows) => Option.flatMap(Option.fromNullable(rows[0]), (row) => decode(row.input)))
    )

  const remove = (videoId: string) => sql`DELETE FROM ${sql(table)} WHERE video_id = ${videoId}`.pipe(Effect.asVoid)

  return { save, load, remove } as const
})

export type Registry = Effect.Effect.Success<typeof make>
