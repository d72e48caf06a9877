/**
 * What every scenario receives: options, a temp folder for this run, the
 * binaries, the fixture, and figures one scenario hands to another.
 */
import type { Binaries } from "./ffmpeg.js"
import type { Figure } from "./figure.js"
import type { Fixture } from "./fixture.js"

export interface ExportDurations {
  /** Median wall time of one export of the reference rally, per mode, in ms. */
  readonly copyMs: number
  readonly accurateMs: number
  /** Accurate export cost per second of clip, in ms: for rallies of other lengths. */
  readonly accurateMsPerClipSecond: number
  /** Length of the reference rally in seconds. */
  readonly rallySeconds: number
  readonly source: "export scenario" | "measured by preload"
}

export interface BenchContext {
  readonly quick: boolean
  /** Removed at the end of the run. */
  readonly tmpRoot: string
  readonly binaries: Binaries
  readonly fixture: () => Promise<Fixture>
  /** Set by the export scenario; read by preload (which measures it itself when missing). */
  exportDurations: ExportDurations | undefined
}

export interface Expected {
  readonly key: string
  readonly unit: string
}

export interface Scenario {
  readonly name: string
  readonly title: string
  /** Every key the scenario reports, so a failure still prints stable keys. */
  readonly expected: ReadonlyArray<Expected>
  readonly run: (context: BenchContext) => Promise<ReadonlyArray<Figure>>
}
