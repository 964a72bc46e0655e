/**
 * The `Date` header value (RFC 9110 6.6.1, IMF-fixdate), formatted at most once per second:
 * it has one-second resolution, and formatting a Date for every response is measurable on the
 * handshake path. Node's own HTTP server caches its Date header the same way.
 */
let cachedSecond = -1;
let cachedValue = '';

export function httpDate(nowMs: number = Date.now()): string {
  const second = Math.floor(nowMs / 1000);
  if (second !== cachedSecond) {
    cachedSecond = second;
    cachedValue = new Date(second * 1000).toUTCString();
  }
  return cachedValue;
}
