import type { RequestContext } from '../context/request-context.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { Variables } from '../context/variables.js';
import { connectionTokens, isHopByHop } from './hop-by-hop.js';
import { sendableHeaderValue } from './header-value.js';
import { originForm } from '../../routing/uri.js';
import { escapeUri, utf8Bytes } from '../../core/escape.js';

/** How the request is being forwarded. */
export interface ForwardMode {
  /** The Upgrade token to send with `Connection: upgrade` (WebSocket or a forwarded upgrade), else null. */
  readonly upgrade: string | null;
  /** The client's Upgrade value exactly as sent, for an upgrade. */
  readonly upgradeValue: string | null;
}

/** A request forwarded as an ordinary one. */
export const NO_UPGRADE: ForwardMode = Object.freeze({ upgrade: null, upgradeValue: null });

export interface UpstreamRequestHead {
  readonly path: string;
  /** Flat [name, value, name, value...] in the order they are sent. */
  readonly headers: string[];
}

/**
 * The request target sent upstream. Without a URI in proxy_pass it is the client's target
 * byte for byte; with one, the part matched by the location prefix is replaced (nginx rule).
 */
/** A path nginx normalises: a "/./" or "/../" segment, or two slashes in a row. */
const COMPLEX_PATH = /\/\.\.?(?:\/|$)|\/\//;

export function upstreamPath(ctx: RequestContext, route: ProxyRoute): string {
  const raw = originForm(ctx.rawUri);
  const uri = route.pass.uri;
  // A URI evaluated from variables goes as it is, with no arguments added (nginx).
  if (route.pass.wholeUri === true && uri !== null) return uri;
  const prefix = route.location.modifier === '=' ? ctx.uri : route.location.pattern;
  if (!ctx.unparsedUri) {
    // After an internal redirect (try_files, index) nginx sends the new URI, escaped, and its arguments.
    // After `rewrite ... break` (valid_location off) the whole changed URI goes, without the URI of proxy_pass.
    const path = uri === null || !ctx.validLocation
      ? escapeUri(utf8Bytes(ctx.uri), 'uri')
      : uri + escapeUri(utf8Bytes(ctx.uri.slice(prefix.length)), 'uri');
    return ctx.args !== '' ? `${path}?${ctx.args}` : path;
  }
  if (uri === null) return raw;
  const q = raw.indexOf('?');
  const rawPath = q === -1 ? raw : raw.slice(0, q);
  const query = q === -1 ? '' : raw.slice(q);
  // ngx_http_proxy_create_request: with a URI part, what follows the location's prefix in the
  // normalised $uri goes (no "/../", "/./" or merged slashes), escaped when the client's URI was
  // (r->quoted_uri). A plain raw path is that already, and goes as the client wrote it.
  const plain = !rawPath.includes('%') && !COMPLEX_PATH.test(rawPath) && rawPath.startsWith(prefix);
  const rest = plain ? rawPath.slice(prefix.length) : escapeUri(utf8Bytes(ctx.uri.slice(prefix.length)), 'uri');
  return uri + rest + query;
}

/**
 * The upstream request headers, nginx style: the proxy_set_header rules (with nginx's defaults
 * `Host $proxy_host` and `Connection close`; a rule whose value is empty sends nothing), then the
 * client's headers except those the rules set, hop-by-hop headers and every name listed in
 * Connection. Body framing is carried over from the client request. An upgrade always goes out
 * with the client's Upgrade value and `Connection: upgrade`; anything else never carries Upgrade.
 * A body read whole (request buffering, proxy_set_body) goes with its `bodyLength` as
 * Content-Length, as nginx sends a buffered chunked body.
 * Throws INVALID_HEADER_VALUE when a rule's value evaluates to a control character.
 */
/**
 * nginx's proxy_cache_headers: where a location caches, the client's conditional and range
 * headers do not go upstream (the cache stores whole responses and answers those itself), unless
 * a proxy_set_header line sends them. A request whose response will not be stored (nginx's
 * u->cacheable off: proxy_cache_min_uses not reached, proxy_cache_max_range_offset) sends them.
 */
const CACHE_DROPPED: ReadonlySet<string> = new Set(['if-modified-since', 'if-unmodified-since', 'if-none-match', 'if-match', 'range', 'if-range']);

export function buildUpstreamHead(ctx: RequestContext, route: ProxyRoute, vars: Variables, mode: ForwardMode, bodyLength: number | null = null): UpstreamRequestHead {
  const headers: string[] = [];
  for (const rule of route.headerRules) {
    if (mode.upgrade !== null && (rule.lower === 'upgrade' || rule.lower === 'connection')) continue;
    // A request not forwarded as an upgrade (h2c, a token the config does not forward, a
    // Connection without the upgrade token) goes out as an ordinary one: `Upgrade $http_upgrade`
    // must not turn it back into an upgrade the proxy would then refuse to tunnel.
    if (mode.upgrade === null && rule.lower === 'upgrade') continue;
    const value = vars.evaluate(rule.value, ctx);
    if (value !== '') headers.push(rule.name, sendableHeaderValue(rule.name, value));
  }
  if (mode.upgrade !== null) headers.push('Upgrade', mode.upgradeValue ?? mode.upgrade, 'Connection', 'upgrade');
  const listed = connectionTokens(ctx.rawHeaders);
  // proxy_pass_request_headers off: only what the rules set goes upstream.
  const raw = route.settings.proxyPassRequestHeaders ? ctx.rawHeaders : [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (route.ruleNames.has(lower) || isHopByHop(lower) || listed.has(lower)) continue;
    if (lower === 'content-length' || lower === 'expect') continue;
    if (ctx.cache?.cacheable === true && CACHE_DROPPED.has(lower)) continue;
    headers.push(name, raw[i + 1] as string);
  }
  // proxy_cache_revalidate: the expired entry's Last-Modified and ETag as conditions.
  if (ctx.cache !== null) headers.push(...ctx.cache.revalidateHeaders);
  if (bodyLength !== null) {
    headers.push('Content-Length', String(bodyLength));
    return { path: upstreamPath(ctx, route), headers };
  }
  // proxy_pass_request_body off: no body, and no framing for one; nor for an error page's target
  // once a streamed body went to the upstream whose error it shows (session/error-pages.ts).
  if (!route.settings.proxyPassRequestBody || ctx.bodyDropped) return { path: upstreamPath(ctx, route), headers };
  const cl = ctx.headers['content-length'];
  if (cl !== undefined) headers.push('Content-Length', cl);
  else if (ctx.headers['transfer-encoding'] !== undefined) headers.push('Transfer-Encoding', 'chunked');
  return { path: upstreamPath(ctx, route), headers };
}
