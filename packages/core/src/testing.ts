/**
 * @rallycache/core/testing: the pieces tests need and production code does
 * not, kept out of the main entry point. `TestExporter` is an `Exporter`
 * whose exports take `Clock` time (so `TestClock` drives them) and write
 * into a `MemoryFileSystem`; `layerTest` is the whole engine over it and the
 * other in-memory layers (also reachable as `RallyCache.layerTest`).
 *
 * @example
 * ```ts
 * import { RallyCache } from "@rallycache/core"
 * import { layerTest, TestExporter } from "@rallycache/core/testing"
 * ```
 *
 * @since 0.2.0
 */

/**
 * @since 0.2.0
 * @category exporters
 */
export * as TestExporter from "./TestExporter.js"

/**
 * @since 0.2.0
 * @category layers
 */
export { layerTest } from "./RallyCache.js"

/**
 * @since 0.2.0
 * @category models
 */
export type { TestOptions } from "./RallyCache.js"
