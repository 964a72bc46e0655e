/**
 * nginx's range filter (ngx_http_range_filter_module) on the responses the cache takes part in.
 * nginx lets it act on a proxied response only through `r->allow_ranges`, which
 * ngx_http_upstream_copy_allow_ranges sets instead of copying the upstream's `Accept-Ranges`:
 *
 * - on a response from the cache (HIT, STALE, UPDATING, REVALIDATED): any number of ranges, as
 *   for a static file (multipart/byteranges for several);
 * - on a response being fetched for the cache (MISS, EXPIRED, BYPASS: the client's Range and
 *   If-Range did not go upstream, proxy_cache_headers): one range at most (`r->single_range`),
 *   cut from the response as it streams while the whole of it goes into the cache; several
 *   ranges get the whole response.
 *
 * Either way the upstream must have sent `Accept-Ranges` (any value; proxy_hide_header hiding it
 * hides it from this too) and a Content-Length (a chunked response has no length for the filter),
 * the status must be 200, and nginx's header filter then adds its own `Accept-Ranges: bytes` to a
 * 200 it did not cut. A request that is not cacheable (fewer uses than proxy_cache_min_uses, a
 * range beyond proxy_cache_max_range_offset, headers that forbid caching) relays the upstream's
 * answer untouched, its Accept-Ranges included. Checked against nginx 1.22 side by side
 * (test/e2e/proxy-cache.e2e.test.ts).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { Transform } from 'node:stream';
import type { TransformCallback } from 'node:stream';
import type { Settings } from '../../config/types.js';
import { conditionalStatus, first } from '../../static/conditional.js';
import type { BodyPart } from '../../static/file-body.js';
import { ifRangeHolds, multipartBody, parseRanges } from '../../static/ranges.js';
import type { ByteRange, RangeAnswer } from '../../static/ranges.js';
import { errorPage } from '../answer/error-page.js';
import { parseHttpTime } from '../answer/http-date.js';
import type { LocalResponse } from '../answer/respond.js';
import { serverSignature } from '../answer/server-tokens.js';
import type { UpstreamMessage } from '../client/upstream-client.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';
import { lastValue, removeAll } from '../filters/compression.js';
import { applyHeadersFilter, withCharset } from '../headers/response-headers.js';
import { headerValidity } from './cache-policy.js';

/** What the range filter made of a response. */
export type RangeOutcome =
  | { readonly kind: 'whole' }
  | { readonly kind: 'unsatisfiable' }
  /** A 206: `parts` (ranges of the body, in body offsets, and multipart text) make its body. */
  | { readonly kind: 'partial'; readonly parts: readonly BodyPart[] };

const WHOLE: RangeOutcome = Object.freeze({ kind: 'whole' });
const UNSATISFIABLE: RangeOutcome = Object.freeze({ kind: 'unsatisfiable' });

/**
 * Whether the upstream's headers let nginx's range filter act (r->allow_ranges): an
 * Accept-Ranges that proxy_hide_header does not hide.
 */
export function upstreamAllowsRanges(headers: IncomingHttpHeaders, settings: Settings): boolean {
  return headers['accept-ranges'] !== undefined && !settings.proxyHideHeaders.includes('accept-ranges');
}

/** The body's length when the upstream gave one the filter can use (a Content-Length, not chunked), else -1. */
export function knownLength(headers: IncomingHttpHeaders): number {
  const cl = headers['content-length'];
  if (cl === undefined || headers['transfer-encoding'] !== undefined || !/^\d+$/.test(cl)) return -1;
  return Number(cl);
}

/**
 * ngx_http_range_header_filter for a 200 of `size` bytes whose range filter is allowed; `headers`
 * (the list about to be sent, add_header already applied: nginx's range filter runs after it) is
 * rewritten in place. `single`: several ranges get the whole body (a response being fetched).
 */
export function rangeFilter(ctx: RequestContext, settings: Settings, headers: string[], size: number, single: boolean): RangeOutcome {
  const files = settings.files;
  // The upstream's Accept-Ranges is never copied where ranges are allowed; with max_ranges 0 the
  // filter steps aside before it would add its own.
  removeAll(headers, 'accept-ranges');
  if (files.maxRanges === 0) return WHOLE;
  const range = first(ctx.headers.range);
  const etag = lastValue(headers, 'etag') ?? null;
  const lm = lastValue(headers, 'last-modified');
  const answer: RangeAnswer = range === undefined || !ifRangeHolds(first(ctx.headers['if-range']), etag, lm === undefined ? -1 : parseHttpTime(lm))
    ? { kind: 'whole' }
    : parseRanges(range, size, single ? { ...files, maxRanges: 1 } : files);
  if (answer.kind === 'unsatisfiable') return UNSATISFIABLE;
  if (answer.kind === 'whole') {
    headers.push('Accept-Ranges', 'bytes');
    return WHOLE;
  }
  const { ranges } = answer;
  if (ranges.length === 1) {
    const r = ranges[0] as ByteRange;
    setHeader(headers, 'Content-Length', String(r.end - r.start));
    headers.push('Content-Range', `bytes ${r.start}-${r.end - 1}/${size}`);
    return { kind: 'partial', parts: [r] };
  }
  const m = multipartBody(ranges, lastValue(headers, 'content-type') ?? '', size);
  setHeader(headers, 'Content-Type', `multipart/byteranges; boundary=${m.boundary}`);
  setHeader(headers, 'Content-Length', String(m.length));
  return { kind: 'partial', parts: m.parts };
}

