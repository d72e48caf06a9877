import { describe, expect, it } from "@effect/vitest"
import { Either, FastCheck } from "effect"
import { RalliesFile } from "@rallycache/node"

const utf8 = (text: string) => new TextEncoder().encode(text)

const message = (input: string | Uint8Array): string => {
  const result = RalliesFile.parse(typeof input === "string" ? utf8(input) : input)
  if (Either.isRight(result)) throw new Error(`expected a failure, got ${JSON.stringify(result.right)}`)
  return result.left.message
}

const ok = (input: string | Uint8Array) => {
  const result = RalliesFile.parse(typeof input === "string" ? utf8(input) : input)
  if (Either.isLeft(result)) throw new Error(`expected success, got ${result.left.message}`)
  return result.right
}

describe("RalliesFile.parseTime", () => {
  it("reads seconds, m:ss and h:mm:ss", () => {
    expect(RalliesFile.parseTime("12.5")).toBe(12.5)
    expect(RalliesFile.parseTime("1:02.4")).toBeCloseTo(62.4, 9)
    expect(RalliesFile.parseTime("1:20")).toBe(80)
    expect(RalliesFile.parseTime("75:00")).toBe(4500)
    expect(RalliesFile.parseTime("1:02:03.5")).toBe(3723.5)
    expect(RalliesFile.parseTime(" 0:05 ")).toBe(5)
  })

  it("rejects what is not a time", () => {
    for (const bad of ["1:2x", "1:2", "1:60", "1:60:00", "", ":", "-1", "1e3", "NaN", "Infinity", "1:02:", "a:bc", "1::02"]) {
      expect(RalliesFile.parseTime(bad), bad).toBeUndefined()
    }
  })

  it.prop("formatted times parse back", [FastCheck.integer({ min: 0, max: 100 * 3600 * 1000 })], ([millis]) => {
    const seconds = millis / 1000
    const parsed = RalliesFile.parseTime(RalliesFile.formatTime(seconds))
    expect(parsed).toBeDefined()
    expect(Math.abs(parsed! - seconds)).toBeLessThan(1e-6)
  })

  it.prop(
    "formatted times without a fraction parse back",
    [FastCheck.integer({ min: 0, max: 1_000_000 })],
    ([whole]) => {
      expect(RalliesFile.parseTime(RalliesFile.formatTime(whole, 0))).toBe(whole)
    }
  )
})

