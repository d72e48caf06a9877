/**
 * @rallycache/core: the engine of rallycache, with no platform dependency.
 *
 * @since 0.1.0
 */
export * as CacheEvent from "./CacheEvent.js"
export * as CacheKey from "./CacheKey.js"
export * as CacheStore from "./CacheStore.js"
export * as Cleanup from "./Cleanup.js"
export * as Config from "./Config.js"
export * as Domain from "./Domain.js"
export * as Errors from "./Errors.js"
export * as Eviction from "./Eviction.js"
export * as Exporter from "./Exporter.js"
export * as ExportQueue from "./ExportQueue.js"
export * as MemoryCacheStore from "./MemoryCacheStore.js"
export * as MemoryFileSystem from "./MemoryFileSystem.js"
export * as Metrics from "./Metrics.js"
export * as PreloadPolicy from "./PreloadPolicy.js"
export * as Protocol from "./Protocol.js"
export * as Rallies from "./Rallies.js"
export * as RalliesGrammar from "./RalliesGrammar.js"
export * as RallyCache from "./RallyCache.js"
export * as RallyMessages from "./RallyMessages.js"
