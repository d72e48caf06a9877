/**
 * Crash safety with real processes, second half: the same SIGKILLs as
 * `crash.cli.test.ts` (body in `crash.ts`), in a cache folder of its own,
 * with other rallies and kill moments drawn from the next seed. A file of
 * its own so that vitest runs the two halves side by side.
 */
import { describe, it } from "@effect/vitest"
import { killsInARow } from "./crash.js"
import { seed, size } from "./support.js"

describe("crash safety (SIGKILL of the CLI), second folder", () => {
  it.live("SIGKILL at random moments, in a row, in one cache folder: nothing invalid, no temp file, no orphan, the set completes", () =>
    killsInARow({ name: "crash.cli.second", kills: size(6, 50), seedValue: seed + 1, firstSet: 500 }), { timeout: size(600_000, 1_800_000) })
})
