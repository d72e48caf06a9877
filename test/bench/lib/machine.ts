/**
 * The machine a run happened on, for the README and the JSON.
 */
import { readFileSync } from "node:fs"
import { availableParallelism, cpus, totalmem } from "node:os"

export interface Machine {
  readonly nproc: number
  readonly cpuModel: string
  readonly node: string
  readonly memoryGiB: number
  readonly platform: string
}

const cpuModel = (): string => {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))
    if (match?.[1] !== undefined) return match[1].trim()
  } catch {
    // not Linux: fall back to what Node reports
  }
  return cpus()[0]?.model ?? "unknown"
}

export const machine = (): Machine => ({
  nproc: availableParallelism(),
  cpuModel: cpuModel(),
  node: process.version,
  memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
  platform: `${process.platform}-${process.arch}`
})

export const describeMachine = (m: Machine): string =>
  `${m.nproc} cores (nproc), ${m.cpuModel}, ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}`
