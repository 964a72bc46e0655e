/**
 * The proxy cache's part in one request (nginx's ngx_http_upstream_cache and ngx_http_file_cache):
 *
 * - {@link cacheRequestFor}: whether the location caches this request at all (`proxy_cache`, the
 *   method in `proxy_cache_methods`, never an upgrade: a tunnel is not a response), and its key
 *   (`proxy_cache_key`, by default `$scheme$proxy_host$request_uri`).
 * - {@link CacheRequest.lookup}: BYPASS (`proxy_cache_bypass`), HIT, EXPIRED or MISS, the
 *   entry's Vary variant checked (another variant lives under a second key, md5(key + variant),
 *   as nginx's secondary key); UPDATING and proxy_cache_lock's wait for a key being fetched.
 * - {@link CacheRequest.useStale} (STALE) and {@link CacheRequest.revalidated} (REVALIDATED): an
 *   expired entry answering for a failed upstream, or refreshed by a 304.
 * - {@link CacheRequest.backgroundUpdate}: proxy_cache_background_update's STALE answer at once,
 *   the entry refreshed by a background request (session/background-update.ts).
 * - {@link CacheRequest.writerFor}: whether an upstream response is stored (`proxy_no_cache`,
 *   `proxy_cache_min_uses`, buffering on, the headers and `proxy_cache_valid`: cache-policy.ts)
 *   and the writer that tees its body into the entry.
 * - {@link hitResponse}: the stored response, through the same header rules and response filters
 *   as a relayed one (proxy_hide_header, add_header, charset, SSI, gzip/brotli), with conditional
 *   requests (304/412) and ranges answered.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { CacheSettings, Settings } from '../../config/types.js';
import { closeFile } from '../../static/open-file.js';
import { conditionalStatus, first } from '../../static/conditional.js';
import { fileBody } from '../../static/file-body.js';
import type { BodyPart } from '../../static/file-body.js';
import type { LocalResponse } from '../answer/respond.js';
import { removeAll } from '../filters/compression.js';
import { responseFilters } from '../filters/ssi/filter.js';
import type { BodyFilter, SsiDeps } from '../filters/ssi/filter.js';
import { parseHttpTime } from '../answer/http-date.js';
import type { StreamedResponse } from '../answer/streamed.js';
import type { UpstreamMessage } from '../client/upstream-client.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';
import { relayHeaders } from '../headers/response-headers.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import { closeEntry, entryHeader, openEntry } from './cache-entry.js';
import type { EntryMeta, OpenEntry } from './cache-entry.js';
import { cacheValidity, isFresh, staleWindows } from './cache-policy.js';
import { knownLength, notModifiedHeaders, rangeFilter, unsatisfiableResponse, upstreamAllowsRanges } from './cache-ranges.js';
import { CacheWriter, rewriteEntry } from './cache-writer.js';
import { CacheZone } from './cache-zone.js';
import type { Updating } from './cache-zone.js';
import type { ProxyError } from '../../core/errors.js';

export type CacheStatus = 'MISS' | 'HIT' | 'EXPIRED' | 'BYPASS' | 'STALE' | 'UPDATING' | 'REVALIDATED';

/** A value of proxy_cache_bypass / proxy_no_cache that is set: not empty and not "0". */
function anySet(values: CacheSettings['bypass'], ctx: RequestContext, vars: Variables): boolean {
  for (const v of values) {
    const s = vars.evaluate(v, ctx);
    if (s !== '' && s !== '0') return true;
  }
  return false;
}

/** md5 of the request's values of the headers a Vary names (nginx's variant). */
function variantOf(vary: string, headers: IncomingHttpHeaders): string {
  const h = createHash('md5');
  for (const raw of vary.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name === '') continue;
    const v = headers[name];
    h.update(`${name}:${Array.isArray(v) ? v.join(',') : v ?? ''}\n`);
  }
  return h.digest('hex');
}

/** The stale conditions (proxy_cache_use_stale) a failure of the tries matches. */
function staleCondition(error: ProxyError): string {
  // nginx adds "no live upstreams" to `error` (NGX_HTTP_UPSTREAM_FT_NOLIVE).
  return error.retry ?? (error.code === 'NO_LIVE_UPSTREAMS' ? 'error' : '');
}

