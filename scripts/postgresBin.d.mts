/** Where the PostgreSQL server binaries are: `PG_BIN`, else the newest /usr/lib/postgresql/<version>/bin. */
export declare const postgresBin: (env?: NodeJS.ProcessEnv, root?: string) => string
