/**
 * The cache layers of the `rallycache` binary: `@rallycache/node`'s own,
 * loaded when a command first builds one, so `--help` and commands that
 * never open the cache do not load the manager, store and exporter.
 *
 * - `full`: `NodeRallyCache.layer` (manager, queue, cleanup fibers) for the
 *   commands that export (`export`, `get`, `watch`, `demo`).
 * - `maintenance`: `NodeRallyCache.layerMaintenance` (store, exporter,
 *   Cleanup on demand) for `cache stats|verify|gc|clear`; with `readOnly`
 *   (`cache stats`, `doctor`) the store is opened read-only.
 *
 * @internal
 */
import { Effect, Layer } from "effect"
import type { LayerOptions, MaintenanceOptions } from "./common.js"

/**
 * `@rallycache/node`'s default layer module, loaded on first use.
 *
 * @internal
 */
export const loadNodeRallyCache = Effect.promise(() => import("@rallycache/node/NodeRallyCache"))

/** @internal */
export const maintenance = (options: MaintenanceOptions) =>
  Layer.unwrapEffect(Effect.map(loadNodeRallyCache, (NodeRallyCache) => NodeRallyCache.layerMaintenance(options)))

/** @internal */
export const full = (options: LayerOptions) =>
  Layer.unwrapEffect(Effect.map(loadNodeRallyCache, (NodeRallyCache) => NodeRallyCache.layer(options)))
