/**
 * Decoding and parsing the rallies file into one-line `InvalidInput`s.
 *
 * @internal
 */
import { Either, ParseResult, Schema } from "effect"
import * as Grammar from "../RalliesGrammar.js"
import { InvalidInput } from "../Errors.js"
import { findSyntaxError, lineColumn } from "./jsonSyntax.js"

const formatPath = (path: ReadonlyArray<PropertyKey>): string => {
  let out = ""
  for (const part of path) {
    out += typeof part === "number" ? `[${part}]` : out === "" ? String(part) : `.${String(part)}`
  }
  return out
}

/** Keep a message on one line and of a sane length, whatever the input. */
const oneLine = (text: string): string => {
  const flat = text.replace(/\s+/g, " ").trim()
  return flat.length > 300 ? flat.slice(0, 299) + "…" : flat
}

const invalid = (field: string, reason: string, fix?: string) =>
  new InvalidInput(fix === undefined ? { field, reason } : { field, reason, fix })

/** @internal */
export const decodeInput = <A, I>(
  schema: Schema.Schema<A, I>,
  value: unknown,
  root: string
): Either.Either<A, InvalidInput> => {
  const result = Schema.decodeUnknownEither(schema)(value, { errors: "first", onExcessProperty: "ignore" })
  if (Either.isRight(result)) return Either.right(result.right)
  const issue = ParseResult.ArrayFormatter.formatErrorSync(result.left)[0]
  if (issue === undefined) return Either.left(invalid(root, "is not valid"))
  const field = issue.path.length === 0 ? root : formatPath(issue.path)
  return Either.left(invalid(field, oneLine(issue.message)))
}

/** @internal */
export const decode = (value: unknown): Either.Either<Grammar.RalliesFile, InvalidInput> =>
  Either.map(
    decodeInput(Grammar.RalliesFile, Array.isArray(value) ? { rallies: value } : value, "rallies file"),
    (file) => file.videoId === undefined ? { rallies: file.rallies } : file
  )

/** @internal */
export const parseText = (text: string, name = "rallies file"): Either.Either<Grammar.RalliesFile, InvalidInput> => {
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text
  if (body.trim().length === 0) {
    return Either.left(invalid(name, "is empty", `write {"rallies": [{"start": 12.5, "end": 31}]}`))
  }
  let value: unknown
  try {
    value = JSON.parse(body)
  } catch {
    const error = findSyntaxError(body)
    const where = error === undefined ? undefined : lineColumn(body, error.offset)
    return Either.left(
      invalid(
        name,
        oneLine(
          `is not valid JSON${where === undefined ? "" : ` at line ${where.line}, column ${where.column}`}: ${
            error?.reason ?? "syntax error"
          }`
        )
      )
    )
  }
  return decode(value)
}
