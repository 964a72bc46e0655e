/**
 * The monotonic clock (ms) of the time rules the proxy keeps by comparing times rather than by
 * running a timer: a server's failures within `fail_timeout` (and its `max_fails` window),
 * `slow_start` after it recovers, `proxy_next_upstream_timeout` across the tries of one request,
 * and the status pages that report them. One clock for all of them, so that they agree with each
 * other, and so that a test moves it forward past a `fail_timeout` instead of sleeping through
 * it (DESIGN.md, house style 9). Timers (`proxy_read_timeout` and the like) run on Node's timers.
 */
let skipped = 0;

/** Now on the proxy's monotonic clock, in ms (`performance.now()`, plus what tests skipped). */
export function monotonicNow(): number {
  return performance.now() + skipped;
}

/**
 * Moves the clock forward by `ms`, for tests in the proxy's own process: what would have expired
 * in that time has expired. The proxy itself never calls this; the clock never goes back.
 */
export function skipTime(ms: number): void {
  if (!(ms >= 0)) throw new RangeError(`skipTime(${ms}): the clock only moves forward`);
  skipped += ms;
}
