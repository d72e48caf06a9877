/**
 * A throwaway S3-protocol server for tests and the bench: `s3rver` (npm, in
 * this process) on a free loopback port, storing objects in a temporary
 * folder that is removed when it stops. It speaks enough of S3 for
 * `@aws-sdk/client-s3` with `forcePathStyle` (PUT, multipart, GET with
 * Range, HEAD, LIST, DELETE, ETags); it accepts a conditional PUT but does
 * not honour it, so nothing here relies on one.
 *
 * `env` gives the `RALLYCACHE_S3_*` variables that `S3CacheStore.layerConfig`
 * reads, for runner processes started by a test.
 */
import { S3Client } from "@aws-sdk/client-s3"
import { Effect, type Scope } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import S3rver from "s3rver"

export interface S3Server {
  readonly endpoint: string
  readonly port: number
  readonly bucket: string
  readonly region: string
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string }
  /** The folder s3rver stores objects in. */
  readonly dir: string
  /** The `RALLYCACHE_S3_*` variables naming this server. */
  readonly env: Record<string, string>
}

const start = async (bucket: string): Promise<S3Server & { readonly server: S3rver }> => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "rallycache-s3-"))
  try {
    const server = new S3rver({
      address: "127.0.0.1",
      port: 0,
      directory: dir,
      silent: true,
      configureBuckets: [{ name: bucket }]
    })
    const { port } = await server.run()
    const endpoint = `http://127.0.0.1:${port}`
    // s3rver accepts these fixed credentials (and checks signatures made with them).
    const credentials = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" }
    const region = "us-east-1"
    return {
      server,
      endpoint,
      port,
      bucket,
      region,
      credentials,
      dir,
      env: {
        RALLYCACHE_S3_ENDPOINT: endpoint,
        RALLYCACHE_S3_BUCKET: bucket,
        RALLYCACHE_S3_REGION: region,
        RALLYCACHE_S3_FORCE_PATH_STYLE: "true",
        RALLYCACHE_S3_ACCESS_KEY_ID: credentials.accessKeyId,
        RALLYCACHE_S3_SECRET_ACCESS_KEY: credentials.secretAccessKey
      }
    }
  } catch (error) {
    Fs.rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

const stop = async (server: { readonly server: S3rver; readonly dir: string }) => {
  try {
    await server.server.close()
  } finally {
    Fs.rmSync(server.dir, { recursive: true, force: true })
  }
}

/** Start a server with one empty bucket for the duration of the scope. */
export const scoped = (bucket = "rallycache"): Effect.Effect<S3Server, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise({ try: () => start(bucket), catch: (e) => e instanceof Error ? e : new Error(String(e)) }),
    (server) => Effect.promise(() => stop(server))
  )

/** Start a server with one empty bucket; call `stop` when done (for `beforeAll`/`afterAll`). */
export const startS3 = async (bucket = "rallycache"): Promise<S3Server & { readonly stop: () => Promise<void> }> => {
  const server = await start(bucket)
  return { ...server, stop: () => stop(server) }
}

/** A client of the test server, as the store's layer builds one (path-style, checksums only where required). */
export const clientOf = (s3: S3Server): S3Client =>
  new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: s3.credentials,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED"
  })
