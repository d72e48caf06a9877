/**
 * Progress goes to stderr so that stdout carries only the table or the JSON.
 */
const started = performance.now()

export const log = (message: string): void => {
  const seconds = ((performance.now() - started) / 1000).toFixed(1).padStart(6)
  process.stderr.write(`[bench ${seconds}s] ${message}\n`)
}
