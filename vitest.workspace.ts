// vitest 3.2 still reads this file (with a deprecation notice in favour of
// `test.projects`); each entry has its own `vitest.config.ts`.
export default ["packages/*", "test", "examples/*"]
