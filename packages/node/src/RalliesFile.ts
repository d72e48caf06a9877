/**
 * Reading a rallies file from disk: the bytes checks (size, UTF-8, byte
 * order mark) in front of core's one grammar (`RalliesGrammar.RalliesFile`).
 *
 * ```json
 * { "videoId": "final-2026", "rallies": [{ "start": 12.5, "end": 31 }, { "start": "1:02.4", "end": "1:20" }] }
 * ```
 *
 * Every problem is an `InvalidInput` with a one-line message; a missing
 * file says so in its own words.
 *
 * @since 0.1.0
 */
import { FileSystem } from "@effect/platform"
import { Errors, RalliesGrammar } from "@rallycache/core"
import { Effect, Either } from "effect"

/**
 * Largest rallies file read, in bytes. A real match has a few hundred
 * rallies (tens of kilobytes); anything near this is a wrong file.
 *
 * @since 0.1.0
 * @category limits
 */
export const maxFileBytes = 32 * 1024 * 1024

/**
 * Most rallies accepted in one file (`RalliesGrammar.maxRallies`).
 *
 * @since 0.1.0
 * @category limits
 */
export const maxRallies = RalliesGrammar.maxRallies

/**
 * A parsed rallies file. Times are in seconds.
 *
 * @since 0.1.0
 * @category models
 */
export type RalliesFile = RalliesGrammar.RalliesFile

/**
 * Re-exported from `RalliesGrammar`, where the grammar lives.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseTime = RalliesGrammar.parseTime

/**
 * Re-exported from `RalliesGrammar`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatTime = RalliesGrammar.formatTime

const invalid = (field: string, reason: string, fix?: string) =>
  new Errors.InvalidInput(fix === undefined ? { field, reason } : { field, reason, fix })

/**
 * Parse the bytes of a rallies file: strips a UTF-8 byte order mark,
 * rejects UTF-16 and invalid UTF-8, then `RalliesGrammar.parseRalliesFile`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = (bytes: Uint8Array, name = "rallies file"): Either.Either<RalliesFile, Errors.InvalidInput> => {
  if (bytes.length > maxFileBytes) {
    return Either.left(
      invalid(name, `is ${bytes.length} bytes, larger than ${maxFileBytes} bytes`, "pass the rallies JSON file")
    )
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return Either.left(invalid(name, "is UTF-16 text", "save it as UTF-8"))
  }
  let text: string
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    return Either.left(invalid(name, "is not valid UTF-8 text", "save it as UTF-8 JSON"))
  }
  return RalliesGrammar.parseRalliesFile(text, name)
}

/**
 * `parse` as an effect.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseEffect = (bytes: Uint8Array, name?: string): Effect.Effect<RalliesFile, Errors.InvalidInput> =>
  Effect.suspend(() => parse(bytes, name))

/**
 * Read and parse the rallies file at `path`. A missing file, a folder, a
 * file too large or unreadable, and bad content each get their own
 * one-line `InvalidInput`; `hint` ends the messages about the path (for
 * example "check the --rallies path").
 *
 * @since 0.1.0
 * @category constructors
 */
export const read = (
  path: string,
  options: { readonly hint?: string | undefined } = {}
): Effect.Effect<RalliesFile, Errors.InvalidInput, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const hint = options.hint ?? "check the path"
    const field = `rallies file ${path}`
    const info = yield* fs.stat(path).pipe(
      Effect.mapError((error) =>
        error._tag === "SystemError" && error.reason === "NotFound"
          ? invalid(field, "not found", hint)
          : invalid(field, `cannot be read: ${error.message}`, hint)
      )
    )
    if (info.type !== "File") return yield* invalid(field, "is not a file", "pass the rallies JSON file")
    if (Number(info.size) > maxFileBytes) {
      return yield* invalid(field, `is ${Number(info.size)} bytes, larger than ${maxFileBytes}`, "pass the rallies JSON file")
    }
    const bytes = yield* fs.readFile(path).pipe(
      Effect.mapError((error) => invalid(field, `cannot be read: ${error.message}`, "check its permissions"))
    )
    return yield* parseEffect(bytes, path.split(/[\\/]/).at(-1) ?? path)
  })
