/**
 * The cache layers of the `rallycache` binary: `@rallycache/node`'s own.
 *
 * - `full`: `NodeRallyCache.layer` (manager, queue, cleanup fibers) for the
 *   commands that export (`export`, `get`, `watch`, `demo`).
 * - `maintenance`: `NodeRallyCache.layerMaintenance` (store, exporter,
 *   Cleanup on demand) for `cache stats|verify|gc|clear`; with `readOnly`
 *   (`cache stats`, `doctor`) the store is opened read-only.
 *
 * @internal
 */
import { NodeRallyCache } from "@rallycache/node"
import type { LayerOptions, MaintenanceOptions } from "./common.js"

/** @internal */
export const maintenance = (options: MaintenanceOptions) => NodeRallyCache.layerMaintenance(options)

/** @internal */
export const full = (options: LayerOptions) => NodeRallyCache.layer(options)
