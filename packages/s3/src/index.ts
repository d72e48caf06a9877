/**
 * @since 0.2.0
 */

/**
 * Clips in object storage, Postgres as index and commit point, a local disk
 * cache in front.
 *
 * @since 0.2.0
 */
export * as S3CacheStore from "./S3CacheStore.js"
