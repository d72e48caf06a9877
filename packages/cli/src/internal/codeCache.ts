/**
 * Starts the bundled `rallycache` program (one CommonJS file) through V8's
 * code cache, so a command does not parse and compile the whole bundle on
 * every start. Node 20 has no code cache for ES modules
 * (`module.enableCompileCache` is Node 22), so the bundle is compiled here as
 * a `vm.Script` with the `cachedData` a previous start saved next to it.
 *
 * The cache is only ever a speed-up: a file that is missing, unreadable,
 * truncated, corrupt (its SHA-1 is checked before V8 sees it) or made by
 * another V8 (V8 rejects it) is ignored, the bundle is compiled from its
 * source, and a fresh cache is written when the program exits (a temp file
 * renamed into place, so starts running at the same time never read half a
 * file), beside the bundle, or in the user's cache folder when the install is
 * not the user's to write (`userCacheFileOf`). The cache file is named after the bundle,
 * whose name carries its content hash, and after the V8 version, so it can
 * never be paired with another build.
 *
 * Made at exit, the cache holds the functions the command ran. One made by
 * `--help` lacks the store's and exporter's, so the first subcommand run
 * (`cache stats`, `export`...) replaces it once; `--help` loses nothing with
 * the larger cache.
 *
 * @internal
 */
import * as crypto from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as vm from "node:vm"

// The file: this line, whether a subcommand made it (1 byte), the data's
// length (4 bytes, little-endian) and SHA-1 (20 bytes), then V8's data.
// `node:crypto` is loaded by the program anyway (`node:zlib`'s crc32 would
// load zlib and its streams for this alone).
const magic = "rallycache-v8-cache 3\n"
const kindAt = Buffer.byteLength(magic)
const lengthAt = kindAt + 1
const digestAt = lengthAt + 4
const headerBytes = digestAt + 20

const digest = (data: Uint8Array): Buffer => crypto.createHash("sha1").update(data).digest()

/**
 * The cache file of a bundle: next to it, named after it and the V8 version.
 *
 * @internal
 */
export const cacheFileOf = (bundle: string): string =>
  `${bundle.replace(/\.cjs$/, "")}.v8-${process.versions.v8.replace(/[^\w.-]/g, "_")}-${process.arch}.cache`

/**
 * Where a bundle's cache goes when the folder beside it is not writable (an
 * install owned by another user, such as a global install made as root): the
 * user's cache folder (`$XDG_CACHE_HOME`, else `~/.cache`), under
 * `rallycache/code-cache/`, with the same file name. Undefined without a home.
 *
 * @internal
 */
export const userCacheFileOf = (bundle: string, env: NodeJS.ProcessEnv = process.env): string | undefined => {
  const xdg = env["XDG_CACHE_HOME"]
  let home: string | undefined
  try {
    home = os.homedir()
  } catch {
    home = undefined
  }
  const base = xdg !== undefined && path.isAbsolute(xdg) ? xdg : home ? path.join(home, ".cache") : undefined
  return base === undefined ? undefined : path.join(base, "rallycache", "code-cache", path.basename(cacheFileOf(bundle)))
}

const writable = (folder: string): boolean => {
  try {
    fs.accessSync(folder, fs.constants.W_OK)
    return true
  } catch {
    return false
  }
}

/**
 * A code cache read back: V8's data, and whether a subcommand's run made it.
 *
 * @internal
 */
export interface Cache {
  readonly data: Buffer
  readonly bySubcommand: boolean
}

/**
 * Whether `args` (the command line after the program) run a subcommand
 * rather than only print the root's help, version or completions.
 *
 * @internal
 */
export const runsSubcommand = (args: ReadonlyArray<string>): boolean =>
  args[0] !== undefined && !args[0].startsWith("-") && !args.includes("--help") && !args.includes("-h")

/**
 * The cache in `file`, or undefined when there is none or its header
 * (magic, length, SHA-1) does not match its content.
 *
 * @internal
 */
export const readCache = (file: string): Cache | undefined => {
  let bytes: Buffer
  try {
    bytes = fs.readFileSync(file)
  } catch {
    return undefined
  }
  if (bytes.length <= headerBytes || bytes.toString("latin1", 0, kindAt) !== magic) return undefined
  const data = bytes.subarray(headerBytes)
  if (data.length !== bytes.readUInt32LE(lengthAt)) return undefined
  if (!digest(data).equals(bytes.subarray(digestAt, headerBytes))) return undefined
  return { data, bySubcommand: bytes[kindAt] === 1 }
}

/**
 * Write `data` as the cache `file`; any failure (a read-only install, a full
 * disk) leaves the start as it was.
 *
 * @internal
 */
export const writeCache = (file: string, data: Buffer, bySubcommand: boolean): void => {
  const header = Buffer.alloc(headerBytes)
  header.write(magic, 0, "latin1")
  header[kindAt] = bySubcommand ? 1 : 0
  header.writeUInt32LE(data.length, lengthAt)
  digest(data).copy(header, digestAt)
  const temp = `${file}.${process.pid}.tmp`
  try {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(temp, Buffer.concat([header, data]), { mode: 0o644 })
    fs.renameSync(temp, file)
  } catch {
    try {
      fs.rmSync(temp, { force: true })
    } catch {
      // nothing was written
    }
  }
}

/**
 * Run the CommonJS bundle `bundle` (an absolute path) as a program, through
 * its code cache (or, with source maps enabled, as a plain `require`).
 *
 * @internal
 */
export const run = (bundle: string): void => {
  // Node maps stack traces through the bundle's source map only for modules
  // it loads itself: with `--enable-source-maps`, no code cache.
  if ((process as { sourceMapsEnabled?: boolean }).sourceMapsEnabled === true) {
    createRequire(bundle)(bundle)
    return
  }
  const source = fs.readFileSync(bundle, "utf8")
  // Beside the bundle where this user can write there; else in the user's own cache folder.
  const beside = cacheFileOf(bundle)
  const cacheFile = writable(path.dirname(beside)) ? beside : userCacheFileOf(bundle) ?? beside
  const cache = readCache(cacheFile)
  const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cache === undefined ? {} : { cachedData: cache.data })
  })
  const bySubcommand = runsSubcommand(process.argv.slice(2))
  if (cache === undefined || script.cachedDataRejected === true || (bySubcommand && !cache.bySubcommand)) {
    process.once("exit", () => {
      // Making the data costs milliseconds: not where no start could keep it.
      if (cacheFile === beside && !writable(path.dirname(beside))) return
      writeCache(cacheFile, script.createCachedData(), bySubcommand)
    })
  }
  const main = script.runInThisContext() as (
    exports: unknown,
    require: NodeJS.Require,
    module: { exports: unknown },
    filename: string,
    dirname: string
  ) => void
  const module = { exports: {} }
  main.call(module.exports, module.exports, createRequire(bundle), module, bundle, path.dirname(bundle))
}
