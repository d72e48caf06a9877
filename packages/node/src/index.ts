/**
 * @rallycache/node: the Node platform of rallycache (ffmpeg, disk cache, default layer).
 *
 * @since 0.1.0
 */
export * as FfmpegResolver from "./FfmpegResolver.js"
export * as SampleVideo from "./SampleVideo.js"
export * as FileSystemCacheStore from "./FileSystemCacheStore.js"
export * as Clip from "./Clip.js"
export * as FfmpegExporter from "./FfmpegExporter.js"
export * as NodeRallyCache from "./NodeRallyCache.js"
export * as RalliesFile from "./RalliesFile.js"
export * as ProcessInfo from "./ProcessInfo.js"
