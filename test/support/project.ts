/**
 * What every vitest project of the workspace shares: workspace packages are
 * read from their TypeScript source, and the packages are built once before
 * the run (tests that start the `rallycache` command or an example run the
 * compiled JavaScript, as a user does).
 */
import { fileURLToPath } from "node:url"
import { defineProject, mergeConfig, type UserWorkspaceConfig } from "vitest/config"

/**
 * The export condition that maps `@rallycache/*` to `src/*.ts` in the workspace
 * (see each package's `exports`); published packages do not carry it.
 */
export const sourceCondition = "@rallycache/source"

const shared = defineProject({
  resolve: { conditions: [sourceCondition, "module", "browser", "development|production"] },
  ssr: { resolve: { conditions: [sourceCondition, "module", "node", "development|production"] } },
  test: {
    globalSetup: [fileURLToPath(new URL("./build.ts", import.meta.url))]
  }
})

/** A vitest project of this workspace: `config` plus the shared settings. */
export const project = (config: UserWorkspaceConfig): UserWorkspaceConfig => mergeConfig(shared, config)
