#!/usr/bin/env node
// The installed `rallycache` command. The package ships TypeScript source,
// so this launcher registers tsx's ESM loader, then runs the CLI.
import { register } from "tsx/esm/api"

register()
await import(new URL("../src/bin.ts", import.meta.url).href)
