/**
 * What every vitest project of the workspace shares: workspace packages are
 * read from their TypeScript source, and before the run the packages are
 * built once (tests that start the `rallycache` command or an example run the
 * compiled JavaScript, as a user does) and the shared sample videos made.
 */
import { fileURLToPath } from "node:url"
import { defineProject, mergeConfig, type UserWorkspaceConfig } from "vitest/config"

/**
 * The export condition that maps `@rallycache/*` to `src/*.ts` in the workspace
 * (see each package's `exports`); published packages do not carry it.
 */
export const sourceCondition = "@rallycache/source"

const shared = (media: boolean, bundles: ReadonlyArray<string>) =>
  defineProject({
    resolve: { conditions: [sourceCondition, "module", "browser", "development|production"] },
    ssr: { resolve: { conditions: [sourceCondition, "node", "development|production"] } },
    test: {
      globalSetup: [
        fileURLToPath(new URL("./build.ts", import.meta.url)),
        ...(media ? [fileURLToPath(new URL("./media.ts", import.meta.url))] : []),
        ...(bundles.length > 0 ? [fileURLToPath(new URL("./bundle.ts", import.meta.url))] : [])
      ],
      provide: { exampleBundles: bundles },
      // `RALLYCACHE_TEST_CPU=cpu.jsonl pnpm test`: the CPU of each test file, one JSON line each.
      setupFiles: process.env["RALLYCACHE_TEST_CPU"] === undefined ? [] : [fileURLToPath(new URL("./cpu.ts", import.meta.url))]
    }
  })

/**
 * A vitest project of this workspace: `config` plus the shared settings.
 * `media: false` for a project whose tests use no generated video; `bundles`:
 * the entry points (`src/<entry>.ts`) of an example that its tests start as
 * processes, bundled once before the run (see `bundle.ts`).
 */
export const project = (
  config: UserWorkspaceConfig,
  options: { readonly media?: boolean; readonly bundles?: ReadonlyArray<string> } = {}
): UserWorkspaceConfig => mergeConfig(shared(options.media ?? true, options.bundles ?? []), config)
