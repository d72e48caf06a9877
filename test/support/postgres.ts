/**
 * A throwaway PostgreSQL server for tests and the bench: Debian's
 * postgresql (whichever major version is installed), started in a
 * temporary data folder on a free loopback port and removed when its
 * scope closes. The server refuses to run as root, so
 * when the tests run as root it runs as the `postgres` user the Debian
 * package creates, on a folder that user owns.
 *
 * A machine without Postgres fails with one line naming the package to
 * install: the cluster tests must not skip silently.
 */
import { Effect, Scope } from "effect"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

/**
 * Where Debian's package puts the server binaries (the newest
 * `/usr/lib/postgresql/<major>/bin` installed); `PG_BIN` overrides it.
 */
export const binDir = process.env["PG_BIN"] ?? (() => {
  const root = "/usr/lib/postgresql"
  const majors = Fs.existsSync(root)
    ? Fs.readdirSync(root).filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a))
    : []
  const found = majors.map((major) => Path.join(root, major, "bin")).find((bin) => Fs.existsSync(Path.join(bin, "initdb")))
  return found ?? Path.join(root, "15", "bin")
})()

export interface Postgres {
  readonly url: string
  readonly port: number
  /** The server's log file, for a failing test to print. */
  readonly logFile: string
}

export const missingMessage =
  `PostgreSQL not found in ${binDir}: install Debian's postgresql package (apt-get install -y postgresql) or set PG_BIN`

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0

const run = (args: ReadonlyArray<string>) => {
  const [command, ...rest] = isRoot() ? ["runuser", "-u", "postgres", "--", ...args] : args
  const result = ChildProcess.spawnSync(command!, rest, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })
  if (result.status !== 0) {
    throw new Error(`${args.join(" ")} failed (${result.status}): ${result.stderr || result.stdout}`)
  }
  return result.stdout
}

/** A free loopback port: bind port 0, read it, release it. */
export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

const start = async (): Promise<Postgres & { readonly dir: string }> => {
  if (!Fs.existsSync(Path.join(binDir, "initdb")) || !Fs.existsSync(Path.join(binDir, "pg_ctl"))) {
    throw new Error(missingMessage)
  }
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "rallycache-pg-"))
  const data = Path.join(dir, "data")
  const logFile = Path.join(dir, "server.log")
  try {
    if (isRoot()) {
      const uid = Number(ChildProcess.execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim())
      const gid = Number(ChildProcess.execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim())
      Fs.chownSync(dir, uid, gid)
    }
    run([Path.join(binDir, "initdb"), "-D", data, "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"])
    // Another process can take the port between freePort and the bind: try a few.
    for (let attempt = 0;; attempt++) {
      const port = await freePort()
      const options = [
        `-p ${port}`,
        "-c listen_addresses=127.0.0.1",
        `-c unix_socket_directories=${dir}`,
        "-c fsync=off",
        "-c synchronous_commit=off",
        "-c full_page_writes=off",
        "-c max_connections=200"
      ].join(" ")
      try {
        run([Path.join(binDir, "pg_ctl"), "-D", data, "-l", logFile, "-o", options, "-w", "-t", "60", "start"])
        return { dir, port, logFile, url: `postgres://postgres@127.0.0.1:${port}/postgres` }
      } catch (error) {
        if (attempt >= 3) throw error
      }
    }
  } catch (error) {
    Fs.rmSync(dir, { recursive: true, force: true })
    throw error
  }
}

const stop = (server: { readonly dir: string }) => {
  try {
    run([Path.join(binDir, "pg_ctl"), "-D", Path.join(server.dir, "data"), "-m", "immediate", "-w", "stop"])
  } finally {
    Fs.rmSync(server.dir, { recursive: true, force: true })
  }
}

/** Start a server for the duration of the scope. */
export const scoped: Effect.Effect<Postgres, Error, Scope.Scope> = Effect.acquireRelease(
  Effect.tryPromise({ try: start, catch: (error) => error instanceof Error ? error : new Error(String(error)) }),
  (server) => Effect.sync(() => stop(server))
)

/** Start a server; call `stop` when done (for `beforeAll`/`afterAll`). */
export const startServer = async (): Promise<Postgres & { readonly stop: () => void }> => {
  const server = await start()
  return { ...server, stop: () => stop(server) }
}
