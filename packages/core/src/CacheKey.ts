/**
 * Deterministic cache keys.
 *
 * A key is the first 128 bits of a SHA-256 over a canonical encoding of
 * (source fingerprint, start, end, mode, encoder-settings version), as 32
 * lowercase hex characters: the same on every run, process and machine,
 * safe in any file name, and of fixed length. Times are rounded to the
 * millisecond first, so `12.5` and `12.5000000001` share a clip.
 *
 * @since 0.1.0
 */
import { sha256 } from "@noble/hashes/sha2.js"
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js"
import type { CacheKey, ExportMode } from "./Domain.js"

/**
 * What a key is derived from.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyInput {
  readonly fingerprint: string
  readonly start: number
  readonly end: number
  readonly mode: ExportMode
  /** Changes whenever the encoder settings change (preset, CRF, codec...). */
  readonly settingsVersion: string
}

/**
 * Bumped when the encoding of the key itself changes.
 *
 * @since 0.1.0
 * @category utils
 */
export const keyVersion = 1

/**
 * @example
 * ```ts
 * import { CacheKey } from "@rallycache/core"
 *
 * const key = CacheKey.make({ fingerprint: "s1024-m1700000000000", start: 12.5, end: 31, mode: "copy", settingsVersion: "copy-v1" })
 * // key === CacheKey.make({ ...same input }) on any machine
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (input: KeyInput): CacheKey => {
  // JSON of an array has one canonical form for these types; no separator can
  // be forged by a fingerprint that contains one.
  const canonical = JSON.stringify([
    keyVersion,
    input.fingerprint,
    Math.round(input.start * 1000),
    Math.round(input.end * 1000),
    input.mode,
    input.settingsVersion
  ])
  return bytesToHex(sha256(utf8ToBytes(canonical))).slice(0, 32) as CacheKey
}
