/**
 * Summarise a V8 `.cpuprofile` (from `node --cpu-prof`): the functions
 * with the most self time, and the most inclusive time.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx test/bench/run.ts --only index
 *   pnpm exec tsx test/bench/top.ts /tmp/prof/CPU.*.cpuprofile [--top 25] [--inclusive]
 */
import { readFileSync } from "node:fs"

interface ProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
  readonly children?: ReadonlyArray<number>
}

interface Profile {
  readonly nodes: ReadonlyArray<ProfileNode>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
  readonly startTime: number
  readonly endTime: number
}

const args = process.argv.slice(2)
const topIndex = args.indexOf("--top")
const top = topIndex >= 0 ? Number(args[topIndex + 1]) : 25
const inclusive = args.includes("--inclusive")
const files = args.filter((a, i) => !a.startsWith("--") && (topIndex < 0 || i !== topIndex + 1))
if (files.length === 0) {
  process.stderr.write("usage: tsx test/bench/top.ts <file.cpuprofile>... [--top N] [--inclusive]\n")
  process.exit(2)
}

const label = (node: ProfileNode): string => {
  const { functionName, url, lineNumber } = node.callFrame
  const file = url.replace(/^file:\/\//, "").replace(/^.*\/node_modules\/\.pnpm\/([^/]+)\/node_modules\//, "$1:").replace(/^.*\/work\/main\//, "")
  return `${functionName || "(anonymous)"} ${file === "" ? "" : `${file}:${lineNumber + 1}`}`.trim()
}

for (const file of files) {
  const profile = JSON.parse(readFileSync(file, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map<number, number>()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const self = new Map<string, number>()
  const total = new Map<string, number>()
  let sum = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000
    sum += dt
    const node = byId.get(profile.samples[i]!)!
    const name = label(node)
    self.set(name, (self.get(name) ?? 0) + dt)
    // Inclusive: every distinct frame on the stack once.
    const seen = new Set<string>()
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const frame = label(byId.get(id)!)
      if (seen.has(frame)) continue
      seen.add(frame)
      total.set(frame, (total.get(frame) ?? 0) + dt)
    }
  }
  const table = [...(inclusive ? total : self).entries()].sort((a, b) => b[1] - a[1]).slice(0, top)
  process.stdout.write(`${file}: ${(sum / 1000).toFixed(2)} s sampled; top ${inclusive ? "inclusive" : "self"} time\n`)
  for (const [name, ms] of table) {
    process.stdout.write(`${ms.toFixed(1).padStart(10)} ms ${((ms / sum) * 100).toFixed(1).padStart(5)}%  ${name}\n`)
  }
}
