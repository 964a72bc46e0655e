/**
 * The proxy cache's part in one request (nginx's ngx_http_upstream_cache and ngx_http_file_cache):
 *
 * - {@link cacheRequestFor}: whether the location caches this request at all (`proxy_cache`, the
 *   method in `proxy_cache_methods`, never an upgrade: a tunnel is not a response), and its key
 *   (`proxy_cache_key`, by default `$scheme$proxy_host$request_uri`).
 * - {@link CacheRequest.lookup}: BYPASS (`proxy_cache_bypass`), HIT, EXPIRED or MISS, the
 *   entry's Vary variant checked (another variant lives under a second key, md5(key + variant),
 *   as nginx's secondary key).
 * - {@link CacheRequest.writerFor}: whether an upstream response is stored (`proxy_no_cache`,
 *   `proxy_cache_min_uses`, buffering on, the headers and `proxy_cache_valid`: cache-policy.ts)
 *   and the writer that tees its body into the entry.
 * - {@link hitResponse}: the stored response, through the same header rules as a relayed one
 *   (proxy_hide_header, add_header...), with conditional requests (304/412) and a single range
 *   answered from the file.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { CacheSettings, Settings } from '../../config/types.js';
import { closeFile } from '../../static/open-file.js';
import { conditionalStatus, first } from '../../static/conditional.js';
import { fileBody } from '../../static/file-body.js';
import { parseRanges } from '../../static/ranges.js';
import { parseHttpTime } from '../answer/http-date.js';
import type { StreamedResponse } from '../answer/streamed.js';
import type { UpstreamMessage } from '../client/upstream-client.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';
import { relayHeaders } from '../headers/response-headers.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import { entryHeader, openEntry } from './cache-entry.js';
import type { EntryMeta, OpenEntry } from './cache-entry.js';
import { cacheValidity } from './cache-policy.js';
import { CacheWriter } from './cache-writer.js';
import { CacheZone } from './cache-zone.js';

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

export class CacheRequest {
  readonly zone: CacheZone;
  readonly settings: CacheSettings;
  readonly key: string;
  /** md5 of the key: the entry's file name. */
  readonly hash: string;
  /** Where a response is stored: the key's file, or its second-variant file. */
  storeHash: string;
  /** The entry found fresh (a HIT), its descriptor open until the hit is served. */
  entry: OpenEntry | null = null;
  /** proxy_cache_min_uses was reached: the response may be stored. */
  #enoughUses = true;

  constructor(zone: CacheZone, settings: CacheSettings, key: string) {
    this.zone = zone;
    this.settings = settings;
    this.key = key;
    this.hash = CacheZone.hash(key);
    this.storeHash = this.hash;
  }

  /** Sets `ctx.cacheStatus`; true for a HIT (then `entry` is open). */
  async lookup(ctx: RequestContext, vars: Variables): Promise<boolean> {
    await this.zone.loaded;
    if (anySet(this.settings.bypass, ctx, vars)) {
      ctx.cacheStatus = 'BYPASS';
      return false;
    }
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
    if (found !== null && found.meta.validUntil > Date.now()) {
      ctx.cacheStatus = 'HIT';
      this.entry = found;
      this.zone.counters.hits++;
      this.zone.used(this.storeHash, found.bodyStart + found.length);
      return true;
    }
    if (found !== null) await closeFile(found.fd);
    ctx.cacheStatus = found === null ? 'MISS' : 'EXPIRED';
    this.zone.counters.misses++;
    this.#enoughUses = this.zone.countUse(this.storeHash, this.settings.minUses);
    return false;
  }

  /**
   * The writer for an upstream response, or null when it is not stored: `buffered` is false under
   * proxy_buffering off (nginx caches only what its event pipe buffers), proxy_no_cache set,
   * fewer uses than proxy_cache_min_uses, a status or headers that forbid it, a 101.
   */
  writerFor(up: UpstreamMessage, route: ProxyRoute, ctx: RequestContext, vars: Variables, buffered: boolean, onError: (err: NodeJS.ErrnoException) => void): CacheWriter | null {
    const status = up.statusCode ?? 0;
    if (!buffered || status === 101 || !this.#enoughUses) return null;
    if (anySet(this.settings.noCache, ctx, vars)) return null;
    const now = Date.now();
    const s = route.settings;
    const until = cacheValidity(status, up.headers, s.buffering.ignoreHeaders, this.settings, now);
    if (until <= now) return null;
    const resVary = s.buffering.ignoreHeaders.has('vary') ? undefined : up.headers.vary;
    const vary = typeof resVary === 'string' && resVary.trim() !== '' ? resVary : null;
    const meta: EntryMeta = {
      key: this.key, validUntil: until, date: now, status, message: up.statusMessage ?? '',
      headers: up.rawHeaders, vary, variant: vary === null ? null : variantOf(vary, ctx.headers),
    };
    const cl = up.headers['content-length'];
    const expected = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : -1;
    const tempDir = this.zone.config.useTempPath ? s.buffering.proxyTempPath.path : null;
    return new CacheWriter(this.zone, this.storeHash, entryHeader(meta), tempDir, expected, onError);
  }
}

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
 * body from the file. A 200 answers If-None-Match / If-Modified-Since with 304 and a failed
 * If-Match / If-Unmodified-Since with 412 (nginx's not_modified filter acts on cached responses),
 * and `Range` with one range gets 206 (several ranges get the whole body; see
 * docs/differences-from-nginx.md). Returns a status instead for a 412 or 416, which the session
 * answers as nginx's page.
 */
export function hitResponse(cache: CacheRequest, route: ProxyRoute, ctx: RequestContext, vars: Variables): StreamedResponse | number {
  const e = cache.entry as OpenEntry;
  cache.entry = null;
  const { meta } = e;
  const settings: Settings = route.settings;
  ctx.upstreamHeaders = headerObject(meta.headers);
  let status = meta.status;
  ctx.status = status;
  const headers = relayHeaders(ctx, route, vars, status, meta.headers, null);
  // The stored body has the length the file says, whatever framing the upstream used.
  setHeader(headers, 'Content-Length', String(e.length));
  let start = e.bodyStart;
  let end = e.bodyStart + e.length;
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
      setHeader(headers, 'Content-Length', null);
      return { status: 304, headers, body: null };
    }
    const range = parseRanges(first(ctx.headers.range), e.length, settings.files);
    if (range.kind === 'unsatisfiable') {
      void closeFile(e.fd);
      return 416;
    }
    if (range.kind === 'ranges' && range.ranges.length === 1) {
      const r = range.ranges[0]!;
      status = 206;
      ctx.status = 206;
      setHeader(headers, 'Content-Length', String(r.end - r.start));
      headers.push('Content-Range', `bytes ${r.start}-${r.end - 1}/${e.length}`);
      start = e.bodyStart + r.start;
      end = e.bodyStart + r.end;
    }
  }
  if (ctx.method === 'HEAD' || end === start || status === 204 || status === 304) {
    void closeFile(e.fd);
    return { status, headers, body: null };
  }
  cache.zone.counters.bytesFromCache += end - start;
  return { status, headers, body: fileBody(e.fd, cache.zone.fileFor(cache.storeHash), [{ start, end }]) };
}
