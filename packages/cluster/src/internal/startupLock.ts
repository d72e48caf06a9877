import { SqlClient } from "@effect/sql"
import type { SqlError } from "@effect/sql/SqlError"
import { Effect, Layer } from "effect"

/**
 * The key of the session-level advisory lock every node of a cluster takes
 * while it creates its tables (a 64-bit number no other program on the
 * database is expected to use).
 */
const lockKey = "7420598166234101823"

/**
 * Builds `layer` while holding a Postgres advisory lock, so that nodes
 * starting at the same moment on an empty database create their tables one
 * after the other. `CREATE TABLE IF NOT EXISTS` is not safe under
 * concurrency: the loser of the race dies with a duplicate `pg_type` row,
 * and as a defect, which no layer retry sees.
 *
 * The lock is held on one reserved connection for the build only; the
 * layer's resources live as long as the returned layer.
 */
export const serialized = <ROut, E, RIn>(
  layer: Layer.Layer<ROut, E, RIn>
): Layer.Layer<ROut, E | SqlError, RIn | SqlClient.SqlClient> =>
  Layer.scopedContext(Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const outer = yield* Effect.scope
    return yield* Effect.scoped(Effect.gen(function*() {
      const connection = yield* sql.reserve
      yield* Effect.acquireRelease(
        connection.executeRaw(`SELECT pg_advisory_lock(${lockKey})`, []),
        // The connection goes back to the pool, where a session lock would outlive the build.
        () => Effect.ignore(connection.executeRaw(`SELECT pg_advisory_unlock(${lockKey})`, []))
      )
      return yield* Layer.buildWithScope(layer, outer)
    }))
  }))