export class CacheRequest {
  readonly zone: CacheZone;
  readonly settings: CacheSettings;
  readonly key: string;
  /** md5 of the key: the entry's file name. */
  readonly hash: string;
  /** Where a response is stored: the key's file, or its second-variant file. */
  storeHash: string;
  /** The entry found fresh (a HIT, or a stale one answering), its descriptor open until served. */
  entry: OpenEntry | null = null;
  /** An expired entry exists (EXPIRED): proxy_cache_use_stale and proxy_cache_revalidate may use it. */
  #stale = false;
  /** The expired entry is within its stale-if-error window (nginx's c->stale_error). */
  #staleError = false;
  /** proxy_cache_revalidate: the conditional headers sent upstream for the expired entry. */
  revalidateHeaders: readonly string[] = [];
  /**
   * nginx's u->cacheable before the response: false for fewer uses than proxy_cache_min_uses and
   * a range beyond proxy_cache_max_range_offset. The request then goes upstream as without the
   * cache (its Range and conditional headers included) and nothing is stored.
   */
  #cacheable = true;
  /** proxy_cache_lock timed out: the response goes to the client only (nginx stores nothing then). */
  #noStore = false;
  /** This request is the one fetching the key (the others see it as updating / locked). */
  #release: (() => void) | null = null;
  /** Answered STALE under proxy_cache_background_update: a background request is to refresh the entry. */
  #refresh = false;
  /** This is that background request (nginx's r->background): it never answers from the entry it refreshes. */
  #background = false;

  constructor(zone: CacheZone, settings: CacheSettings, key: string) {
    this.zone = zone;
    this.settings = settings;
    this.key = key;
    this.hash = CacheZone.hash(key);
    this.storeHash = this.hash;
  }

