import type { ComplexValue, LocationConfig, ProxyPass, Settings } from '../../config/types.js';
import type { UpstreamPool } from '../../upstream/pool.js';
import type { StickySessions } from '../../upstream/sticky-learn.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';
import { tunnelGuardrailsOf } from '../tunnel/guardrails.js';
import type { TunnelGuardrails } from '../tunnel/guardrails.js';

/** What the balancer keys on: ip_hash's client address or hash's KEY, and the sticky cookie. */
export interface PickKey {
  readonly key: string;
  readonly sticky?: string | undefined;
  /** `sticky learn`: the server address of the session the request's lookup value names. */
  readonly learnt?: string | null;
}

export interface HeaderRuleCompiled {
  readonly name: string;
  readonly lower: string;
  readonly value: ComplexValue;
}

export interface RedirectRule {
  readonly from: ComplexValue | RegExp;
  readonly to: ComplexValue;
}

/**
 * Everything the proxy needs for one proxying location, computed once when the runtime is built
 * so that requests do no per-route work.
 */
export interface ProxyRoute {
  readonly settings: Settings;
  readonly pass: ProxyPass;
  readonly pool: UpstreamPool;
  readonly location: LocationConfig;
  /** The user's proxy_set_header rules, then nginx's defaults they do not override. */
  readonly headerRules: readonly HeaderRuleCompiled[];
  /** Lower-cased names set by headerRules: client headers of these names are not passed. */
  readonly ruleNames: ReadonlySet<string>;
  readonly redirects: readonly RedirectRule[];
  readonly retryStatuses: ReadonlySet<number>;
  /** The WebSocket guardrails its tunnels get (websocket_max_frame_size...), null: none set. */
  readonly guardrails: TunnelGuardrails | null;
}

const constant = (s: string): ComplexValue => ({ raw: s, parts: [{ text: s }], constant: s });
const PROXY_HOST: ComplexValue = { raw: '$proxy_host', parts: [{ variable: 'proxy_host' }], constant: null };

/** nginx's implicit headers: `Host $proxy_host` and `Connection close`, unless the config sets them. */
function headerRules(settings: Settings): HeaderRuleCompiled[] {
  const rules: HeaderRuleCompiled[] = settings.proxySetHeaders.map((r) => ({ name: r.name, lower: r.name.toLowerCase(), value: r.value }));
  const names = new Set(rules.map((r) => r.lower));
  if (!names.has('host')) rules.unshift({ name: 'Host', lower: 'host', value: PROXY_HOST });
  if (!names.has('connection')) rules.push({ name: 'Connection', lower: 'connection', value: constant('close') });
  return rules;
}

/**
 * `proxy_redirect default` is `proxy_redirect <proxy_pass URL> <location>` when the URL has a URI,
 * and `proxy_redirect <proxy_pass URL>/ /` when it has none (nginx ngx_http_proxy_merge_loc_conf).
 */
function redirectRules(settings: Settings, pass: ProxyPass, location: LocationConfig): RedirectRule[] {
  const r = settings.proxyRedirect;
  if (r.mode === 'off') return [];
  if (r.mode === 'rules') return [...r.rules];
  // nginx adds no default rule for a URL with variables: its host is known per request only.
  if (pass.variable !== undefined) return [];
  const base = `${pass.scheme}://${pass.proxyHost}`;
  if (pass.uri !== null) return [{ from: constant(base + pass.uri), to: constant(location.pattern) }];
  return [{ from: constant(`${base}/`), to: constant('/') }];
}

const STATUS_CONDITIONS: readonly [string, number][] = [
  ['http_500', 500], ['http_502', 502], ['http_503', 503], ['http_504', 504],
  ['http_403', 403], ['http_404', 404], ['http_429', 429],
];

/**
 * The settings a `fastcgi_pass` location proxies under: the session, the body relays and the
 * header filters read proxy_* fields, so here those fields carry the fastcgi_* values (nginx keeps
 * one upstream conf per module; a proxy_read_timeout written beside fastcgi_pass changes nothing).
 */
