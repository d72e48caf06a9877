/**
 * The bucket side of the object store, through `@aws-sdk/client-s3`: upload
 * a clip (multipart through `@aws-sdk/lib-storage` above one part), download
 * one whole into a local file while checking its size and ETag, delete,
 * and list for the orphan sweep.
 *
 * ETags: S3 and R2 give an object uploaded in one request the MD5 of its
 * bytes, and a multipart one the MD5 of its parts' MD5s with `-<parts>`;
 * some servers (s3rver) give a multipart object the MD5 of its bytes. The
 * upload computes both from the file and records which one the server
 * returned (`md5`, `parts:<partSize>`), so a download recomputes that one;
 * an ETag that is neither (SSE-KMS) is `opaque`: the download then checks
 * the size and that the object's ETag is still the recorded one.
 *
 * @internal
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  type S3Client
} from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import { Effect } from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import { Transform } from "node:stream"
import { pipeline } from "node:stream/promises"

/**
 * The ETag forms of a byte stream cut in parts of `partSize`: `forms`
 * says which to compute (a download needs only the recorded one).
 */
class EtagHasher {
  private readonly whole = Crypto.createHash("md5")
  private part = Crypto.createHash("md5")
  private inPart = 0
  private readonly partDigests: Array<Buffer> = []
  bytes = 0

  constructor(
    private readonly partSize: number,
    private readonly forms: { readonly md5: boolean; readonly parts: boolean } = { md5: true, parts: true }
  ) {}

  update(chunk: Buffer): void {
    this.bytes += chunk.length
    if (this.forms.md5) this.whole.update(chunk)
    if (!this.forms.parts) return
    let offset = 0
    while (offset < chunk.length) {
      const take = Math.min(this.partSize - this.inPart, chunk.length - offset)
      this.part.update(chunk.subarray(offset, offset + take))
      this.inPart += take
      offset += take
      if (this.inPart === this.partSize) {
        this.partDigests.push(this.part.digest())
        this.part = Crypto.createHash("md5")
        this.inPart = 0
      }
    }
  }

  digest(): { readonly md5: string; readonly parts: string } {
    if (this.inPart > 0 || this.partDigests.length === 0) this.partDigests.push(this.part.digest())
    const md5 = this.whole.digest("hex")
    const parts = `${Crypto.createHash("md5").update(Buffer.concat(this.partDigests)).digest("hex")}-${this.partDigests.length}`
    return { md5, parts }
  }
}

