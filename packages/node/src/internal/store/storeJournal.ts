/**
 * The index of the disk cache store: an append-only JSONL journal, its file
 * I/O (append, refresh, compaction) and the in-memory index it loads into.
 * The records' encoding is in `storeJournalCodec.ts`.
 *
 * One JSON record per line:
 *
 * | record                                   | meaning                                  |
 * |------------------------------------------|------------------------------------------|
 * | `{"o":"h","v":1}`                        | header (format version), first line      |
 * | `{"o":"p","e":{...CacheEntry}}`          | put: a committed clip (replaces the key) |
 * | `{"o":"d","k":key}`                      | delete                                   |
 * | `{"o":"t","k":key,"t":ms}`               | touch: `accessedAt` (batched)            |
 * | `{"o":"v","k":key,"s":status,"t":ms}`    | result of a deep validation              |
 *
 * Writers append only while holding the index lock, with one `write` and an
 * `fsync` per batch. A crash can leave a torn last line; it is ignored on
 * load, and the next writer cuts it off before appending, so it can never
 * swallow a good record (nor come back to life). Lines that do not parse
 * are skipped and counted.
 *
 * Readers never lock: they remember the journal's inode and how many bytes
 * they have applied, and on a refresh read only what other processes have
 * appended since. Compaction rewrites the journal atomically (temp file,
 * fsync, rename, fsync of the folder), which gives it a new inode; readers
 * see the inode change and reload.
 *
 * @internal
 */
import { isAscii } from "node:buffer"
import * as Crypto from "node:crypto"
import type * as Fs from "node:fs"
import * as Path from "node:path"
import type { Domain } from "@rallycache/core"
import { decodeLine, encodeRecord, formatVersion, withEntry } from "./storeJournalCodec.js"
import type { JournalRecord } from "./storeJournalCodec.js"

export { asKey, decodeLine, encodeRecord, formatVersion, makeEntry } from "./storeJournalCodec.js"
export type { JournalRecord } from "./storeJournalCodec.js"

type CacheEntry = Domain.CacheEntry
type CacheKey = Domain.CacheKey

/**
 * The synchronous file operations the store uses, so that a test or a
 * fault-injection suite can wrap them (ENOSPC, EIO...). Synchronous on
 * purpose: `statSync` costs about 2 µs against about 60 µs for
 * `fs.promises.stat`, and the store's critical sections must not yield.
 */
export type SyncFs = Pick<
  typeof Fs,
  | "openSync"
  | "closeSync"
  | "writeSync"
  | "fsyncSync"
  | "readSync"
  | "fstatSync"
  | "ftruncateSync"
  | "statSync"
  | "readFileSync"
  | "writeFileSync"
  | "renameSync"
  | "rmSync"
  | "readdirSync"
  | "mkdirSync"
>


/**
 * The in-memory index: the entries, their total size, and where this
 * process is in the journal file.
 */
export class Index {
  readonly entries = new Map<CacheKey, CacheEntry>()
  bytes = 0
  /** Inode of the journal file these entries were read from (-1: none yet). */
  ino = -1
  /** Bytes of that file already applied. */
  offset = 0
  /** Record lines in that file: compaction is due when they far outnumber the entries. */
  lines = 0
  /** Lines that did not parse (torn by a crash, or foreign). */
  skipped = 0

  /**
   * An open descriptor of the journal file being read. Holding it keeps the
   * file's inode allocated after a compaction renames a new journal over
   * it, so the new journal always gets a different inode number: without
   * it, file systems reuse the freed number at once and a reader could not
   * tell the new file from the old one.
   */
  fd: number | undefined = undefined

