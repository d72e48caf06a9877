/**
 * The player page's assets: `player/index.html` as is, and
 * `player/player.ts` compiled to one ES module by esbuild when the server
 * starts (a few milliseconds; no build step to forget).
 *
 * @since 0.1.0
 */
import { FileSystem, Path } from "@effect/platform"
import * as esbuild from "esbuild"
import { Context, Effect, Layer } from "effect"
import { fileURLToPath } from "node:url"

/**
 * @since 0.1.0
 */
export interface PlayerAssetsShape {
  readonly html: string
  readonly script: string
}

/**
 * @since 0.1.0
 */
export class PlayerAssets extends Context.Tag("http-server/PlayerAssets")<PlayerAssets, PlayerAssetsShape>() {
  static readonly layer: Layer.Layer<PlayerAssets, Error, FileSystem.FileSystem | Path.Path> = Layer.effect(
    PlayerAssets,
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const path = yield* Path.Path
      const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "player")
      const html = yield* fs.readFileString(path.join(dir, "index.html"))
      const built = yield* Effect.tryPromise({
        try: () =>
          esbuild.build({
            entryPoints: [path.join(dir, "player.ts")],
            bundle: true,
            format: "esm",
            platform: "browser",
            target: "es2022",
            // The workspace packages' TypeScript sources, never a stale dist/.
            conditions: ["@rallycache/source"],
            minify: true,
            write: false,
            logLevel: "silent"
          }),
        catch: (cause) => new Error(`cannot build the player page: ${String(cause)}`)
      })
      const script = built.outputFiles[0]?.text
      if (script === undefined) return yield* Effect.fail(new Error("esbuild produced no player.js"))
      return { html, script }
    }).pipe(Effect.mapError((error) => error instanceof Error ? error : new Error(String(error))))
  )
}
