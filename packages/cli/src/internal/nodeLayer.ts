/**
 * The cache layers of the `rallycache` binary: `@rallycache/node`'s own.
 * The module is imported statically: the bin is one bundle started from V8's
 * code cache, where evaluating these modules costs little, and a lazy
 * `import()` would make esbuild keep whole barrel modules (all of
 * `@effect/platform`, msgpackr...) that tree-shaking otherwise drops.
 *
 * - `full`: `NodeRallyCache.layer` (manager, queue, cleanup fibers) for the
 *   commands that export (`export`, `get`, `watch`, `demo`).
 * - `maintenance`: `NodeRallyCache.layerMaintenance` (store, exporter,
 *   Cleanup on demand) for `cache stats|verify|gc|clear`; with `readOnly`
 *   (`cache stats`, `doctor`) the store is opened read-only.
 *
 * @internal
 */
import * as NodeRallyCache from "@rallycache/node/NodeRallyCache"
import type { LayerOptions, MaintenanceOptions } from "./common.js"

/** @internal */
export const maintenance = (options: MaintenanceOptions) => NodeRallyCache.layerMaintenance(options)

/** @internal */
export const full = (options: LayerOptions) => NodeRallyCache.layer(options)
