import type { Settings } from '../../config/types.js';
import type { RequestContext } from '../context/request-context.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { Variables } from '../context/variables.js';
import type { Peer } from '../../upstream/peer.js';
import { connectionTokens, isHopByHop } from './hop-by-hop.js';
import { sendableHeaderValue } from './header-value.js';
import { applyExpires } from './expires.js';
import { absoluteLocation } from '../answer/location-header.js';
import { rewriteSetCookie, rewritesCookies } from './cookie-rewrite.js';

/** nginx's proxy_hide_header defaults: it sends its own Date and Server. */
function hiddenByDefault(lower: string): boolean {
  return lower === 'date' || lower === 'server' || lower === 'x-pad' || lower.startsWith('x-accel-');
}

/** nginx's fastcgi_hide_header defaults (ngx_http_fastcgi_hide_headers): the CGI Status and X-Accel-*. */
function fastcgiHiddenByDefault(lower: string): boolean {
  return lower === 'status' || lower.startsWith('x-accel-');
}

/**
 * `charset`: "; charset=NAME" added to a Content-Type of `charset_types` that names no charset
 * (ngx_http_charset_header_filter), on proxied responses and on Sluice's own.
 */
export function withCharset(settings: Settings, contentType: string): string {
  const charset = settings.charset;
  if (charset === null || /;\s*charset=/i.test(contentType)) return contentType;
  const type = (contentType.split(';')[0] as string).trim().toLowerCase();
  if (!settings.charsetTypes.includes('*') && !settings.charsetTypes.includes(type)) return contentType;
  return `${contentType}; charset=${charset}`;
}

/** Codes `expires` and add_header (without `always`) apply to (nginx ngx_http_headers_filter). */
const ADD_HEADER_CODES = new Set([200, 201, 204, 206, 301, 302, 303, 304, 307, 308]);

/**
 * nginx's headers filter, for every response (proxied, returned, an error page): `expires` for
 * the codes it applies to, then the add_header values that apply to `status`. Throws
 * INVALID_HEADER_VALUE (a ProxyError) when a value evaluates to a control character: the front
 * end's guard answers a bare 500.
 */
export function applyHeadersFilter(settings: Settings, status: number, ctx: RequestContext, vars: Variables, out: string[]): void {
  const ok = ADD_HEADER_CODES.has(status);
  if (ok && settings.core.expires !== null) applyExpires(settings.core.expires, ctx, vars, out);
  if (settings.addHeaders.length === 0) return;
  for (const h of settings.addHeaders) {
    if (!ok && !h.always) continue;
    const value = vars.evaluate(h.value, ctx);
    if (value !== '') out.push(h.name, sendableHeaderValue(h.name, value));
  }
}

/** proxy_redirect's rules applied to a URL: the rewritten URL, or null when no rule matched. */
function rewriteRedirect(value: string, route: ProxyRoute, ctx: RequestContext, vars: Variables): string | null {
  for (const r of route.redirects) {
    if (r.from instanceof RegExp) {
      const m = r.from.exec(value);
      if (!m) continue;
      const saved = ctx.captures;
      ctx.captures = [...m];
      try {
        // nginx replaces the whole value with a regex rule (ngx_http_proxy_rewrite_regex_handler
        // rewrites from the start to the end), not just the matched part.
        return vars.evaluate(r.to, ctx);
      } finally {
        ctx.captures = saved;
      }
    }
    const from = vars.evaluate(r.from, ctx);
    if (from !== '' && value.startsWith(from)) return vars.evaluate(r.to, ctx) + value.slice(from.length);
  }
  return null;
}

/**
 * The headers relayed to the client from an upstream response: hop-by-hop headers and nginx's
 * hidden ones dropped, Location/Refresh rewritten by proxy_redirect, Set-Cookie by proxy_cookie_*,
 * add_header appended.
 * For a 101 the Upgrade and Connection headers are the point of the response and stay (Upgrade
 * stays on any answer, as in nginx);
 * Content-Length and Transfer-Encoding never go out with a 101 (RFC 9110 15.2.2).
 */