  close(fs: SyncFs): void {
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd)
      } catch {
        // already closed
      }
      this.fd = undefined
    }
  }

  reset(): void {
    this.entries.clear()
    this.bytes = 0
    this.ino = -1
    this.offset = 0
    this.lines = 0
    this.skipped = 0
  }

  apply(record: JournalRecord): void {
    this.lines++
    switch (record.o) {
      case "p": {
        const previous = this.entries.get(record.e.key)
        if (previous !== undefined) this.bytes -= previous.sizeBytes
        this.entries.set(record.e.key, record.e)
        this.bytes += record.e.sizeBytes
        return
      }
      case "d": {
        const previous = this.entries.get(record.k)
        if (previous !== undefined) {
          this.bytes -= previous.sizeBytes
          this.entries.delete(record.k)
        }
        return
      }
      case "t": {
        const previous = this.entries.get(record.k)
        // Touches of several processes interleave; the latest time wins.
        if (previous !== undefined && record.t > previous.accessedAt) {
          this.entries.set(record.k, withEntry(previous, { accessedAt: record.t }))
        }
        return
      }
      case "v": {
        const previous = this.entries.get(record.k)
        if (previous !== undefined) {
          this.entries.set(record.k, withEntry(previous, { validation: record.s, validatedAt: record.t }))
        }
        return
      }
      case "h":
        this.lines--
        return
    }
  }

  /** A local touch, not yet in the journal. */
  touchLocal(key: CacheKey, now: number): boolean {
    const previous = this.entries.get(key)
    if (previous === undefined) return false
    if (now > previous.accessedAt) this.entries.set(key, withEntry(previous, { accessedAt: now }))
    return true
  }

  /** Apply the complete lines of `chunk`; returns how many bytes were consumed (up to the last newline). */
  applyChunk(chunk: Buffer): number {
    const end = chunk.lastIndexOf(0x0a)
    if (end < 0) return 0
    // The journal is ASCII unless a video id is not: then "ascii" decoding is a plain copy, where
    // "utf8" decodes every byte (measured at 100k entries: about 10-30 ms less, of ~250 ms).
    const text = isAscii(chunk.subarray(0, end)) ? chunk.toString("ascii", 0, end) : chunk.toString("utf8", 0, end)
    let start = 0
    while (start <= text.length) {
      let stop = text.indexOf("\n", start)
      if (stop < 0) stop = text.length
      if (stop > start) {
        const record = decodeLine(text.slice(start, stop))
        if (record === undefined) this.skipped++
        else this.apply(record)
      }
      start = stop + 1
    }
    return end + 1
  }
}

const readRange = (fs: SyncFs, fd: number, from: number, to: number): Buffer => {
  const buffer = Buffer.allocUnsafe(to - from)
  let read = 0
  while (read < buffer.length) {
    const n = fs.readSync(fd, buffer, read, buffer.length - read, from + read)
    if (n === 0) break
    read += n
  }
  return read === buffer.length ? buffer : buffer.subarray(0, read)
}

/** Point `index` at the file now at `path` (after a compaction, or the first time), emptied. */
const reopen = (fs: SyncFs, path: string, index: Index): number => {
  index.close(fs)
  index.reset()
  const fd = fs.openSync(path, "r")
  const stat = fs.fstatSync(fd)
  index.fd = fd
  index.ino = stat.ino
  return stat.size
}

/**
 * Bring `index` up to date with the journal at `path`: nothing to do when
 * the file is unchanged (one `statSync`), only the new bytes when other
 * processes appended, a full reload when it was compacted (new inode).
 * Returns whether anything was read.
 */
export const refresh = (fs: SyncFs, path: string, index: Index): boolean => {
  const stat = fs.statSync(path, { throwIfNoEntry: false })
  if (stat === undefined) {
    if (index.fd === undefined) return false
    index.close(fs)
    index.reset()
    return true
  }
  let size = stat.size
  if (index.fd === undefined || stat.ino !== index.ino) {
    size = reopen(fs, path, index)
  } else if (size < index.offset) {
    // Cannot happen with this store's writers (they only append); start over rather than misread.
    size = reopen(fs, path, index)
  }
  if (size === index.offset) return false
  const chunk = readRange(fs, index.fd!, index.offset, size)
  index.offset += index.applyChunk(chunk)
  return true
}

