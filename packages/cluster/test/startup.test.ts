/**
 * Runners started at the same moment on an empty database all come up: the
 * cluster's tables are created under one advisory lock instead of racing on
 * `CREATE TABLE IF NOT EXISTS` (whose loser dies with a duplicate `pg_type`
 * row). Three runner layers in this process over a real Postgres, each with
 * its own cache folder, on a new empty database per try.
 */
import { describe, expect, it } from "@effect/vitest"
import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { ClusterRunner } from "@rallycache/cluster"
import { Cause, Effect, Exit, Layer, Logger, LogLevel, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Postgres from "../../../test/support/postgres.js"

const tries = 20

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "rallycache-cluster-startup-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

describe("runner start-up (real Postgres; as root it runs as the postgres user)", () => {
  it.live(`3 runners built together on an empty database all come up, ${tries} tries`, () =>
    Effect.gen(function*() {
      const pg = yield* Postgres.scoped
      const dir = yield* tempDir
      const admin = yield* Layer.build(PgClient.layer({ url: Redacted.make(pg.url) }))
      const sql = yield* Effect.provide(SqlClient.SqlClient, admin)
      const failures: Array<string> = []
      for (let attempt = 0; attempt < tries; attempt++) {
        const database = `startup_${attempt}`
        yield* sql`CREATE DATABASE ${sql(database)}`
        const databaseUrl = pg.url.replace(/\/postgres$/, `/${database}`)
        const ports = yield* Effect.promise(() => Promise.all([0, 1, 2].map(() => Postgres.freePort())))
        const exits = yield* Effect.forEach(
          ports,
          (port, runner) =>
            Layer.build(
              ClusterRunner.layer({ databaseUrl, port, cache: { cacheDir: Path.join(dir, `${attempt}-${runner}`) } })
            ).pipe(Effect.scoped, Effect.exit),
          { concurrency: "unbounded" }
        )
        for (const exit of exits) {
          if (Exit.isFailure(exit)) failures.push(`try ${attempt}: ${Cause.pretty(exit.cause).split("\n")[0]}`)
        }
      }
      expect(failures).toEqual([])
    }).pipe(Effect.scoped, Effect.provide(Logger.minimumLogLevel(LogLevel.Warning))), 170_000)
})
