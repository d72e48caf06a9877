/**
 * `RALLYCACHE_BENCH_SMOKE=1`: the bench's own tests set it to run each
 * command as a README shows it, down every output path, at the smallest
 * counts (one repetition, a short low-resolution fixture). Its figures are
 * meaningless as measurements; only their shape is checked.
 */
export const smoke = process.env["RALLYCACHE_BENCH_SMOKE"] === "1"
