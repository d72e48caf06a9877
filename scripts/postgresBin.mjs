// Where the PostgreSQL server binaries are: `PG_BIN` when set, else the
// newest version Debian's packages installed (/usr/lib/postgresql/<version>/bin).
// Shared by scripts/setup.mjs and the tests' Postgres support.
import * as fs from "node:fs"
import * as path from "node:path"

/** @returns {string} */
export const postgresBin = (env = process.env, root = "/usr/lib/postgresql") => {
  if (env.PG_BIN !== undefined && env.PG_BIN.length > 0) return env.PG_BIN
  let versions = []
  try {
    versions = fs.readdirSync(root).filter((name) => fs.existsSync(path.join(root, name, "bin", "initdb")))
  } catch {
    // no PostgreSQL installed
  }
  const newest = versions.sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))[0]
  return path.join(root, newest ?? "<version>", "bin")
}
