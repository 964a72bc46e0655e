/**
 * Whether an upstream response may be cached, and until when (ngx_http_upstream.c's
 * process_cache_control / process_expires / process_accel_expires / process_set_cookie /
 * process_vary, then ngx_http_file_cache_valid), each header unless `proxy_ignore_headers` names it:
 *
 * 1. `X-Accel-Expires`: seconds, or `@` and an absolute time; 0 caches nothing. It wins over both below.
 * 2. `Cache-Control`: `no-cache`, `no-store` or `private` caches nothing; `s-maxage=N`, else
 *    `max-age=N`, caches for N seconds (0: nothing).
 * 3. `Expires` (when neither gave a time): a date in the past, or no date, caches nothing.
 * 4. `Set-Cookie` present, or `Vary: *`, caches nothing.
 * 5. Without a time from the headers, `proxy_cache_valid` for the status; none caches nothing.
 *
 * nginx 1.22 applied 1-3 in the order the headers came; 1.23 made X-Accel-Expires win whatever the
 * order, which is what Sluice does.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { CacheSettings } from '../../config/types.js';
import { parseHttpTime } from '../answer/http-date.js';

/**
 * ms since the epoch (whole seconds, as nginx's valid_sec) until which the response is fresh, or
 * 0 when it must not be cached. See {@link isFresh}.
 */
export function cacheValidity(status: number, headers: IncomingHttpHeaders, ignore: ReadonlySet<string>, cache: CacheSettings, nowMs: number): number {
  const until = headerValidity(headers, ignore, nowMs);
  if (until >= 0) return until;
  const valid = validFor(status, cache);
  return valid === 0 ? 0 : Math.floor(nowMs / 1000) * 1000 + valid;
}

/**
 * What the response's headers say (1-4 above): 0 when they forbid caching (nginx's header handlers
 * turn u->cacheable off), the time they give, or -1 when they give none.
 */
export function headerValidity(headers: IncomingHttpHeaders, ignore: ReadonlySet<string>, nowMs: number): number {
  // nginx counts in whole seconds (ngx_time()).
  const now = Math.floor(nowMs / 1000) * 1000;
  if (!ignore.has('set-cookie') && headers['set-cookie'] !== undefined) return 0;
  if (!ignore.has('vary') && typeof headers.vary === 'string' && headers.vary.trim() === '*') return 0;
  let until = -1;
  const accel = ignore.has('x-accel-expires') ? undefined : headers['x-accel-expires'];
  if (typeof accel === 'string') {
    const v = accel.trim();
    const abs = v.startsWith('@');
    const n = /^\d+$/.test(abs ? v.slice(1) : v) ? Number(abs ? v.slice(1) : v) : NaN;
    if (!Number.isNaN(n)) {
      if (n === 0) return 0;
      until = abs ? n * 1000 : now + n * 1000;
    }
  }
  if (until < 0 && !ignore.has('cache-control')) {
    const cc = headers['cache-control'];
    if (cc !== undefined) {
      const v = (Array.isArray(cc) ? cc.join(',') : cc).toLowerCase();
      if (v.includes('no-cache') || v.includes('no-store') || v.includes('private')) return 0;
      const m = /s-maxage=(\d*)/.exec(v) ?? /max-age=(\d*)/.exec(v);
      if (m !== null) {
        if (!extensionValid(v, m.index + m[0].length)) return 0;
        const n = m[1] === '' ? 0 : Number(m[1]);
        if (n === 0) return 0;
        until = now + n * 1000;
      }
      // A stale-while-revalidate / stale-if-error value that is not a number stores nothing.
      for (const name of STALE_EXTENSIONS) {
        const at = v.indexOf(name);
        if (at >= 0 && !extensionValid(v, at + name.length)) return 0;
      }
    }
  }
  if (until < 0 && !ignore.has('expires')) {
    const ex = headers.expires;
    if (ex !== undefined) {
      const t = parseHttpTime(ex);
      if (t < 0 || t * 1000 < now) return 0;
      until = t * 1000;
    }
  }
  return until;
}

const STALE_EXTENSIONS = ['stale-while-revalidate=', 'stale-if-error='] as const;

/** nginx reads a Cache-Control number up to `,`, `;`, a space or the end; any other character after the digits makes the response uncacheable. */
function extensionValid(v: string, from: number): boolean {
  for (let i = from; i < v.length; i++) {
    const c = v[i] as string;
    if (c === ',' || c === ';' || c === ' ') return true;
    if (c < '0' || c > '9') return false;
  }
  return true;
}

function extensionSeconds(v: string, name: string): number | null {
  const at = v.indexOf(name);
  if (at < 0) return null;
  const digits = /^\d*/.exec(v.slice(at + name.length))?.[0] ?? '';
  return digits === '' ? 0 : Number(digits);
}

/**
 * The Cache-Control extensions of RFC 5861 as nginx (1.11.10+) reads them into an entry:
 * `stale-while-revalidate=N` lets the entry answer N seconds past its time while it is being
 * fetched (UPDATING, and STALE with proxy_cache_background_update) and also sets the
 * stale-if-error window; `stale-if-error=N` lets it answer N seconds past its time when the
 * upstream fails (error, timeout...), as if proxy_cache_use_stale named the failure.
 */
export function staleWindows(headers: IncomingHttpHeaders, ignore: ReadonlySet<string>): { readonly updatingSec: number; readonly errorSec: number } {
  const cc = ignore.has('cache-control') ? undefined : headers['cache-control'];
  if (cc === undefined) return { updatingSec: 0, errorSec: 0 };
  const v = (Array.isArray(cc) ? cc.join(',') : cc).toLowerCase();
  const swr = extensionSeconds(v, 'stale-while-revalidate=');
  const sie = extensionSeconds(v, 'stale-if-error=');
  return { updatingSec: swr ?? 0, errorSec: sie ?? swr ?? 0 };
}

/** nginx's freshness test (`c->valid_sec < now` is expired), in whole seconds. */
export function isFresh(validUntil: number, nowMs: number): boolean {
  return validUntil >= Math.floor(nowMs / 1000) * 1000;
}

/** proxy_cache_valid for a status: the first line naming it (or `any`), in ms; 0 for none. */
export function validFor(status: number, cache: CacheSettings): number {
  for (const rule of cache.valid) {
    if (rule.codes === null || rule.codes.includes(status)) return rule.time;
  }
  return 0;
}