export function relayHeaders(ctx: RequestContext, route: ProxyRoute, vars: Variables, status: number, rawHeaders: readonly string[], peer: Peer | null): string[] {
  const out: string[] = [];
  const switching = status === 101;
  const listed = connectionTokens(rawHeaders);
  const cookies = rewritesCookies(route.settings);
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    let value = rawHeaders[i + 1] as string;
    const lower = name.toLowerCase();
    // proxy_hide_header hides more; proxy_pass_header lets a default-hidden one through.
    const hidden = route.pass.scheme === 'fastcgi' ? fastcgiHiddenByDefault(lower) : hiddenByDefault(lower);
    if (hidden ? !route.settings.proxyPassHeaders.includes(lower) : route.settings.proxyHideHeaders.includes(lower)) continue;
    if (switching && (lower === 'upgrade' || lower === 'connection')) {
      out.push(name, value);
      continue;
    }
    // nginx 1.22 passes Upgrade on any answer (a 426 names the protocol to switch to, RFC 9110
    // 15.5.22); only Connection, Keep-Alive and Transfer-Encoding are its hop-by-hop ones.
    if (lower !== 'upgrade' && (isHopByHop(lower) || listed.has(lower))) continue;
    if (switching && lower === 'content-length') continue;
    if (lower === 'location' && route.redirects.length > 0) {
      // nginx: only a Location proxy_redirect rewrote goes through the header filter's
      // absolute_redirect (ngx_http_upstream_rewrite_location); an untouched relative one stays.
      const rewritten = rewriteRedirect(value, route, ctx, vars);
      if (rewritten !== null) value = sendableHeaderValue(name, absoluteLocation(rewritten, route.settings, ctx));
    } else if (lower === 'refresh' && route.redirects.length > 0) {
      value = sendableHeaderValue(name, rewriteRefresh(value, route, ctx, vars));
    } else if (lower === 'content-type') {
      value = withCharset(route.settings, value);
    } else if (lower === 'set-cookie' && cookies) {
      // nginx rewrites every Set-Cookie of the response it relays, a 101's included
      // (ngx_http_upstream_rewrite_set_cookie runs in process_headers before the upgrade).
      value = rewriteSetCookie(value, route.settings, ctx, vars);
    }
    out.push(name, value);
  }
  // sticky cookie: a response from a server the request's cookie did not name sets it (a 101 too);
  // a response from the cache (no peer) came from no server.
  const sticky = route.pool.sticky;
  if (sticky && peer !== null) {
    const cookie = sticky.setCookie(peer, vars.get(`cookie_${sticky.config.name}`, ctx));
    if (cookie !== null) out.push('Set-Cookie', cookie);
  }
  applyHeadersFilter(route.settings, status, ctx, vars, out);
  return out;
}

/** nginx rewrites only the URL after `url=` in a Refresh header ("5; url=http://b/x"). */
function rewriteRefresh(value: string, route: ProxyRoute, ctx: RequestContext, vars: Variables): string {
  const m = /url=/i.exec(value);
  if (!m) return value;
  const at = m.index + m[0].length;
  const url = value.slice(at);
  return value.slice(0, at) + (rewriteRedirect(url, route, ctx, vars) ?? url);
}

/**
 * Sluice's own `Server` (and, on a raw head, `Date`) in front of a relayed response's headers,
 * unless `proxy_pass_header` let the upstream's through.
 */
export function addOwnHeaders(headers: string[], date: string | null, server: string): void {
  let hasServer = false;
  let hasDate = false;
  for (let i = 0; i < headers.length; i += 2) {
    const lower = (headers[i] as string).toLowerCase();
    if (lower === 'server') hasServer = true;
    else if (lower === 'date') hasDate = true;
  }
  if (date !== null && !hasDate) headers.unshift('Date', date);
  if (!hasServer) headers.unshift('Server', server);
}

/**
 * Records what was sent, for `$sent_http_*`: the list itself, indexed by name only when a
 * variable reads it (so `headers` must not change after this).
 */
export function rememberSent(ctx: RequestContext, headers: readonly string[]): void {
  ctx.sentList = headers;
}
