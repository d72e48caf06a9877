/**
 * The cache layers of the `rallycache` binary: `@rallycache/node`'s own.
 *
 * - `full`: `NodeRallyCache.layer` (manager, queue, cleanup fibers) for the
 *   commands that export (`export`, `get`, `watch`, `demo`).
 * - `maintenance`: `NodeRallyCache.layerMaintenance` (store, exporter,
 *   Cleanup on demand) for `cache stats|verify|gc|clear`.
 *
 * @internal
 */
import { NodeRallyCache } from "@rallycache/node"
import type { LayerOptions } from "./common.js"

/** @internal */
export const maintenance = (options: LayerOptions) => NodeRallyCache.layerMaintenance(options)

/** @internal */
export const full = (options: LayerOptions) => NodeRallyCache.layer(options)