function fastcgiView(s: Settings): Settings {
  const f = s.fastcgi;
  return {
    ...s,
    proxyHttpVersion: '1.1',
    proxySetHeaders: [],
    proxyConnectTimeout: f.connectTimeout,
    proxyReadTimeout: f.readTimeout,
    proxySendTimeout: f.sendTimeout,
    proxyRedirect: { mode: 'off' },
    proxyNextUpstream: f.nextUpstream,
    proxyNextUpstreamTries: f.nextUpstreamTries,
    proxyNextUpstreamTimeout: f.nextUpstreamTimeout,
    proxyBuffering: f.buffering,
    proxyHideHeaders: f.hideHeaders,
    proxyPassHeaders: f.passHeaders,
    proxyPassRequestHeaders: f.passRequestHeaders,
    proxyPassRequestBody: f.passRequestBody,
    proxyBufferSize: f.bufferSize,
    proxyCookieDomain: [],
    proxyCookiePath: [],
    proxyCookieFlags: [],
    core: { ...s.core, proxyInterceptErrors: f.interceptErrors },
    buffering: {
      ...s.buffering,
      requestBuffering: f.requestBuffering,
      proxySetBody: null,
      proxyMethod: null,
      ignoreClientAbort: f.ignoreClientAbort,
      ignoreHeaders: f.ignoreHeaders,
      proxyBuffers: f.buffers,
      busyBuffersSize: f.busyBuffersSize,
      proxyTempPath: f.tempPath,
      maxTempFileSize: f.maxTempFileSize,
      tempFileWriteSize: f.tempFileWriteSize,
    },
  };
}

export function compileProxyRoute(location: LocationConfig, pool: UpstreamPool): ProxyRoute {
  const pass = location.settings.proxyPass as ProxyPass;
  const settings = pass.scheme === 'fastcgi' ? fastcgiView(location.settings) : location.settings;
  const rules = headerRules(settings);
  const retryStatuses = new Set<number>();
  for (const [cond, status] of STATUS_CONDITIONS) {
    if (settings.proxyNextUpstream.has(cond as never)) retryStatuses.add(status);
  }
  return Object.freeze({
    settings,
    pass,
    pool,
    location,
    headerRules: rules,
    ruleNames: new Set(rules.map((r) => r.lower)),
    redirects: pass.scheme === 'fastcgi' ? [] : redirectRules(settings, pass, location),
    retryStatuses,
    guardrails: tunnelGuardrailsOf(settings),
  });
}

/**
 * What the upstream's balancer keys on for this request: the client address for ip_hash, the
 * evaluated KEY for hash, and the sticky cookie's value when the upstream has `sticky cookie`.
 */
export function pickKey(route: ProxyRoute, ctx: RequestContext, vars: Variables): PickKey {
  const method = route.pool.config.method;
  const key = method.name === 'ip_hash' ? ctx.remoteAddr : method.name === 'hash' ? vars.evaluate(method.key, ctx) : '';
  const sticky = route.pool.sticky ? vars.get(`cookie_${route.pool.sticky.config.name}`, ctx) : undefined;
  return { key, sticky };
}

/** The first non-empty of `values` (sticky learn's create= and lookup= lists), or null. */
export function firstValue(values: readonly ComplexValue[], ctx: RequestContext, vars: Variables): string | null {
  for (const v of values) {
    const s = vars.evaluate(v, ctx);
    if (s !== '') return s;
  }
  return null;
}

/** {@link pickKey}, plus the server of the request's `sticky learn` session (a table lookup, maybe in Redis). */
export function sessionPickKey(route: ProxyRoute, ctx: RequestContext, vars: Variables, sessions: StickySessions): PickKey | Promise<PickKey> {
  const base = pickKey(route, ctx, vars);
  const learn = route.pool.config.stickyLearn;
  // Synchronous unless a session table must be asked: most requests pay no promise here.
  if (learn === undefined) return base;
  const value = firstValue(learn.lookup, ctx, vars);
  return value === null ? base : learnt(base, sessions.lookup(learn, value));
}

async function learnt(base: PickKey, server: Promise<string | null>): Promise<PickKey> {
  return { ...base, learnt: await server };
}

/** A response from `addr`: the session its create= value names is learnt (or renewed). */
export function learnSession(route: ProxyRoute, ctx: RequestContext, vars: Variables, sessions: StickySessions, addr: string): void {
  const learn = route.pool.config.stickyLearn;
  if (learn === undefined) return;
  const value = firstValue(learn.create, ctx, vars);
  if (value !== null) sessions.learn(learn, value, addr);
}
