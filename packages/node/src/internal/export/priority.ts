/**
 * Lowering the CPU share of a running low-priority export. `nice` alone does
 * little here: Command starts each child detached, so each ffmpeg leads a
 * session of its own, and where the kernel schedules by autogroup (one per
 * session) CPU time is first split equally between autogroups, whatever
 * the niceness inside them. So the autogroup's own nice is set as well.
 *
 * @internal
 */
import * as NodeFs from "node:fs"
import * as NodeOs from "node:os"

const autogroupsEnabled = (() => {
  try {
    return NodeFs.readFileSync("/proc/sys/kernel/sched_autogroup_enabled", "utf8").trim() === "1"
  } catch {
    return false
  }
})()

/** @internal */
export interface Deprioritized {
  readonly nice: boolean
  readonly autogroup: boolean
}

/**
 * Set the niceness of `pid` and, where autogroups are on, of the autogroup
 * of its session (the child must lead its own session: a detached spawn).
 * Best effort: a process that already ended is not an error.
 *
 * @internal
 */
export const deprioritize = (pid: number, nice: number): Deprioritized => {
  let niced = false
  let grouped = false
  try {
    NodeOs.setPriority(pid, nice)
    niced = true
  } catch {
    // Gone already, or not ours.
  }
  if (autogroupsEnabled) {
    try {
      NodeFs.writeFileSync(`/proc/${pid}/autogroup`, String(nice))
      grouped = true
    } catch {
      // Gone already, or a kernel that refuses it.
    }
  }
  return { nice: niced, autogroup: grouped }
}

/** The nice value of the autogroup of `pid`, or null where there is none. @internal */
export const autogroupNice = (pid: number): number | null => {
  try {
    const match = /nice (-?\d+)/.exec(NodeFs.readFileSync(`/proc/${pid}/autogroup`, "utf8"))
    return match === null ? null : Number(match[1])
  } catch {
    return null
  }
}
