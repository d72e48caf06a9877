/**
 * The order in which vitest starts the test files: the files that take
 * longest start first, so that none of them begins when the others are
 * nearly done and ends the run alone on one core. vitest's own order
 * (longest first by the durations it cached on this machine, else the
 * largest file first) decides among the rest; a fresh clone has no cache,
 * and file size says little (the crash-safety files are small and slow).
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { BaseSequencer, type TestSpecification } from "vitest/node"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** Path prefixes (from the repository root) of the slowest files of a fresh-clone run, slowest first. */
export const slowFirst: ReadonlyArray<string> = [
  "test/reliability/crash.cli",
  "packages/node/test/corpus.test.ts",
  "examples/cluster/test/cluster.test.ts",
  "test/readme/bench.test.ts",
  "test/reliability/faults.disk",
  "test/reliability/load.churn",
  "packages/node/test/inProcessCut.test.ts",
  "examples/batch-export/test/batch-export.test.ts",
  "examples/http-server/test/browser.test.ts",
  "test/reliability/badInput.test.ts",
  "examples/http-server/test/commands.test.ts"
]

const rankOf = (file: TestSpecification): number => {
  const relative = path.relative(root, file.moduleId).split(path.sep).join("/")
  const index = slowFirst.findIndex((prefix) => relative.startsWith(prefix))
  return index < 0 ? slowFirst.length : index
}

export default class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const sorted = await super.sort(files)
    return sorted
      .map((file, position) => ({ file, position, rank: rankOf(file) }))
      .sort((a, b) => a.rank - b.rank || a.position - b.position)
      .map(({ file }) => file)
  }
}
