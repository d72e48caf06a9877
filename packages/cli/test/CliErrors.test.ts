import { Command, Options, ValidationError } from "@effect/cli"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { describe, expect, it } from "@effect/vitest"
import * as Errors from "@rallycache/core/Errors"
import { Cause, Effect, Exit, Fiber } from "effect"
import * as CliErrors from "../src/CliErrors.js"

/** A real @effect/cli parse failure: `--port abc` for an integer flag. */
const parseFailure = (args: ReadonlyArray<string>) =>
  Command.run(
    Command.make("probe", { port: Options.integer("port") }, () => Effect.void),
    { name: "probe", version: "0.0.0" }
  )(["node", "probe", ...args]).pipe(
    CliErrors.withOneLineErrors,
    Effect.provide(NodeContext.layer),
    Effect.flip
  )

/** What `teardown` writes to stderr and the code it exits with. */
const tornDown = (exit: Exit.Exit<unknown, unknown>, options?: Parameters<typeof CliErrors.teardown>[0]) => {
  const written: Array<string> = []
  const write = process.stderr.write
  process.stderr.write = ((chunk: string) => {
    written.push(chunk)
    return true
  }) as typeof process.stderr.write
  let code: number | undefined
  try {
    CliErrors.teardown(options)(exit, (c) => {
      code = c
    })
  } finally {
    process.stderr.write = write
  }
  return { code, stderr: written.join("") }
}

describe("CliErrors", () => {
  it("names the four exit codes", () => {
    expect(CliErrors.ExitCode).toEqual({ success: 0, failure: 1, usage: 2, interrupted: 130 })
  })

  it("0: a program that succeeded", () => {
    expect(CliErrors.exitCodeOfExit(Exit.succeed(undefined))).toBe(0)
    expect(tornDown(Exit.succeed(1))).toEqual({ code: 0, stderr: "" })
  })

  it("1: a runtime failure, a defect, an export that failed", () => {
    const failed = new Errors.ExportFailed({ reason: "signal", detail: "ffmpeg killed", transient: true })
    expect(CliErrors.exitCodeOf(failed)).toBe(1)
    expect(CliErrors.exitCodeOf(new Error("boom"))).toBe(1)
    expect(CliErrors.exitCodeOfExit(Exit.fail(failed))).toBe(1)
    expect(CliErrors.exitCodeOfExit(Exit.die(new Error("bug")))).toBe(1)
    const out = tornDown(Exit.fail(failed), { prefix: "batch" })
    expect(out.code).toBe(1)
    expect(out.stderr).toBe(`batch: ${failed.message}\n`)
  })

  it.effect("2: a bad flag value, named by its flag, in one line", () =>
    Effect.gen(function*() {
      const argv = ["node", "probe", "--port", "abc"]
      const error = yield* parseFailure(argv.slice(2))
      expect(ValidationError.isValidationError(error)).toBe(true)
      expect(CliErrors.exitCodeOf(error)).toBe(2)
      expect(CliErrors.messageOf(error, { argv })).toBe("--port: 'abc' is not an integer")
      expect(CliErrors.messageOf(error, { argv, program: "probe" })).toBe(
        "--port: 'abc' is not an integer (see probe --help)"
      )
      expect(CliErrors.messageOf(error, { argv: ["node", "probe", "--port=abc"] })).toBe(
        "--port: 'abc' is not an integer"
      )
      const out = tornDown(Exit.fail(error), { prefix: "probe", argv })
      expect(out).toEqual({ code: 2, stderr: "probe: --port: 'abc' is not an integer\n" })
    }))

  it.effect("2: a missing flag", () =>
    Effect.gen(function*() {
      const error = yield* parseFailure([])
      expect(CliErrors.exitCodeOf(error)).toBe(2)
      expect(CliErrors.messageOf(error)).toMatch(/--port/)
      expect(CliErrors.messageOf(error)).not.toMatch(/\n|\u001b/)
    }))

  it("2: bad usage and bad input", () => {
    const usage = new CliErrors.UsageError({ message: "--only 9: the video has 3 rallies" })
    const input = new Errors.InvalidInput({ field: "rallies", reason: "not a list", fix: "pass an array" })
    expect(CliErrors.exitCodeOf(usage)).toBe(2)
    expect(CliErrors.exitCodeOf(input)).toBe(2)
    expect(CliErrors.exitCodeOfExit(Exit.fail(input))).toBe(2)
    expect(CliErrors.messageOf(usage)).toBe("--only 9: the video has 3 rallies")
    expect(tornDown(Exit.fail(input)).code).toBe(2)
  })

  it.effect("130: interrupted, or what a server asks for instead, with nothing written", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.never)
      const exit = yield* Fiber.interrupt(fiber)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(CliErrors.exitCodeOfExit(exit)).toBe(130)
      expect(CliErrors.exitCodeOfExit(exit, { interrupted: 0 })).toBe(0)
      expect(tornDown(exit)).toEqual({ code: 130, stderr: "" })
      expect(tornDown(exit, { interrupted: 0 })).toEqual({ code: 0, stderr: "" })
    }))

  it("a CliExit ends with the code it carries, and its message is not printed again", () => {
    expect(CliErrors.exitCodeOf(new CliErrors.CliExit({ code: 2 }))).toBe(2)
    expect(CliErrors.exitCodeOfExit(Exit.fail(new CliErrors.CliExit({ code: 1 })))).toBe(1)
  })

  it("a failure is one line without colour codes, of readable length", () => {
    expect(CliErrors.messageOf(new Error("\u001b[31mno\u001b[0m\n  such   file\n"))).toBe("no such file")
    expect(CliErrors.messageOf("plain text")).toBe("plain text")
    expect(CliErrors.oneLine("x".repeat(800))).toHaveLength(500)
    expect(CliErrors.firstError(Cause.die("bug"))).toEqual(expect.objectContaining({ value: "bug" }))
  })

  it("a defect is one line, or its whole cause with fullDefects", () => {
    const exit = Exit.die(new Error("bug"))
    expect(tornDown(exit, { prefix: "runner" })).toEqual({ code: 1, stderr: "runner: bug\n" })
    const full = tornDown(exit, { prefix: "runner", fullDefects: true })
    expect(full.code).toBe(1)
    expect(full.stderr).toMatch(/^runner stopped: Error: bug\n/)
  })

  it("argvOf drops the -- of `pnpm start -- --flag`", () => {
    expect(CliErrors.argvOf(["node", "main", "--", "--port", "1"])).toEqual(["node", "main", "--port", "1"])
    expect(CliErrors.argvOf(["node", "main", "--port", "1"])).toEqual(["node", "main", "--port", "1"])
  })
})