/** fsync a folder, so that a rename or a new file in it survives a power cut. */
export const syncDir = (fs: SyncFs, dir: string): void => {
  const fd = fs.openSync(dir, "r")
  try {
    fs.fsyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Append `records` durably (one write, one fsync) and apply them to
 * `index`. The caller holds the index lock, so no one else appends or
 * compacts meanwhile; this first catches up with what others appended.
 */
export const append = (fs: SyncFs, path: string, index: Index, records: ReadonlyArray<JournalRecord>): void => {
  if (records.length === 0) return
  refresh(fs, path, index)
  const fd = fs.openSync(path, "a+")
  try {
    const stat = fs.fstatSync(fd)
    if (index.fd === undefined || stat.ino !== index.ino) {
      // Created just now by this open (or, if something other than a store touched the folder,
      // replaced): read it through its own descriptor first, so `offset` describes this file.
      refresh(fs, path, index)
      if (index.ino !== stat.ino) throw new Error("the journal was replaced during an append (retry the operation)")
    }
    let size = stat.size
    if (size > index.offset) {
      // Bytes after the last newline: a record torn by a crash (no live writer appends without the
      // lock we hold). Cut them off. Ending them with a newline instead would resurrect a record
      // whose writer died before its fsync returned, i.e. a commit that was never acknowledged.
      // Readers never consume past a newline, so none has read these bytes.
      fs.ftruncateSync(fd, index.offset)
      size = index.offset
    }
    const prefix = size === 0 ? encodeRecord({ o: "h", v: formatVersion }) + "\n" : ""
    let body = prefix
    for (const record of records) body += encodeRecord(record) + "\n"
    const buffer = Buffer.from(body, "utf8")
    try {
      let written = 0
      while (written < buffer.length) written += fs.writeSync(fd, buffer, written, buffer.length - written)
      fs.fsyncSync(fd)
      if (size === 0) syncDir(fs, Path.dirname(path))
    } catch (error) {
      // All or nothing: a failed write or fsync (EIO, ENOSPC) may have left some of the batch in the
      // file, whole lines included; the caller reports a failure, so none of it may count.
      try {
        fs.ftruncateSync(fd, size)
      } catch {
        // the torn tail is cut off by the next append, or ignored on load
      }
      throw error
    }
    index.offset = size + buffer.length
    for (const record of records) index.apply(record)
  } finally {
    fs.closeSync(fd)
  }
}

/**
 * Rewrite the journal as one put per entry (temp file, fsync, rename, fsync
 * of the folder). The caller holds the index lock. A crash at any point
 * leaves either the old journal or the new one, both complete; so does a
 * failure (the error is thrown): before the rename the temp file is removed
 * and `index` still describes the old journal, after it `index` describes
 * the new one.
 */
export const compact = (fs: SyncFs, path: string, index: Index): void => {
  refresh(fs, path, index)
  const tempPath = `${path}.${Crypto.randomUUID()}.tmp`
  let body = encodeRecord({ o: "h", v: formatVersion }) + "\n"
  for (const entry of index.entries.values()) body += encodeRecord({ o: "p", e: entry }) + "\n"
  const buffer = Buffer.from(body, "utf8")
  let renamed = false
  try {
    const fd = fs.openSync(tempPath, "w")
    try {
      let written = 0
      while (written < buffer.length) written += fs.writeSync(fd, buffer, written, buffer.length - written)
      fs.fsyncSync(fd)
      const stat = fs.fstatSync(fd)
      fs.renameSync(tempPath, path)
      renamed = true
      index.close(fs)
      index.ino = stat.ino
      index.offset = buffer.length
      index.lines = index.entries.size
      index.skipped = 0
      // Should this open fail, `fd` stays unset and the next refresh reloads the new journal.
      index.fd = fs.openSync(path, "r")
    } finally {
      fs.closeSync(fd)
    }
  } catch (error) {
    if (!renamed) {
      try {
        fs.rmSync(tempPath, { force: true })
      } catch {
        // left for the next start-up, which removes a dead compaction's temp file
      }
    }
    throw error
  }
  syncDir(fs, Path.dirname(path))
}

/** Whether the journal holds enough dead lines that a rewrite pays off. */
export const compactionDue = (index: Index, minLines: number, factor: number): boolean =>
  index.lines > minLines && index.lines > factor * index.entries.size

/**
 * Compact when due; returns whether it ran to the end. Compaction only
 * saves space and start-up time: when it fails (ENOSPC or EIO on the
 * rewrite, its rename or the folder's fsync) the journal in place is
 * complete either way, so the operation that asked for it stands and the
 * next append tries again.
 */
export const compactIfDue = (fs: SyncFs, path: string, index: Index, minLines: number, factor: number): boolean => {
  if (!compactionDue(index, minLines, factor)) return false
  try {
    compact(fs, path, index)
    return true
  } catch {
    return false
  }
}
