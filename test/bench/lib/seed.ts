/**
 * A cache folder seeded with N synthetic entries, without exporting N clips.
 */
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs"
import { join } from "node:path"

/** Size of each seeded clip file: tiny, the index is what is measured. */
export const clipBytes = 16

const hexKey = (i: number): string => {
  // Spread keys like real hashes (the first characters vary most).
  const h = Math.imul(i + 1, 0x9e3779b1) >>> 0
  return (h.toString(16).padStart(8, "0") + i.toString(16).padStart(24, "0"))
}

/**
 * A cache folder with `n` entries in the journal and `n` clip files of
 * `clipBytes`, in the store's documented journal format (a header line,
 * then one put record per entry). Entries belong to videos of 40 rallies
 * (`video-<n>`), so the per-video limit keeps them all.
 */
export const seedFolder = (dir: string, n: number): ReadonlyArray<string> => {
  const clips = join(dir, "clips")
  mkdirSync(clips, { recursive: true })
  const keys: Array<string> = new Array(n)
  const now = Date.now()
  const fd = openSync(join(dir, "index.jsonl"), "w")
  try {
    writeSync(fd, `${JSON.stringify({ o: "h", v: 1 })}\n`)
    const content = Buffer.alloc(clipBytes, 7)
    let batch = ""
    for (let i = 0; i < n; i++) {
      const key = hexKey(i)
      keys[i] = key
      const start = (i % 40) * 15 + 0.37
      const entry = {
        id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, "0")}`,
        key,
        videoId: `video-${Math.floor(i / 40)}`,
        rallyIndex: i % 40,
        mode: "copy",
        clipStart: start - 0.37,
        clipEnd: start + 12,
        createdAt: now - (n - i),
        accessedAt: now - (n - i),
        sizeBytes: clipBytes,
        priority: "low",
        validation: "unchecked",
        validatedAt: null
      }
      batch += `${JSON.stringify({ o: "p", e: entry })}\n`
      if (batch.length > 1 << 20) {
        writeSync(fd, batch)
        batch = ""
      }
      writeFileSync(join(clips, `${key}.mp4`), content)
    }
    writeSync(fd, batch)
  } finally {
    closeSync(fd)
  }
  return keys
}