const unquote = (etag: string | undefined): string => (etag ?? "").replace(/"/g, "")

/** Which of the computed forms `etag` is. */
const kindOf = (etag: string, computed: { readonly md5: string; readonly parts: string }, partSize: number): string =>
  etag === computed.md5 ? "md5" : etag === computed.parts ? `parts:${partSize}` : "opaque"

const hashFile = (path: string, partSize: number): Promise<{ md5: string; parts: string; bytes: number }> =>
  new Promise((resolve, reject) => {
    const hasher = new EtagHasher(partSize)
    Fs.createReadStream(path)
      .on("data", (chunk) => hasher.update(chunk as Buffer))
      .on("error", reject)
      .on("end", () => resolve({ ...hasher.digest(), bytes: hasher.bytes }))
  })

/** Why a download does not match its row. */
export class Mismatch extends Error {}

export interface Uploaded {
  readonly etag: string
  readonly etagKind: string
  readonly bytes: number
}

export const make = (client: S3Client, bucket: string, partSize: number) => {
  const upload = (objectKey: string, file: string, contentType: string): Effect.Effect<Uploaded, Error> =>
    Effect.tryPromise({
      try: async (signal) => {
        const local = await hashFile(file, partSize)
        const task = new Upload({
          client,
          params: { Bucket: bucket, Key: objectKey, Body: Fs.createReadStream(file), ContentType: contentType },
          partSize,
          queueSize: 2,
          leavePartsOnError: false
        })
        const abort = () => void task.abort().catch(() => undefined)
        signal.addEventListener("abort", abort)
        try {
          const result = await task.done()
          const etag = unquote(result.ETag)
          const kind = kindOf(etag, local, partSize)
          return { etag, etagKind: kind, bytes: local.bytes }
        } finally {
          signal.removeEventListener("abort", abort)
        }
      },
      catch: (error) => error instanceof Error ? error : new Error(String(error))
    })

  /**
   * Download `objectKey` to `file`, failing with `Mismatch` when its size or
   * ETag is not the expected one (the object was cut, replaced or damaged).
   */
  const download = (
    objectKey: string,
    file: string,
    expected: { readonly bytes: number; readonly etag: string; readonly etagKind: string }
  ): Effect.Effect<void, Error> =>
    Effect.tryPromise({
      try: async (signal) => {
        const response = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }), {
          abortSignal: signal
        })
        const served = unquote(response.ETag)
        if (served !== expected.etag) {
          throw new Mismatch(`the object's ETag is ${served}, the index recorded ${expected.etag}`)
        }
        const recordedPartSize = expected.etagKind.startsWith("parts:") ? Number(expected.etagKind.slice(6)) : partSize
        const hasher = new EtagHasher(recordedPartSize, {
          md5: expected.etagKind === "md5",
          parts: expected.etagKind.startsWith("parts:")
        })
        const body = response.Body as NodeJS.ReadableStream | undefined
        if (body === undefined) throw new Mismatch("the object has no body")
        await pipeline(
          body,
          new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              hasher.update(chunk)
              callback(null, chunk)
            }
          }),
          Fs.createWriteStream(file, { flags: "wx" }),
          { signal }
        )
        if (hasher.bytes !== expected.bytes) {
          throw new Mismatch(`${hasher.bytes} bytes downloaded, the index recorded ${expected.bytes}`)
        }
        const computed = hasher.digest()
        const recomputed = expected.etagKind === "md5"
          ? computed.md5
          : expected.etagKind.startsWith("parts:")
          ? computed.parts
          : expected.etag
        if (recomputed !== expected.etag) {
          throw new Mismatch(`the downloaded bytes hash to ${recomputed}, the index recorded ${expected.etag}`)
        }
      },
      catch: (error) => error instanceof Error ? error : new Error(String(error))
    })

  const remove = (objectKeys: ReadonlyArray<string>): Effect.Effect<void, Error> =>
    objectKeys.length === 0 ? Effect.void : Effect.forEach(
      chunksOf(objectKeys, 1000),
      (keys) =>
        Effect.tryPromise({
          try: () =>
            client.send(
              new DeleteObjectsCommand({
                Bucket: bucket,
                Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: true }
              })
            ),
          catch: (error) => error instanceof Error ? error : new Error(String(error))
        }),
      { discard: true }
    )

  /** Every object under `prefix`, with its last modification time. */
  const list = (prefix: string): Effect.Effect<ReadonlyArray<{ key: string; modified: number }>, Error> =>
    Effect.tryPromise({
      try: async () => {
        const out: Array<{ key: string; modified: number }> = []
        let token: string | undefined
        do {
          const page = await client.send(
            new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token })
          )
          for (const object of page.Contents ?? []) {
            if (object.Key !== undefined) out.push({ key: object.Key, modified: object.LastModified?.getTime() ?? 0 })
          }
          token = page.IsTruncated === true ? page.NextContinuationToken : undefined
        } while (token !== undefined)
        return out
      },
      catch: (error) => error instanceof Error ? error : new Error(String(error))
    })

  return { upload, download, remove, list }
}

const chunksOf = <A>(items: ReadonlyArray<A>, size: number): Array<ReadonlyArray<A>> => {
  const out: Array<ReadonlyArray<A>> = []
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size))
  return out
}

/** @internal */
export type Objects = ReturnType<typeof make>
