/**
 * Reading a test's bucket from outside the runners: its objects (key, ETag,
 * bytes) through `@aws-sdk/client-s3`, an object put by hand (what a runner
 * that died between its upload and its row leaves behind), and the store's
 * orphan sweep run once, as a runner runs it, with next to no grace.
 */
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3"
import { PgClient } from "@effect/sql-pg"
import { CacheEvent, Config, Metrics } from "@rallycache/core"
import { S3CacheStore } from "@rallycache/s3"
import { Effect, Layer, Redacted } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { clientOf, type S3Server } from "./s3.js"

const withClient = async <A>(s3: S3Server, use: (client: S3Client) => Promise<A>): Promise<A> => {
  const client = clientOf(s3)
  try {
    return await use(client)
  } finally {
    client.destroy()
  }
}

const unquote = (etag: string | undefined) => (etag ?? "").replace(/"/g, "")

/** Every object under `prefix`, with the ETag and size the listing gives. */
export const listObjects = (s3: S3Server, prefix: string) =>
  withClient(s3, async (client) => {
    const out: Array<{ key: string; etag: string; bytes: number }> = []
    let token: string | undefined
    do {
      const page = await client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: prefix, ContinuationToken: token }))
      for (const object of page.Contents ?? []) {
        out.push({ key: object.Key!, etag: unquote(object.ETag), bytes: object.Size ?? -1 })
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined
    } while (token !== undefined)
    return out
  })

/** The bytes of `key` and the ETag the server answers them with. */
export const getObject = (s3: S3Server, key: string) =>
  withClient(s3, async (client) => {
    const response = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }))
    return { etag: unquote(response.ETag), body: Buffer.from(await response.Body!.transformToByteArray()) }
  })

export const putObject = (s3: S3Server, key: string, body: Buffer) =>
  withClient(s3, (client) => client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body })))

/**
 * Open the store on the cluster's bucket and tables (default names) with no
 * orphan grace, run its sweep once and close it: what a runner's periodic
 * sweep does, now. Run it when no runner is between an upload and its row.
 */
export const sweepOnce = (s3: S3Server, databaseUrl: string): Promise<S3CacheStore.SweepReport> => {
  const cacheDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "rallycache-sweep-"))
  const services = Layer.mergeAll(
    PgClient.layer({ url: Redacted.make(databaseUrl), maxConnections: 2 }),
    Config.CacheConfig.layer({ runnerId: "sweeper" }),
    CacheEvent.CacheEvents.layer(),
    Metrics.layer
  )
  return Effect.runPromise(
    Effect.gen(function*() {
      const store = yield* S3CacheStore.make({
        bucket: s3.bucket,
        cacheDir,
        endpoint: s3.endpoint,
        region: s3.region,
        forcePathStyle: true,
        credentials: s3.credentials,
        orphanGrace: "1 millis",
        // Only the sweep run here, none from the schedule.
        sweepInterval: "1 hour"
      })
      return yield* store.sweep
    }).pipe(Effect.scoped, Effect.provide(services), Effect.ensuring(Effect.sync(() => Fs.rmSync(cacheDir, { recursive: true, force: true }))))
  )
}
