/**
 * Whether an mp4/mov file's samples are encrypted: a sample entry of the
 * `moov` is `encv`/`enca` (Common Encryption: `cenc`, `cbcs`...; the entries
 * name the codec only inside their `sinf`) or Apple's older `drmi`/`drms`.
 * ffprobe names such a stream by its original codec (`h264`, `aac`), and
 * ffmpeg then copies or decodes ciphertext: clips of noise, or an error dump.
 * A `pssh` box alone says who holds keys, not that the samples are
 * encrypted, so it is reported only beside an encrypted entry.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import { type Box, boxesIn, child, headerAt } from "./mp4Boxes.js"

/** Sample entries whose samples are encrypted. */
const protectedEntries = new Set(["encv", "enca", "drmi", "drms"])

/** A `moov` larger than this is not read here (ffmpeg's own reading of it is left as it is). */
const maxMoov = 256 * 1024 * 1024

/** DRM systems of the `pssh` boxes most often met, by system id. */
const systems: Record<string, string> = {
  edef8ba979d64acea3c827dcd51d21ed: "Widevine",
  "9a04f07998404286ab92e65be0885f95": "PlayReady",
  "94ce86fb07ff4f43adb893d2fa968ca2": "FairPlay",
  "1077efecc0b24d02ace33c1e52e2fb4b": "ClearKey"
}

/**
 * What encrypts the samples of the mp4/mov file at `path` (e.g. `"cenc
 * scheme on the video and audio tracks, Widevine keys"`), or `undefined`
 * when no track is encrypted or the file is not one this reads.
 *
 * @internal
 */
export const mp4Encryption = (path: string): string | undefined => {
  let fd: number | undefined
  try {
    fd = NodeFs.openSync(path, "r")
    const moov = readMoov(fd, NodeFs.fstatSync(fd).size)
    return moov === undefined ? undefined : encryptionIn(moov)
  } catch {
    return undefined
  } finally {
    if (fd !== undefined) NodeFs.closeSync(fd)
  }
}

/** The payload of the top-level `moov` box (it precedes the fragments of a fragmented file). */
const readMoov = (fd: number, size: number): Buffer | undefined => {
  const head = Buffer.alloc(16)
  for (let at = 0; at + 8 <= size;) {
    const got = NodeFs.readSync(fd, head, 0, 16, at)
    const { header, size: boxSize, type } = headerAt(head.subarray(0, got), 0, size - at)
    if (!/^[\x20-\x7e]{4}$/.test(type) || boxSize < header) return undefined
    if (type === "moov") {
      if (boxSize > maxMoov || at + boxSize > size) return undefined
      const whole = Buffer.allocUnsafe(boxSize)
      return NodeFs.readSync(fd, whole, 0, boxSize, at) < boxSize ? undefined : whole.subarray(header)
    }
    at += boxSize
  }
  return undefined
}

/** The encryption of the tracks of a `moov` payload, or `undefined`. @internal */
export const encryptionIn = (moov: Buffer): string | undefined => {
  const top = boxesIn(moov, 0, moov.length)
  const schemes = new Set<string>()
  const kinds = new Set<string>()
  for (const trak of top.filter((b) => b.type === "trak")) {
    const path = (parent: Box | undefined, type: string) => parent === undefined ? undefined : child(moov, parent, type)
    const mdia = path(trak, "mdia")
    const stsd = path(path(path(mdia, "minf"), "stbl"), "stsd")
    if (mdia === undefined || stsd === undefined) continue
    // stsd: version and flags, an entry count, then the sample entries.
    for (const entry of boxesIn(moov, stsd.start + 8, stsd.end)) {
      if (!protectedEntries.has(entry.type)) continue
      const hdlr = path(mdia, "hdlr")
      const handler = hdlr === undefined ? "" : moov.toString("latin1", hdlr.start + 8, hdlr.start + 12)
      kinds.add(handler === "vide" ? "video" : handler === "soun" ? "audio" : "other")
      // The scheme type of the entry's `schm` (inside its `sinf`, after fields whose length depends on the entry).
      const schm = moov.indexOf("schm", entry.start, "latin1")
      schemes.add(
        schm >= 0 && schm + 12 <= entry.end
          ? moov.toString("latin1", schm + 8, schm + 12)
          : entry.type.startsWith("drm")
          ? "Apple FairPlay"
          : "unnamed"
      )
    }
  }
  if (kinds.size === 0) return undefined
  const keys = top.filter((b) => b.type === "pssh" && b.start + 20 <= b.end)
    .map((b) => systems[moov.toString("hex", b.start + 4, b.start + 20)] ?? "unnamed DRM")
  const tracks = [...kinds].join(" and ")
  return `${[...schemes].join(", ")} scheme on the ${tracks} track${kinds.size > 1 ? "s" : ""}${
    keys.length === 0 ? "" : `, ${[...new Set(keys)].join(", ")} keys`
  }`
}
