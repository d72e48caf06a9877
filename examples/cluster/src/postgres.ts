/**
 * `pnpm --filter cluster-example postgres`
 *
 * A throwaway PostgreSQL server for trying the cluster: Debian's postgresql
 * 15 in a temporary folder on a free loopback port (the test harness of
 * `test/support/postgres.ts`). Prints `DATABASE_URL=...`; Ctrl-C stops it
 * and removes its folder.
 */
import { startServer } from "../../../test/support/postgres.js"

const server = await startServer().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : String(error))
  process.exit(1)
})
console.log(`DATABASE_URL=${server.url}`)
const stop = () => {
  server.stop()
  process.exit(0)
}
process.on("SIGINT", stop)
process.on("SIGTERM", stop)
setInterval(() => {}, 1 << 30)