/** Replaces a header's value where it stands (or adds it). */
function setHeader(headers: string[], name: string, value: string): void {
  const lower = name.toLowerCase();
  for (let i = 0; i < headers.length; i += 2) {
    if ((headers[i] as string).toLowerCase() === lower) {
      headers[i + 1] = value;
      removeAfter(headers, lower, i + 2);
      return;
    }
  }
  headers.push(name, value);
}

function removeAfter(headers: string[], lower: string, from: number): void {
  for (let i = headers.length - 2; i >= from; i -= 2) if ((headers[i] as string).toLowerCase() === lower) headers.splice(i, 2);
}

/**
 * nginx's 416 for a range it cannot satisfy (ngx_http_range_not_satisfiable, then its special
 * response): the headers of the 200 stay, without those of its body (type, length, validators,
 * Accept-Ranges), with `Content-Range: bytes *\/SIZE`, and go through add_header again for the
 * 416 (`always` ones then come twice, as from nginx).
 */
export function unsatisfiableResponse(ctx: RequestContext, settings: Settings, vars: Variables, headers: readonly string[], size: number): LocalResponse {
  const kept: string[] = ['Content-Type', withCharset(settings, 'text/html')];
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase();
    if (!DROPPED_ON_416.has(lower)) kept.push(headers[i] as string, headers[i + 1] as string);
  }
  kept.push('Content-Range', `bytes */${size}`);
  ctx.status = 416;
  applyHeadersFilter(settings, 416, ctx, vars, kept);
  const server = serverSignature(settings);
  return { status: 416, headers: kept, body: errorPage(416, undefined, undefined, server), drop: false, server };
}

const DROPPED_ON_416: ReadonlySet<string> = new Set(['content-type', 'content-length', 'etag', 'last-modified', 'accept-ranges', 'server', 'date']);

/**
 * One range of a body as it streams (ngx_http_range_singlepart_body): the bytes outside it are
 * read and dropped, so that the whole response still reaches the cache writer upstream of this.
 */
export function rangeSlice(range: ByteRange): Transform {
  let at = 0;
  return new Transform({
    transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
      const from = Math.max(range.start - at, 0);
      const to = Math.min(range.end - at, chunk.length);
      at += chunk.length;
      if (from < to) this.push(from === 0 && to === chunk.length ? chunk : chunk.subarray(from, to));
      done();
    },
  });
}

/**
 * The range filter on a response being fetched for the cache (one range at most), or null where
 * it does not act: the request not cacheable, the upstream's headers forbidding caching (nginx's
 * header handlers turn u->cacheable off before the Accept-Ranges is looked at), no Accept-Ranges,
 * or a body the compression filter took (it runs first and takes the length away). A response
 * the filter may act on loses the upstream's Accept-Ranges whatever its status.
 */
export function relayedRange(ctx: RequestContext, settings: Settings, cacheable: boolean, up: UpstreamMessage, headers: string[], compressed: boolean): RangeOutcome | null {
  if (!relayedCacheable(settings, cacheable, up) || !upstreamAllowsRanges(up.headers, settings)) return null;
  removeAll(headers, 'accept-ranges');
  const size = knownLength(up.headers);
  if (up.statusCode !== 200 || size < 0 || compressed || ctx.parent !== null) return null;
  return rangeFilter(ctx, settings, headers, size, true);
}

/**
 * nginx's u->cacheable once the upstream's headers are in: the request cacheable and no header
 * forbidding it (Cache-Control, Expires, X-Accel-Expires, Set-Cookie, Vary: *). It allows the
 * range filter, and the not_modified filter (r->disable_not_modified is its negation).
 */
function relayedCacheable(settings: Settings, cacheable: boolean, up: UpstreamMessage): boolean {
  return cacheable && headerValidity(up.headers, settings.buffering.ignoreHeaders, Date.now()) !== 0;
}

/**
 * ngx_http_not_modified_filter on a 200 being fetched for the cache (it runs before every other
 * header filter): 304 for a matching If-None-Match / If-Modified-Since, without the body's
 * headers (the whole response still goes into the cache), 412 for a failed If-Match /
 * If-Unmodified-Since; otherwise the status as it is.
 */
export function relayedNotModified(ctx: RequestContext, settings: Settings, cacheable: boolean, up: UpstreamMessage, headers: string[]): number {
  const status = up.statusCode ?? 0;
  if (status !== 200 || ctx.parent !== null || !relayedCacheable(settings, cacheable, up)) return status;
  const lm = up.headers['last-modified'];
  const etag = up.headers.etag;
  const cond = conditionalStatus(ctx.headers, settings.files, typeof lm === 'string' ? parseHttpTime(lm) : -1, typeof etag === 'string' ? etag : null);
  if (cond === 304) notModifiedHeaders(headers);
  return cond;
}

/** What ngx_http_not_modified_header_filter takes from a 304: the body's type, length, coding and Accept-Ranges. */
export function notModifiedHeaders(headers: string[]): void {
  for (const name of ['content-type', 'content-length', 'content-encoding', 'accept-ranges']) removeAll(headers, name);
}