describe("RalliesFile.parse", () => {
  it("reads the documented example", () => {
    const file = ok(`{ "videoId": "final-2026", "rallies": [{ "start": 12.5, "end": 31 }, { "start": "1:02.4", "end": "1:20" }] }`)
    expect(file.videoId).toBe("final-2026")
    expect(file.rallies.length).toBe(2)
    expect(file.rallies[0]).toEqual({ start: 12.5, end: 31 })
    expect(file.rallies[1]!.start).toBeCloseTo(62.4, 9)
    expect(file.rallies[1]!.end).toBe(80)
  })

  it("accepts a byte order mark, a bare array, and extra fields", () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8(`{"rallies":[{"start":0,"end":1,"label":"ace"}]}`)])
    expect(ok(bom).rallies).toEqual([{ start: 0, end: 1 }])
    expect(ok(`[{"start":"0:01","end":"0:02"}]`).rallies).toEqual([{ start: 1, end: 2 }])
    expect(ok(`{"rallies":[{"start":0,"end":1}]}`).videoId).toBeUndefined()
  })

  it("names the field and position of a bad time", () => {
    expect(message(`{"rallies":[{"start":0,"end":1},{"start":2,"end":"1:2x"}]}`)).toBe(
      `rallies[1].end: "1:2x" is not a time (use seconds or m:ss)`
    )
    expect(message(`{"rallies":[{"start":-1,"end":1}]}`)).toMatch(/^rallies\[0\]\.start: -1 is negative/)
    expect(message(`{"rallies":[{"start":1e999,"end":1}]}`)).toMatch(/^rallies\[0\]\.start: Infinity is not a finite/)
    expect(message(`{"rallies":[{"start":true,"end":1}]}`)).toMatch(/^rallies\[0\]\.start: true is not a time/)
    expect(message(`{"rallies":[{"start":"NaN","end":1}]}`)).toMatch(/^rallies\[0\]\.start: "NaN" is not a time/)
  })

  it("reports end before start on the end field", () => {
    expect(message(`{"rallies":[{"start":0,"end":1},{"start":"0:30","end":"0:20"}]}`)).toBe(
      "rallies[1].end: 20 is not after start 30 (a rally ends after it starts)"
    )
  })

  it("reports missing fields and wrong types", () => {
    expect(message(`{"rallies":[{"start":0}]}`)).toMatch(/^rallies\[0\]\.end: is missing/)
    expect(message(`{}`)).toMatch(/^rallies: is missing/)
    expect(message(`{"rallies":{}}`)).toMatch(/^rallies: expected an array of rallies, got an object/)
    expect(message(`{"rallies":[]}`)).toMatch(/^rallies: the list is empty/)
    expect(message(`{"rallies":[[1,2]]}`)).toMatch(/^rallies\[0\]: expected an object, got an array of 2 items/)
    expect(message(`"hello"`)).toMatch(/^rallies file: expected an object, got "hello"/)
    expect(message(`{"videoId":"","rallies":[{"start":0,"end":1}]}`)).toMatch(/^videoId: must not be empty/)
    expect(message(`{"videoId":7,"rallies":[{"start":0,"end":1}]}`)).toMatch(/^videoId: expected a string, got 7/)
  })

  it("reports JSON syntax errors with line and column", () => {
    expect(message(`{"rallies": [\n  {"start": 1, "end": 2},\n  {"start": 3 "end": 4}\n]}`)).toBe(
      `rallies file: is not valid JSON at line 3, column 15: unexpected "\\"", expected ',' or '}'`
    )
    expect(message(`{"rallies": [{"start": NaN, "end": 2}]}`)).toMatch(/line 1, column 24: NaN, Infinity/)
    expect(message(`{"rallies": [1,]}`)).toMatch(/trailing comma/)
    expect(message(`{"rallies": [`)).toMatch(/ends too early/)
    expect(message(``)).toMatch(/^rallies file: is empty/)
  })

  it("rejects invalid UTF-8 and UTF-16", () => {
    expect(message(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]))).toMatch(/not valid UTF-8/)
    expect(message(new Uint8Array([0xff, 0xfe, 0x7b, 0x00]))).toMatch(/UTF-16/)
  })

  it("survives deep nesting and huge arrays", () => {
    const depth = 200_000
    expect(message("[".repeat(depth) + "]".repeat(depth))).toMatch(/^rallies\[0\]: expected an object/)
    expect(message("[".repeat(depth))).toMatch(/ends too early/)
    const many = JSON.stringify({ rallies: Array.from({ length: RalliesFile.maxRallies + 1 }, (_, i) => ({ start: i, end: i + 1 })) })
    expect(message(many)).toMatch(/^rallies: has 100001 rallies/)
  })

  it.prop("any JSON value gives rallies or a one-line message, never a throw", [FastCheck.jsonValue()], ([value]) => {
    const result = RalliesFile.parse(utf8(JSON.stringify(value) ?? "null"))
    if (Either.isLeft(result)) {
      expect(result.left.message).not.toMatch(/\n/)
      expect(result.left.message.length).toBeLessThan(400)
    } else {
      for (const rally of result.right.rallies) {
        expect(Number.isFinite(rally.start) && rally.start >= 0 && rally.end > rally.start).toBe(true)
      }
    }
  })

  it.prop("arbitrary bytes never throw", [FastCheck.uint8Array({ maxLength: 200 })], ([bytes]) => {
    const result = RalliesFile.parse(bytes)
    if (Either.isLeft(result)) expect(result.left.message).not.toMatch(/\n/)
  })

  it.prop(
    "the syntax scanner agrees with JSON.parse",
    [FastCheck.oneof(FastCheck.json(), FastCheck.string(), FastCheck.json().map((s) => s.slice(0, -1)))],
    ([text]) => {
      let valid = true
      try {
        JSON.parse(text)
      } catch {
        valid = false
      }
      const result = RalliesFile.parse(utf8(text))
      if (!valid) {
        expect(Either.isLeft(result) && /not valid JSON|is empty/.test(result.left.message)).toBe(true)
      } else if (Either.isLeft(result)) {
        expect(result.left.message).not.toMatch(/not valid JSON/)
      }
    }
  )
})
