/**
 * Stores for the tests: each one is a "runner" of its own (its own Postgres
 * pool, its own local cache folder, its own S3 client that counts the
 * requests it sends), on the file's one Postgres and one s3rver.
 */
import { ListObjectsV2Command, PutObjectCommand } from "@aws-sdk/client-s3"
import { PgClient } from "@effect/sql-pg"
import { SqlClient } from "@effect/sql"
import { CacheEvent, type CacheStore, Config, type Domain, Metrics } from "@rallycache/core"
import { S3CacheStore } from "@rallycache/s3"
import { Context, Effect, Layer, Redacted, type Scope } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { startServer } from "../../../test/support/postgres.js"
import { clientOf, type S3Server, startS3 } from "../../../test/support/s3.js"

export const tempDir = (name: string) =>
  Effect.acquireRelease(
    Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), `rallycache-s3-${name}-`))),
    (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
  )

export const newKey = (): Domain.CacheKey => Crypto.randomBytes(16).toString("hex") as Domain.CacheKey

/** An S3 client of the test server that counts the requests it sends. */
export const countingClient = (s3: S3Server) => {
  const client = clientOf(s3)
  const counter = { requests: 0 }
  client.middlewareStack.add((next) => (args) => {
    counter.requests++
    return next(args)
  }, { step: "finalizeRequest", name: "countRequests" })
  return { client, counter }
}

export interface Env {
  readonly s3: S3Server
  readonly databaseUrl: string
}

export interface Runner {
  readonly store: S3CacheStore.S3CacheStore
  readonly counter: { requests: number }
  readonly sql: SqlClient.SqlClient
  readonly events: CacheEvent.CacheEventsShape
  readonly cacheDir: string
}

/** One store, as one runner would open it, for the duration of the scope. */
export const runner = (
  env: Env,
  options: Partial<S3CacheStore.Options> & { readonly table: string; readonly prefix: string },
  config: Config.Options = {}
): Effect.Effect<Runner, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const cacheDir = yield* tempDir("local")
    const { client, counter } = countingClient(env.s3)
    yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
    const services = yield* Layer.build(
      Layer.mergeAll(
        PgClient.layer({ url: Redacted.make(env.databaseUrl), maxConnections: 4 }),
        Config.CacheConfig.layer(config),
        CacheEvent.CacheEvents.layer(),
        Metrics.layer
      )
    )
    const store = yield* S3CacheStore.make({ bucket: env.s3.bucket, cacheDir, client, ...options }).pipe(
      Effect.provide(services)
    )
    return {
      store,
      counter,
      cacheDir,
      sql: Context.get(services, SqlClient.SqlClient),
      events: Context.get(services, CacheEvent.CacheEvents)
    }
  })

/** What an exporter does with a reservation: the clip at its final path. */
export const writeClip = (reservation: CacheStore.Reservation, bytes: Buffer) =>
  Effect.sync(() => Fs.writeFileSync(reservation.finalPath, bytes))

export const newEntry = (videoId: string, rallyIndex: number, sizeBytes: number): CacheStore.NewEntry => ({
  videoId: videoId as Domain.VideoId,
  rallyIndex,
  mode: "copy",
  clipStart: rallyIndex * 10,
  clipEnd: rallyIndex * 10 + 5,
  sizeBytes,
  priority: "high"
})

/** Reserve `key` on `runner` (it must be free), write `bytes` and commit. */
export const exportClip = (r: Runner, key: Domain.CacheKey, bytes: Buffer, videoId = "video", rallyIndex = 0) =>
  Effect.gen(function*() {
    const reserved = yield* r.store.reserve(key)
    if (reserved._tag !== "Reserved") return yield* Effect.dieMessage(`${key} was already cached`)
    yield* writeClip(reserved.reservation, bytes)
    return yield* r.store.commit(reserved.reservation, newEntry(videoId, rallyIndex, bytes.length))
  })

/** Every object key in the bucket under `prefix`. */
export const listObjects = (s3: S3Server, prefix: string) =>
  Effect.promise(async () => {
    const { client } = countingClient(s3)
    try {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix }))
      return (page.Contents ?? []).map((object) => object.Key!).sort()
    } finally {
      client.destroy()
    }
  })

export const putObject = (s3: S3Server, key: string, body: Buffer) =>
  Effect.promise(async () => {
    const { client } = countingClient(s3)
    try {
      await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }))
    } finally {
      client.destroy()
    }
  })

/** A real Postgres and a real S3 server for one test file, and how to stop both. */
export const startServers = async (): Promise<{ readonly env: Env; readonly stop: () => Promise<void> }> => {
  const [pg, s3] = await Promise.all([startServer(), startS3()])
  return {
    env: { s3, databaseUrl: pg.url },
    stop: async () => {
      try {
        await s3.stop()
      } finally {
        pg.stop()
      }
    }
  }
}
