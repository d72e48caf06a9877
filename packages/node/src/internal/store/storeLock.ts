/**
 * Cross-process lock files for the disk cache store.
 *
 * A lock is a file created atomically with its full content (written to a
 * unique temp file, then `link`ed into place: `link` fails with EEXIST when
 * the lock exists, and a reader never sees a half-written owner). The owner
 * record names the process (pid, host, kernel start time, a per-process
 * nonce), so a lock left by a crashed process is recognised at once instead
 * of after a timeout, and a recycled pid (containers often restart as pid 1)
 * is not mistaken for the dead owner.
 *
 * Breaking a stale lock is serialised by a second, short-lived `.break` lock:
 * the breaker re-reads the lock under it and removes it only if it is still
 * the same stale record, so two processes that both found it stale can never
 * remove a lock that a third one has just taken.
 *
 * Scope: processes of one machine. A lock held by another host is never
 * considered stale (rallycache does not support a cache folder shared over
 * a network file system).
 *
 * @internal
 */
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import { isAlive } from "../export/process.js"

/** Makes this process's locks distinguishable from a previous process with the same pid. */
const processNonce = Crypto.randomUUID()
const hostname = Os.hostname()

/** Kernel start time of `pid` (Linux), so a recycled pid does not look like the dead owner. */
const startTimeOf = (pid: number): string | null => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "latin1")
    // The command name (field 2) may contain spaces and parentheses; fields after the last ")" are fixed.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return fields[19] ?? null
  } catch {
    return null
  }
}

const selfStart = startTimeOf(process.pid)

interface Owner {
  readonly pid: number
  readonly host: string
  readonly start: string | null
  readonly nonce: string
  readonly token: string
}

const parseOwner = (raw: string): Owner | undefined => {
  try {
    const value: unknown = JSON.parse(raw)
    if (typeof value !== "object" || value === null) return undefined
    const o = value as Record<string, unknown>
    if (
      typeof o["pid"] === "number" && typeof o["host"] === "string" && typeof o["nonce"] === "string" &&
      typeof o["token"] === "string" && (o["start"] === null || typeof o["start"] === "string")
    ) {
      return o as unknown as Owner
    }
    return undefined
  } catch {
    return undefined
  }
}


/**
 * A lock file that cannot be parsed was cut short by a machine crash (the
 * link protocol never exposes a partial one otherwise); it is stale once
 * it is older than this.
 */
const unreadableStaleMs = 5_000
/** A `.break` lock older than this belongs to a breaker that died in its few-microsecond window. */
const breakStaleMs = 10_000

const errno = (error: unknown): string | undefined => (error as NodeJS.ErrnoException | undefined)?.code

/** Whether the lock whose content is `raw` (modified at `mtimeMs`) was left by a dead holder. */
const isStale = (raw: string, mtimeMs: number): boolean => {
  const owner = parseOwner(raw)
  if (owner === undefined) return Date.now() - mtimeMs > unreadableStaleMs
  if (owner.host !== hostname) return false
  if (owner.pid === process.pid) return owner.nonce !== processNonce
  if (!isAlive(owner.pid)) return true
  if (owner.start !== null) {
    const start = startTimeOf(owner.pid)
    if (start !== null && start !== owner.start) return true
  }
  return false
}

/** Remove `lockPath` if it still holds exactly `raw`, serialised with other breakers. */
const breakStale = (lockPath: string, raw: string): void => {
  const breakPath = `${lockPath}.break`
  let fd: number
  try {
    fd = Fs.openSync(breakPath, "wx")
  } catch (error) {
    if (errno(error) !== "EEXIST") throw error
    try {
      const stat = Fs.statSync(breakPath)
      if (Date.now() - stat.mtimeMs > breakStaleMs) Fs.rmSync(breakPath, { force: true })
    } catch {
      // gone meanwhile: the next attempt retries
    }
    return
  }
  Fs.closeSync(fd)
  try {
    let current: string
    try {
      current = Fs.readFileSync(lockPath, "utf8")
    } catch (error) {
      if (errno(error) === "ENOENT") return
      throw error
    }
    if (current === raw) Fs.rmSync(lockPath, { force: true })
  } finally {
    Fs.rmSync(breakPath, { force: true })
  }
}

/**
 * Try once to take the lock at `lockPath`. Returns the token that releases
 * it, or `undefined` while a live process (this one included) holds it.
 * Throws the file system's error on anything but contention.
 */
export const tryAcquire = (lockPath: string): string | undefined => {
  const token = Crypto.randomUUID()
  const owner: Owner = { pid: process.pid, host: hostname, start: selfStart, nonce: processNonce, token }
  const tempPath = `${lockPath}.${token}.tmp`
  Fs.writeFileSync(tempPath, JSON.stringify(owner))
  try {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        Fs.linkSync(tempPath, lockPath)
        return token
      } catch (error) {
        if (errno(error) !== "EEXIST") throw error
      }
      let raw: string
      let mtimeMs: number
      try {
        raw = Fs.readFileSync(lockPath, "utf8")
        mtimeMs = Fs.statSync(lockPath).mtimeMs
      } catch (error) {
        if (errno(error) === "ENOENT") continue // released meanwhile: try again at once
        throw error
      }
      if (!isStale(raw, mtimeMs)) return undefined
      breakStale(lockPath, raw)
    }
    return undefined
  } finally {
    Fs.rmSync(tempPath, { force: true })
  }
}

/** Release a lock taken with `token`. Never throws; a lock that is no longer ours is left alone. */
export const release = (lockPath: string, token: string): void => {
  try {
    const owner = parseOwner(Fs.readFileSync(lockPath, "utf8"))
    if (owner !== undefined && owner.token === token && owner.nonce === processNonce) Fs.rmSync(lockPath, { force: true })
  } catch {
    // already gone
  }
}

/**
 * Remove the lock at `lockPath` if its holder is dead (start-up cleanup of
 * the per-key locks of a killed process). Returns whether it was removed.
 * A lock of a live process, or one that cannot be read, is left alone.
 */
export const removeIfStale = (lockPath: string): boolean => {
  let raw: string
  let mtimeMs: number
  try {
    raw = Fs.readFileSync(lockPath, "utf8")
    mtimeMs = Fs.statSync(lockPath).mtimeMs
  } catch {
    return false
  }
  if (!isStale(raw, mtimeMs)) return false
  breakStale(lockPath, raw)
  try {
    return Fs.readFileSync(lockPath, "utf8") !== raw
  } catch {
    return true
  }
}

/** Whether a lock file name is a leftover temp or break file (for start-up cleanup). */
export const isLockLeftover = (name: string): boolean => name.endsWith(".tmp") || name.endsWith(".break")

/**
 * Best effort: remove the `.lock` files in `dir` whose holder is dead (a
 * process of this host that was killed while it exported). For a store
 * opened read-only, which repairs nothing else: a lock that cannot be read
 * or removed (a folder this process cannot write) is left as it is.
 * Returns how many were removed.
 */
export const sweepDead = (dir: string): number => {
  let names: Array<string>
  try {
    names = Fs.readdirSync(dir)
  } catch {
    return 0
  }
  let removed = 0
  for (const name of names) {
    if (!name.endsWith(".lock")) continue
    try {
      if (removeIfStale(`${dir}/${name}`)) removed++
    } catch {
      // not ours to remove here
    }
  }
  return removed
}
