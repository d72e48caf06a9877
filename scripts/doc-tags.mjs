#!/usr/bin/env node
// Lists (or, with --fix, adds) the `@since` and `@category` tags missing from
// the JSDoc of each export of a package's public modules (src/*.ts, not
// src/internal/). Usage: node scripts/doc-tags.mjs [--fix] packages/core [...]
import * as fs from "node:fs"
import * as path from "node:path"

const fix = process.argv.includes("--fix")
const roots = process.argv.slice(2).filter((arg) => arg !== "--fix")
const declaration = /^export (?:declare )?(?:abstract )?(const|let|function|class|interface|type|enum|namespace) ([A-Za-z_$][\w$]*)(.*)$/

const categoryOf = (kind, name, rest, next) => {
  const text = rest + " " + next
  if (/Context\.Tag\(|Context\.GenericTag|Effect\.Tag\(/.test(text)) return "tags"
  if (/TaggedError|Data\.TaggedError|YieldableError/.test(text) || /Error$/.test(name) && kind === "type") return "errors"
  if (/^layer/.test(name)) return "layers"
  if (/^(make|from|of|empty)/.test(name)) return "constructors"
  if (kind === "interface" || kind === "type" || /Schema\.(Class|TaggedRequest|TaggedClass)/.test(text)) return "models"
  if (/=\s*Schema\./.test(text)) return "schemas"
  if (/^(is|has)[A-Z]/.test(name)) return "guards"
  return "utils"
}

let missing = 0
for (const root of roots) {
  const dir = path.join(root, "src")
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith(".ts")).sort()) {
    const full = path.join(dir, file)
    const lines = fs.readFileSync(full, "utf8").split("\n")
    const out = []
    for (let i = 0; i < lines.length; i++) {
      const m = declaration.exec(lines[i])
      if (m === null) {
        out.push(lines[i])
        continue
      }
      const [, kind, name, rest] = m
      // The JSDoc block ending on the line before, if any.
      let end = out.length - 1
      const hasDoc = end >= 0 && out[end].trim() === "*/"
      let start = end
      if (hasDoc) while (start > 0 && !out[start].trim().startsWith("/**")) start--
      const block = hasDoc ? out.slice(start, end + 1).join("\n") : ""
      const oneLineDoc = end >= 0 && /^\s*\/\*\*.*\*\/\s*$/.test(out[end])
      const text = oneLineDoc ? out[end] : block
      const needSince = !/@since/.test(text)
      const needCategory = !/@category/.test(text)
      if (needSince || needCategory) {
        missing++
        if (!fix) console.log(`${full}:${i + 1} ${name}: ${[needSince && "@since", needCategory && "@category"].filter(Boolean).join(", ")}`)
        else {
          const category = categoryOf(kind, name, rest, lines[i + 1] ?? "")
          const tags = [needSince ? " * @since 0.1.0" : undefined, needCategory ? ` * @category ${category}` : undefined].filter(Boolean)
          if (oneLineDoc) {
            const body = out[end].trim().replace(/^\/\*\*\s*/, "").replace(/\s*\*\/$/, "")
            const parts = ["/**"]
            const clean = body.replace(/@since\s+\S+/, "").trim()
            if (clean.length > 0) parts.push(` * ${clean}`, " *")
            const since = /@since\s+(\S+)/.exec(body)
            parts.push(` * @since ${since ? since[1] : "0.1.0"}`)
            if (needCategory) parts.push(` * @category ${category}`)
            parts.push(" */")
            out.splice(end, 1, ...parts)
          } else if (hasDoc) {
            out.splice(end, 0, ...tags)
          } else {
            out.push("/**", ...tags, " */")
          }
        }
      }
      out.push(lines[i])
    }
    if (fix) fs.writeFileSync(full, out.join("\n"))
  }
}
if (!fix) console.log(`${missing} exports lack @since or @category`)
process.exitCode = !fix && missing > 0 ? 1 : 0
