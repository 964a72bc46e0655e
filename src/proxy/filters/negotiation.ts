/**
 * Whether a client gets a compressed response: nginx's ngx_http_gzip_ok (Accept-Encoding,
 * `gzip_disable msie6`, `gzip_http_version`, `gzip_proxied` for requests with Via, the
 * `gzip_disable` regexes) and ngx_brotli's Accept-Encoding test, ported from nginx 1.22 and
 * ngx_brotli so that the same requests get the same answer.
 */
import type { CompressionSettings } from '../../config/types.js';
import { parseHttpDate } from '../answer/http-date.js';
import type { RequestContext } from '../context/request-context.js';

/**
 * The first line of a request header, as nginx 1.22 keeps it for Accept-Encoding, User-Agent and
 * Via (a repeated line is ignored); Node's joined value once the raw lines are gone.
 */
export function firstRequestHeader(ctx: RequestContext, lower: string): string | undefined {
  const raw = ctx.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lower) return raw[i + 1] as string;
  const v = ctx.headers[lower];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * ngx_http_gzip_quantity: the q value after `q=` in thousandths-ish (nginx adds the digits up, so
 * only zero, non-zero and over 100 matter); 0 for anything malformed.
 */
function quantity(s: string, at: number): number {
  let p = at;
  const c = s[p++];
  if (c !== '0' && c !== '1') return 0;
  let q = (c === '1' ? 1 : 0) * 100;
  if (p === s.length) return q;
  const d = s[p++];
  if (d === ',' || d === ' ') return q;
  if (d !== '.') return 0;
  let n = 0;
  while (p < s.length) {
    const x = s[p++] as string;
    if (x === ',' || x === ' ') break;
    if (x >= '0' && x <= '9') {
      q += x.charCodeAt(0) - 48;
      n++;
      continue;
    }
    return 0;
  }
  return q > 100 || n > 3 ? 0 : q;
}

/**
 * ngx_http_gzip_accept_encoding with its `gzip,` fast path. Only the first `gzip` that starts a
 * token counts: `gzip;q=0` (or q=0.000) refuses it, and so does anything malformed after it.
 */
export function acceptsGzip(ae: string): boolean {
  if (ae.length < 4) return false;
  if (ae.startsWith('gzip,')) return true;
  const lower = ae.toLowerCase();
  let p = -1;
  for (let from = 0; ;) {
    p = lower.indexOf('gzip', from);
    if (p === -1) return false;
    if (p === 0 || ae[p - 1] === ',' || ae[p - 1] === ' ') break;
    from = p + 4;
  }
  p += 4;
  for (;;) {
    if (p >= ae.length) return true;
    const c = ae[p++];
    if (c === ',') return true;
    if (c === ';') break;
    if (c !== ' ') return false;
  }
  for (;;) {
    if (p >= ae.length) return true;
    const c = ae[p++];
    if (c === 'q' || c === 'Q') break;
    if (c !== ' ') return false;
  }
  if (p + 2 > ae.length || ae[p++] !== '=') return false;
  return quantity(ae, p) !== 0;
}

/**
 * The `br` coding (RFC 7932) in Accept-Encoding: a token of its own, not refused with q=0. ngx_brotli
 * only looks for the token; the q value is read here with nginx's gzip rules.
 */
export function acceptsBrotli(ae: string): boolean {
  const lower = ae.toLowerCase();
  for (let p = lower.indexOf('br'); p !== -1; p = lower.indexOf('br', p + 2)) {
    const before = p === 0 ? ' ' : ae[p - 1];
    const after = p + 2 >= ae.length ? ' ' : ae[p + 2];
    if ((before !== ',' && before !== ' ') || (after !== ',' && after !== ' ' && after !== ';')) continue;
    const param = /^ *; *[qQ] *= *([^,]*)/.exec(ae.slice(p + 2));
    return param === null || quantity((param[1] as string).trim(), 0) !== 0;
  }
  return false;
}

/** nginx's msie6 test of the User-Agent (ngx_http_process_user_agent): MSIE 4.x, 5.x, or 6.x without "SV1"; never Opera. */
export function isMsie6(ua: string): boolean {
  if (ua.includes('Opera')) return false;
  const m = ua.indexOf('MSIE ');
  if (m === -1 || m + 7 >= ua.length || ua[m + 6] !== '.') return false;
  const major = ua[m + 5];
  return major === '4' || major === '5' || (major === '6' && !ua.includes('SV1', m + 8));
}

