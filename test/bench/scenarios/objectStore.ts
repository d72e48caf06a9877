/**
 * Scenario: a cached clip with the object store (`@rallycache/s3`), over a
 * throwaway Postgres and s3rver on loopback, one clip of `clipBytes`:
 *
 * - one process: `lookup` of the clip in a `FileSystemCacheStore` (the
 *   disk store a single process uses): the baseline;
 * - local hot cache: `lookup` on an `S3CacheStore` whose local cache holds
 *   the clip (no request to Postgres or the bucket), against the baseline;
 * - object store: `lookup` on an `S3CacheStore` whose local copy was just
 *   dropped (the row from Postgres, the object from the bucket with its
 *   ETag checked, the local commit), against a bare `GetObject` of the same
 *   object written to a file with the same client library (what any
 *   object-store client pays), and against copying the same bytes from one
 *   local file to another. Alternating which runs first.
 *
 * s3rver runs in this process, so its work is counted in the fetch and the
 * bare GET alike.
 */
import { GetObjectCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3"
import { PgClient } from "@effect/sql-pg"
import { CacheEvent, Config, Metrics } from "@rallycache/core"
import type { Domain } from "@rallycache/core"
import { FileSystemCacheStore } from "@rallycache/node"
import { S3CacheStore } from "@rallycache/s3"
import { Effect, Layer, Option, Redacted } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { pipeline } from "node:stream/promises"
import { join } from "node:path"
import { startServer } from "../../support/postgres.js"
import { startS3 } from "../../support/s3.js"
import type { BenchContext, Scenario } from "../lib/context.js"
import { figure } from "../lib/figure.js"
import type { Figure } from "../lib/figure.js"
import { log } from "../lib/log.js"
import { nowMs, quantile } from "../lib/stats.js"

const clipBytes = 4 * 1024 * 1024

const newEntry = (sizeBytes: number) => ({
  videoId: "bench" as Domain.VideoId,
  rallyIndex: 0,
  mode: "copy" as const,
  clipStart: 0,
  clipEnd: 8,
  sizeBytes,
  priority: "high" as const
})

export const objectStoreScenario: Scenario = {
  name: "objectStore",
  title: "Object store: a cached clip from the local hot cache, from the bucket, and in one process",
  expected: [
    { key: "objectStore.oneProcessHitP50Us", unit: "µs" },
    { key: "objectStore.oneProcessHitP99Us", unit: "µs" },
    { key: "objectStore.hotHitP50Us", unit: "µs" },
    { key: "objectStore.hotHitP99Us", unit: "µs" },
    { key: "objectStore.bucketFetchP50Ms", unit: "ms" },
    { key: "objectStore.bucketFetchP99Ms", unit: "ms" },
    { key: "objectStore.bareGetP50Ms", unit: "ms" }
  ],
  run: async (context: BenchContext): Promise<ReadonlyArray<Figure>> => {
    const hits = context.quick ? 2_000 : 20_000
    const fetches = context.quick ? 10 : 40
    const dir = join(context.tmpRoot, "objectStore")
    Fs.mkdirSync(dir, { recursive: true })
    log(`objectStore: starting Postgres and s3rver`)
    const [pg, s3] = await Promise.all([startServer(), startS3()])
    try {
      return await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
        const deps = yield* Layer.build(Layer.mergeAll(
          Config.CacheConfig.layer(),
          CacheEvent.CacheEvents.layer(),
          Metrics.layer,
          PgClient.layer({ url: Redacted.make(pg.url) })
        ))
        const bytes = Crypto.randomBytes(clipBytes)
        const key = Crypto.randomBytes(16).toString("hex") as Domain.CacheKey

        const disk = yield* FileSystemCacheStore.make({ cacheDir: join(dir, "disk") }).pipe(Effect.provide(deps))
        const s3Options = {
          bucket: s3.bucket,
          endpoint: s3.endpoint,
          region: s3.region,
          forcePathStyle: true,
          credentials: s3.credentials
        }
        const writer = yield* S3CacheStore.make({ ...s3Options, cacheDir: join(dir, "writer") }).pipe(Effect.provide(deps))
        const reader = yield* S3CacheStore.make({ ...s3Options, cacheDir: join(dir, "reader") }).pipe(Effect.provide(deps))
        for (const store of [disk, writer] as const) {
          const reserved = yield* store.reserve(key)
          if (reserved._tag !== "Reserved") return yield* Effect.dieMessage("the bench key was already cached")
          Fs.writeFileSync(reserved.reservation.finalPath, bytes)
          yield* store.commit(reserved.reservation, newEntry(bytes.length))
        }

        const hitSamples = (lookup: (key: Domain.CacheKey) => Effect.Effect<Option.Option<unknown>>) =>
          Effect.gen(function*() {
            const samples: Array<number> = []
            for (let i = 0; i < hits; i++) {
              const t0 = nowMs()
              const found = yield* lookup(key)
              samples.push((nowMs() - t0) * 1000)
              if (Option.isNone(found)) return yield* Effect.dieMessage("a hit missed")
            }
            return samples
          })
        // Warm both, then measure them alternately in halves.
        yield* hitSamples(disk.lookup)
        if (Option.isNone(yield* reader.lookup(key))) return yield* Effect.dieMessage("the reader found no clip")
        const oneProcess: Array<number> = []
        const hot: Array<number> = []
        for (let round = 0; round < 2; round++) {
          const first = round % 2 === 0 ? disk.lookup : reader.lookup
          const second = round % 2 === 0 ? reader.lookup : disk.lookup
          const a = yield* hitSamples(first)
          const b = yield* hitSamples(second)
          ;(round % 2 === 0 ? oneProcess : hot).push(...a)
          ;(round % 2 === 0 ? hot : oneProcess).push(...b)
        }
        // The bucket path: drop the local copy, look it up again (row, GET, checks, local commit).
        const fetchMs: Array<number> = []
        const copyMs: Array<number> = []
        const getMs: Array<number> = []
        const source = disk.pathOf(key)
        const client = new S3Client({
          endpoint: s3.endpoint,
          region: s3.region,
          forcePathStyle: true,
          credentials: s3.credentials,
          responseChecksumValidation: "WHEN_REQUIRED"
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => client.destroy()))
        const listed = yield* Effect.promise(() => client.send(new ListObjectsV2Command({ Bucket: s3.bucket })))
        const objectKey = listed.Contents?.[0]?.Key
        if (objectKey === undefined) return yield* Effect.dieMessage("no object in the bucket")
        const bareGet = (i: number) =>
          Effect.promise(async () => {
            const target = join(dir, `get-${i}.mp4`)
            const t0 = nowMs()
            const response = await client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: objectKey }))
            await pipeline(response.Body as NodeJS.ReadableStream, Fs.createWriteStream(target))
            getMs.push(nowMs() - t0)
            Fs.rmSync(target)
          })
        for (let i = 0; i < fetches; i++) {
          const copy = () => {
            const target = join(dir, `copy-${i}.mp4`)
            const t0 = nowMs()
            Fs.copyFileSync(source, target)
            copyMs.push(nowMs() - t0)
            Fs.rmSync(target)
          }
          const fetch = Effect.gen(function*() {
            yield* reader.local.remove(key, "manual")
            const t0 = nowMs()
            const found = yield* reader.lookup(key)
            fetchMs.push(nowMs() - t0)
            if (Option.isNone(found)) return yield* Effect.dieMessage("the bucket fetch missed")
          })
          if (i % 2 === 0) {
            copy()
            yield* bareGet(i)
            yield* fetch
          } else {
            yield* fetch
            yield* bareGet(i)
            copy()
          }
        }
        const oneP50 = quantile(oneProcess, 0.5)
        const oneP99 = quantile(oneProcess, 0.99)
        const copyP50 = quantile(copyMs, 0.5)
        const copyP99 = quantile(copyMs, 0.99)
        const note = `${clipBytes / 1024 / 1024} MiB clip, s3rver and Postgres on loopback`
        return [
          figure({ key: "objectStore.oneProcessHitP50Us", value: oneP50, unit: "µs", note: "FileSystemCacheStore lookup" }),
          figure({ key: "objectStore.oneProcessHitP99Us", value: oneP99, unit: "µs" }),
          figure({
            key: "objectStore.hotHitP50Us",
            value: quantile(hot, 0.5),
            unit: "µs",
            baseline: oneP50,
            baselineLabel: "one process p50"
          }),
          figure({
            key: "objectStore.hotHitP99Us",
            value: quantile(hot, 0.99),
            unit: "µs",
            baseline: oneP99,
            baselineLabel: "one process p99"
          }),
          figure({
            key: "objectStore.bucketFetchP50Ms",
            value: quantile(fetchMs, 0.5),
            unit: "ms",
            baseline: copyP50,
            baselineLabel: "local file copy p50",
            note
          }),
          figure({
            key: "objectStore.bucketFetchP99Ms",
            value: quantile(fetchMs, 0.99),
            unit: "ms",
            baseline: copyP99,
            baselineLabel: "local file copy p99"
          }),
          figure({
            key: "objectStore.bareGetP50Ms",
            value: quantile(getMs, 0.5),
            unit: "ms",
            baseline: quantile(fetchMs, 0.5),
            baselineLabel: "bucket fetch p50",
            note: "GetObject to a file, no index, no checks: the fetch's floor"
          })
        ]
      })))
    } finally {
      await s3.stop()
      pg.stop()
    }
  }
}
