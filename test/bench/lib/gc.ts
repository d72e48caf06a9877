/**
 * A full garbage collection, for heap deltas. Uses `global.gc` when node
 * runs with `--expose-gc`, otherwise turns the flag on at run time (V8
 * accepts it late, and a fresh context then exposes `gc`).
 */
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"

const resolveGc = (): () => void => {
  const existing = (globalThis as { gc?: () => void }).gc
  if (typeof existing === "function") return existing
  setFlagsFromString("--expose-gc")
  const gc: unknown = runInNewContext("gc")
  if (typeof gc !== "function") throw new Error("cannot expose gc: run node with --expose-gc")
  return gc as () => void
}

let cached: (() => void) | undefined

/** Collect until the heap stops shrinking, then return heapUsed. */
export const settledHeapUsed = (): number => {
  cached ??= resolveGc()
  let previous = Number.POSITIVE_INFINITY
  let used = process.memoryUsage().heapUsed
  for (let i = 0; i < 6 && used < previous; i++) {
    cached()
    previous = used
    used = process.memoryUsage().heapUsed
  }
  return used
}