/** The version as nginx compares it (1.0 < 1.1 < 2.0). */
function versionAtLeast(have: string, want: '1.0' | '1.1'): boolean {
  const [hMajor, hMinor] = have.split('.').map(Number) as [number, number | undefined];
  const wMinor = want === '1.1' ? 1 : 0;
  return hMajor > 1 || (hMajor === 1 && (hMinor ?? 0) >= wMinor);
}

/** A Cache-Control directive as ngx_http_parse_multi_header_lines finds one without a value. */
function hasCacheDirective(values: readonly string[], name: string): boolean {
  for (const v of values) {
    for (const item of v.split(/[;,]/)) if (item.trim().toLowerCase() === name) return true;
  }
  return false;
}

/**
 * gzip_proxied for a request that came through a proxy (it has Via): judged on the response
 * headers as they go out (add_header runs before the gzip filter in nginx too). `headers` is a
 * flat name/value list.
 */
function proxiedAllowed(ctx: RequestContext, cs: CompressionSettings, headers: readonly string[], nowMs: number): boolean {
  const p = cs.gzipProxied;
  if (p.has('off')) return false;
  if (p.has('any')) return true;
  if (p.has('auth') && ctx.headers.authorization !== undefined) return true;
  let expires: string | undefined;
  const cacheControl: string[] = [];
  let lastModified = false;
  let etag = false;
  for (let i = 0; i < headers.length; i += 2) {
    const name = (headers[i] as string).toLowerCase();
    if (name === 'expires') expires = headers[i + 1] as string;
    else if (name === 'cache-control') cacheControl.push(headers[i + 1] as string);
    else if (name === 'last-modified') lastModified = true;
    else if (name === 'etag') etag = true;
  }
  if (expires !== undefined) {
    if (!p.has('expired')) return false;
    const at = parseHttpDate(expires);
    // nginx compares with the response's Date, which for proxied responses is its own clock.
    return at !== null && at < nowMs;
  }
  if (cacheControl.length > 0) {
    return (p.has('no-cache') && hasCacheDirective(cacheControl, 'no-cache'))
      || (p.has('no-store') && hasCacheDirective(cacheControl, 'no-store'))
      || (p.has('private') && hasCacheDirective(cacheControl, 'private'));
  }
  if (p.has('no_last_modified') && lastModified) return false;
  return !(p.has('no_etag') && etag);
}

/**
 * ngx_http_gzip_ok: may this response be gzipped for this client? The answer is also kept in
 * `ctx.gzipOk` (nginx's r->gzip_tested / r->gzip_ok): gzip_static asks before any response header
 * exists, and the gzip filter then reuses that answer rather than asking again, as in nginx.
 */
export function gzipOk(ctx: RequestContext, cs: CompressionSettings, headers: readonly string[], nowMs = Date.now()): boolean {
  ctx.gzipOk = decideGzip(ctx, cs, headers, nowMs);
  return ctx.gzipOk;
}

function decideGzip(ctx: RequestContext, cs: CompressionSettings, headers: readonly string[], nowMs: number): boolean {
  const ae = firstRequestHeader(ctx, 'accept-encoding');
  if (ae === undefined || !acceptsGzip(ae)) return false;
  const ua = firstRequestHeader(ctx, 'user-agent');
  if (cs.gzipDisableMsie6 && ua !== undefined && isMsie6(ua)) return false;
  if (!versionAtLeast(ctx.httpVersion, cs.gzipHttpVersion)) return false;
  if (firstRequestHeader(ctx, 'via') !== undefined && !proxiedAllowed(ctx, cs, headers, nowMs)) return false;
  return ua === undefined || !cs.gzipDisable.some((re) => re.test(ua));
}

/** ngx_brotli's test: the client accepts `br` (gzip_proxied, gzip_disable and gzip_http_version do not apply). */
export function brotliOk(ctx: RequestContext): boolean {
  const ae = firstRequestHeader(ctx, 'accept-encoding');
  return ae !== undefined && acceptsBrotli(ae);
}