  /** The entry for this key and the request's variant, or null; sets storeHash to the variant's file. */
  async #open(ctx: RequestContext): Promise<OpenEntry | null> {
    this.storeHash = this.hash;
    let found = await openEntry(this.zone.fileFor(this.hash), this.key);
    if (found !== null && found.meta.vary !== null) {
      const variant = variantOf(found.meta.vary, ctx.headers);
      if (variant !== found.meta.variant) {
        await closeFile(found.fd);
        this.storeHash = CacheZone.hash(`${this.hash}\n${variant}`);
        found = await openEntry(this.zone.fileFor(this.storeHash), this.key);
        if (found !== null && found.meta.variant !== variant) {
          await closeFile(found.fd);
          found = null;
        }
      }
    }
    return found;
  }

  /**
   * Sets `ctx.cacheStatus`; true when an entry answers (a HIT, or UPDATING: an expired entry while
   * another request fetches it, under proxy_cache_use_stale updating); then `entry` is open.
   * proxy_cache_lock: a request for a key another request is fetching waits (at most
   * proxy_cache_lock_timeout) and looks again.
   */
  async lookup(ctx: RequestContext, vars: Variables): Promise<boolean> {
    await this.zone.loaded;
    if (anySet(this.settings.bypass, ctx, vars)) {
      ctx.cacheStatus = 'BYPASS';
      return false;
    }
    for (let waited = false; ;) {
      const before = this.#fetching();
      const found = await this.#open(ctx);
      if (found !== null && isFresh(found.meta.validUntil, Date.now())) return this.#answer(ctx, found, 'HIT');
      const other = this.#fetching();
      if (found !== null && before !== null && other === null) {
        // The fetch of the key ended while the entry was being opened: what was opened may be the
        // entry it replaced (nginx decides under the zone's lock; here, look again).
        await closeFile(found.fd);
        continue;
      }
      const updating = found !== null && (this.settings.useStale.includes('updating') || staleFor(found.meta, found.meta.updatingSec));
      if (updating && other !== null) return this.#answer(ctx, found, 'UPDATING');
      if (updating && other === null && this.#refreshable()) return this.#staleWhileRefreshing(ctx, found);
      this.#stale = found !== null;
      this.#staleError = found !== null && staleFor(found.meta, found.meta.errorSec);
      if (found !== null) {
        this.revalidateHeaders = this.settings.revalidate ? conditionalHeaders(found.meta.headers) : [];
        await closeFile(found.fd);
      }
      if (this.settings.lock && other !== null && !waited) {
        waited = true;
        const timeLeft = this.settings.lockTimeout - (performance.now() - other.since);
        if (!(await settledWithin(other.done, timeLeft))) this.#noStore = true;
        else continue;
      }
      ctx.cacheStatus = found === null ? 'MISS' : 'EXPIRED';
      break;
    }
    this.zone.counters.misses++;
    // ngx_http_upstream_cache: NGX_HTTP_CACHE_SCARCE (proxy_cache_min_uses), then ngx_http_upstream_cache_check_range.
    this.#cacheable = this.zone.countUse(this.storeHash, this.settings.minUses) && !rangeBeyondOffset(first(ctx.headers.range), this.settings.maxRangeOffset);
    if (this.#cacheable && !this.#noStore && this.#fetching() === null) this.#hold();
    return false;
  }

  /** Whether the response may be stored and the client's Range and conditions stay here (nginx's u->cacheable). */
  get cacheable(): boolean {
    return this.#cacheable;
  }

  /**
   * proxy_cache_background_update, which nginx applies only where the expired entry may answer
   * while it is fetched (`proxy_cache_use_stale updating`, or the entry's stale-while-revalidate
   * window: ngx_http_upstream_cache, NGX_HTTP_CACHE_STALE) and never in the background request
   * itself.
   */
  #refreshable(): boolean {
    return this.settings.backgroundUpdate && !this.#background;
  }

  /**
   * The expired entry answers at once (STALE) and this request takes the key as being fetched, for
   * the background request {@link backgroundUpdate} hands it to: requests meanwhile see UPDATING.
   */
  #staleWhileRefreshing(ctx: RequestContext, found: OpenEntry): true {
    this.#stale = true;
    this.revalidateHeaders = this.settings.revalidate ? conditionalHeaders(found.meta.headers) : [];
    this.#refresh = true;
    this.#hold();
    return this.#answer(ctx, found, 'STALE');
  }

  /**
   * The request that refreshes the entry this one answered STALE (proxy_cache_background_update),
   * or null when there is none to make. It holds the key as being fetched from now on and goes
   * upstream without a lookup (nginx's background subrequest shares the request's cache state),
   * with the expired entry for proxy_cache_revalidate and proxy_cache_use_stale.
   */
  backgroundUpdate(): CacheRequest | null {
    if (!this.#refresh) return null;
    this.#refresh = false;
    const bg = new CacheRequest(this.zone, this.settings, this.key);
    bg.#background = true;
    bg.storeHash = this.storeHash;
    bg.#stale = true;
    bg.#staleError = this.#staleError;
    bg.revalidateHeaders = this.revalidateHeaders;
    bg.#cacheable = this.zone.countUse(this.storeHash, this.settings.minUses);
    bg.#release = this.#release;
    this.#release = null;
    return bg;
  }

  #answer(ctx: RequestContext, found: OpenEntry, status: CacheStatus): true {
    ctx.cacheStatus = status;
    this.entry = found;
    this.zone.counters.hits++;
    this.zone.used(this.storeHash, found.bodyStart + found.length);
    return true;
  }

  /** The fetch of this key by another request, unless it is older than proxy_cache_lock_age. */
  #fetching(): Updating | null {
    const u = this.zone.updating.get(this.storeHash);
    if (u === undefined || performance.now() - u.since >= this.settings.lockAge) return null;
    return u;
  }

  #hold(): void {
    let resolve: () => void = noop;
    const done = new Promise<void>((r) => void (resolve = r));
    const mine: Updating = { since: performance.now(), done };
    this.zone.updating.set(this.storeHash, mine);
    this.#release = () => {
      if (this.zone.updating.get(this.storeHash) === mine) this.zone.updating.delete(this.storeHash);
      resolve();
    };
  }

  /** The fetch is over (stored, not stored, failed): requests waiting for the key go on. Idempotent. */
  release(): void {
    const r = this.#release;
    this.#release = null;
    r?.();
  }

  /**
   * proxy_cache_use_stale after the tries failed (`error`, `timeout`, `invalid_header`) or
   * answered with a status it names (`http_500`...): reopens the expired entry to answer with
   * (STALE). False when there is none or the condition is not listed.
   */
  async useStale(ctx: RequestContext, failure: ProxyError | number): Promise<boolean> {
    if (!this.#stale) return false;
    const condition = typeof failure === 'number' ? `http_${failure}` : staleCondition(failure);
    // stale-if-error stands for the failures of the tries (nginx 1.22's ngx_http_upstream_next),
    // not for a status the upstream answered with (ngx_http_upstream_test_next checks the mask only).
    if (!this.settings.useStale.includes(condition) && !(typeof failure !== 'number' && this.#staleError)) return false;
    if (this.#background) {
      // nginx answers the background request with the stale entry, which goes nowhere: the entry
      // stays as it is, for the next request to try again.
      this.release();
      return true;
    }
    const found = await this.#open(ctx);
    if (found === null) return false;
    this.release();
    this.#answer(ctx, found, 'STALE');
    return true;
  }

  /** Whether a 304 from upstream revalidates the expired entry (proxy_cache_revalidate). */
  revalidates(status: number): boolean {
    return status === 304 && this.#stale && this.revalidateHeaders.length > 0;
  }

  /**
   * proxy_cache_revalidate: the upstream's 304 makes the expired entry fresh again (its lifetime
   * from the 304's headers, else from the stored response's, else proxy_cache_valid) and it
   * answers (REVALIDATED); the entry's header is rewritten in a new file renamed over the old.
   */
  async revalidated(ctx: RequestContext, up: UpstreamMessage, route: ProxyRoute): Promise<boolean> {
    const found = await this.#open(ctx);
    if (found === null) return false;
    this.release();
    const now = Date.now();
    // nginx: the 304's own Cache-Control / Expires / X-Accel-Expires first, then the stored
    // response's, then proxy_cache_valid for the stored status.
    const ignore = route.settings.buffering.ignoreHeaders;
    const fromReply = cacheValidity(found.meta.status, up.headers, ignore, { ...this.settings, valid: [] }, now);
    const replied = fromReply !== 0 && isFresh(fromReply, now);
    const until = replied ? fromReply : cacheValidity(found.meta.status, headerObject(found.meta.headers), ignore, this.settings, now);
    if (until !== 0 && isFresh(until, now)) {
      // The stale windows come with the lifetime: the 304's when it gave one, else the entry's.
      const windows = replied ? staleWindows(up.headers, ignore) : { updatingSec: found.meta.updatingSec ?? 0, errorSec: found.meta.errorSec ?? 0 };
      const meta: EntryMeta = { ...found.meta, validUntil: until, date: now, ...windows };
      const tempDir = this.zone.config.useTempPath ? route.settings.buffering.proxyTempPath.path : null;
      await rewriteEntry(this.zone, this.storeHash, entryHeader(meta), found, tempDir);
    }
    if (this.#background) {
      // Nobody reads the answer of a background request.
      await closeFile(found.fd);
      return true;
    }
    this.#answer(ctx, found, 'REVALIDATED');
    return true;
  }

  /**
   * The writer for an upstream response, or null when it is not stored: `buffered` is false under
   * proxy_buffering off (nginx caches only what its event pipe buffers), proxy_no_cache set,
   * fewer uses than proxy_cache_min_uses, a status or headers that forbid it, a 101.
   */
  writerFor(up: UpstreamMessage, route: ProxyRoute, ctx: RequestContext, vars: Variables, buffered: boolean, onError: (err: NodeJS.ErrnoException) => void): CacheWriter | null {
    const w = this.#writer(up, route, ctx, vars, buffered, onError);
    if (w === null) this.release();
    else void w.settled.then(() => this.release());
    return w;
  }

  #writer(up: UpstreamMessage, route: ProxyRoute, ctx: RequestContext, vars: Variables, buffered: boolean, onError: (err: NodeJS.ErrnoException) => void): CacheWriter | null {
    const status = up.statusCode ?? 0;
    if (!buffered || status === 101 || !this.#cacheable || this.#noStore) return null;
    if (anySet(this.settings.noCache, ctx, vars)) return null;
    const now = Date.now();
    const s = route.settings;
    const until = cacheValidity(status, up.headers, s.buffering.ignoreHeaders, this.settings, now);
    if (until === 0 || !isFresh(until, now)) return null;
    const resVary = s.buffering.ignoreHeaders.has('vary') ? undefined : up.headers.vary;
    const vary = typeof resVary === 'string' && resVary.trim() !== '' ? resVary : null;
    const meta: EntryMeta = {
      key: this.key, validUntil: until, date: now, status, message: up.statusMessage ?? '',
      headers: up.rawHeaders, vary, variant: vary === null ? null : variantOf(vary, ctx.headers),
      ...staleWindows(up.headers, s.buffering.ignoreHeaders),
    };
    const cl = up.headers['content-length'];
    const expected = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : -1;
    const tempDir = this.zone.config.useTempPath ? s.buffering.proxyTempPath.path : null;
    return new CacheWriter(this.zone, this.storeHash, entryHeader(meta), tempDir, expected, onError);
  }
}

/** The If-Modified-Since / If-None-Match nginx sends to revalidate an entry (from its Last-Modified and ETag). */
function conditionalHeaders(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    if (lower === 'last-modified') out.push('If-Modified-Since', raw[i + 1] as string);
    else if (lower === 'etag') out.push('If-None-Match', raw[i + 1] as string);
  }
  return out;
}

/** Whether an expired entry is within `sec` seconds past its time (nginx: valid_sec + updating_sec / error_sec >= now). */
function staleFor(meta: EntryMeta, sec: number | undefined): boolean {
  return sec !== undefined && sec > 0 && isFresh(meta.validUntil + sec * 1000, Date.now());
}

/** Whether `p` settles within `ms` (a timer that does not outlive the wait). */
function settledWithin(p: Promise<void>, ms: number): Promise<boolean> {
  if (ms <= 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void p.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function noop(): void {}

/**
 * The cache's part in a request to a proxied location, or null where it takes none: no
 * proxy_cache, a method outside proxy_cache_methods, an upgrade (a tunnel is never cached).
 */
export function cacheRequestFor(route: ProxyRoute, ctx: RequestContext, vars: Variables, zones: ReadonlyMap<string, CacheZone>, upgrade: boolean): CacheRequest | null {
  const s = route.settings.cache;
  if (s.zone === null || upgrade || !s.methods.includes(ctx.method)) return null;
  const zone = zones.get(s.zone);
  if (zone === undefined) return null;
  const key = s.key === null
    ? `${vars.get('scheme', ctx) ?? ''}${vars.get('proxy_host', ctx) ?? ''}${vars.get('request_uri', ctx) ?? ''}`
    : vars.evaluate(s.key, ctx);
  return new CacheRequest(zone, s, key);
}

/**
 * proxy_cache_max_range_offset (ngx_http_upstream_cache_check_range): a range whose first part
 * starts at the offset or further in, or counts from the end, is not cached; with 0, no range is.
 */
function rangeBeyondOffset(range: string | undefined, max: number | null): boolean {
  if (range === undefined || max === null) return false;
  if (max === 0) return true;
  if (range.length < 7 || range.slice(0, 6).toLowerCase() !== 'bytes=') return false;
  const rest = range.slice(6).replace(/^ */, '');
  if (rest.startsWith('-')) return true;
  const digits = /^\d*/.exec(rest)?.[0] ?? '';
  return digits !== '' && Number(digits) >= max;
}

/** The upstream headers of an entry as Node parses them (for `$upstream_http_*`, If-* checks). */
function headerObject(raw: readonly string[]): IncomingHttpHeaders {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const v = raw[i + 1] as string;
    const had = out[name];
    if (had === undefined) out[name] = name === 'set-cookie' ? [v] : v;
    else if (Array.isArray(had)) had.push(v);
    else out[name] = `${had}, ${v}`;
  }
  return out;
}

/** Replaces (or adds) one header in a flat list. */
function setHeader(headers: string[], name: string, value: string | null): void {
  const lower = name.toLowerCase();
  for (let i = headers.length - 2; i >= 0; i -= 2) if ((headers[i] as string).toLowerCase() === lower) headers.splice(i, 2);
  if (value !== null) headers.push(name, value);
}

/**
 * The response for a HIT: status and headers as stored, through the relay's header rules, the
 * body from the file. nginx sends a cached response through the whole filter chain
 * (ngx_http_upstream_cache_send -> ngx_http_send_header), in its order: a 200 answers
 * If-None-Match / If-Modified-Since with 304 and a failed If-Match / If-Unmodified-Since with 412
 * (the not_modified filter runs first); then SSI and gzip/brotli (`deps`: what SSI needs) as on a
 * relayed response, which take the length away when they change the body; last, a 200 of known
 * length answers Range as nginx's range filter does where the upstream allowed it
 * (cache-ranges.ts), so a compressed hit goes whole. Returns a status instead for a 412, which
 * the session answers as nginx's page, and the whole response for a 416.
 */
export function hitResponse(cache: CacheRequest, route: ProxyRoute, ctx: RequestContext, vars: Variables, deps: SsiDeps): StreamedResponse | LocalResponse | number {
  const e = cache.entry as OpenEntry;
  cache.entry = null;
  const { meta } = e;
  const settings: Settings = route.settings;
  ctx.upstreamHeaders = headerObject(meta.headers);
  const status = meta.status;
  ctx.status = status;
  const headers = relayHeaders(ctx, route, vars, status, meta.headers, null);
  // The stored body has the length the file says; one the upstream sent without a length
  // (chunked) goes out chunked again, as nginx sends it (content_length_n stays -1).
  setHeader(headers, 'Content-Length', knownLength(ctx.upstreamHeaders) < 0 ? null : String(e.length));
  const start = e.bodyStart;
  const end = e.bodyStart + e.length;
  if (status === 200) {
    const lm = ctx.upstreamHeaders['last-modified'];
    const lastModified = typeof lm === 'string' ? parseHttpTime(lm) : -1;
    const etag = typeof ctx.upstreamHeaders.etag === 'string' ? ctx.upstreamHeaders.etag : null;
    const cond = conditionalStatus(ctx.headers, settings.files, lastModified, etag);
    if (cond === 412) {
      void closeFile(e.fd);
      return 412;
    }
    if (cond === 304) {
      void closeFile(e.fd);
      ctx.status = 304;
      notModifiedHeaders(headers);
      // The later header filters still see the 304 (SSI may drop its validators, as on a relay).
      responseFilters(ctx, settings, 304, headers, deps);
      return { status: 304, headers, body: null };
    }
  }
  // SSI and compression (filter.ts), after add_header and charset (relayHeaders) as in nginx.
  const filter = responseFilters(ctx, settings, status, headers, deps);
  let code = status;
  let parts: BodyPart[] = [{ start: 0, end: e.length }];
  // Ranges from the cache (cache-ranges.ts): the upstream's Accept-Ranges lets nginx's range
  // filter act on the entry, for a 200 whose length the upstream gave. A filter that took the
  // body (SSI, gzip) took the length and Accept-Ranges with it: the range filter steps aside
  // (nginx's content_length_n == -1) and the client gets the whole 200.
  if (upstreamAllowsRanges(ctx.upstreamHeaders, settings)) {
    removeAll(headers, 'accept-ranges');
    const size = knownLength(ctx.upstreamHeaders);
    if (status === 200 && size === e.length && ctx.parent === null && filter === null) {
      const r = rangeFilter(ctx, settings, headers, size, false);
      if (r.kind === 'unsatisfiable') {
        void closeFile(e.fd);
        return unsatisfiableResponse(ctx, settings, vars, headers, size);
      }
      if (r.kind === 'partial') {
        code = 206;
        ctx.status = 206;
        parts = [...r.parts];
      }
    }
  }
  // An empty body still goes through a filter that took it (an empty gzip stream, as relayed).
  if (ctx.method === 'HEAD' || (end === start && filter === null) || status === 204 || status === 304) {
    void closeFile(e.fd);
    return { status: code, headers, body: null };
  }
  let sent = 0;
  for (const p of parts) if (typeof p !== 'string') sent += p.end - p.start;
  cache.zone.counters.bytesFromCache += sent;
  const body = end === start ? emptyBody(e) : storedBody(cache, e, parts);
  return { status: code, headers, body: filter === null ? body : filtered(filter, body) };
}

/** The parts of an entry's body, from memory or from the file. */
function storedBody(cache: CacheRequest, e: OpenEntry, parts: readonly BodyPart[]): Readable {
  if (e.data !== null) {
    // Read whole with the header (cache-entry.ts): the body goes from memory, and the descriptor
    // is closed at once (a close through the thread pool cost more than the hit, profiled).
    closeEntry(e.fd);
    const data = e.data;
    const chunks = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : data.subarray(p.start, p.end)));
    return Readable.from(chunks.length === 1 ? chunks : [Buffer.concat(chunks)], { objectMode: false });
  }
  const at = e.bodyStart;
  const inFile = parts.map((p) => (typeof p === 'string' ? p : { start: at + p.start, end: at + p.end }));
  return fileBody(e.fd, cache.zone.fileFor(cache.storeHash), inFile);
}

function emptyBody(e: OpenEntry): Readable {
  closeEntry(e.fd);
  return Readable.from([], { objectMode: false });
}

/**
 * The body through the filters the head chose; a client gone before the end (the output
 * destroyed) stops the read of the entry too, which frees its descriptor.
 */
function filtered(filter: BodyFilter, body: Readable): Readable {
  const out = filter.attach(body);
  out.once('close', () => {
    if (!body.readableEnded) body.destroy();
  });
  return out;
}

