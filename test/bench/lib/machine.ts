/**
 * The machine a run happened on, for the README and the JSON.
 */
import { readFileSync } from "node:fs"
import { availableParallelism, cpus, loadavg, totalmem } from "node:os"

export interface Machine {
  readonly nproc: number
  readonly cpuModel: string
  readonly node: string
  readonly memoryGiB: number
  readonly platform: string
  /** 1-minute load average when the run started: above nproc, other work shared the cores. */
  readonly loadAverage: number
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
  platform: `${process.platform}-${process.arch}`,
  loadAverage: Math.round(loadavg()[0]! * 10) / 10
})

/** 1-minute load average now. */
export const currentLoad = (): number => Math.round(loadavg()[0]! * 10) / 10

export const describeMachine = (m: Machine): string =>
  `${m.nproc} cores (nproc), ${m.cpuModel}, ${m.memoryGiB} GiB, node ${m.node}, ${m.platform}, load average ${m.loadAverage} at start`
