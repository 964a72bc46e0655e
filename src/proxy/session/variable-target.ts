/**
 * `proxy_pass` with variables, per request (nginx's ngx_http_proxy_eval and
 * ngx_http_upstream_init_request): the URL is evaluated, its host is first looked up among the
 * upstream groups (an `upstream {}` name written without a port, or an implicit `host:port`
 * upstream), an IP address is used as it is, and any other name is resolved with the location's
 * `resolver` under `resolver_timeout`. The evaluated URI, when there is one, replaces the request
 * URI whole.
 */
import { formatHostPort, splitHostPort } from '../../config/address.js';
import { literalAddress } from '../../config/hosts.js';
import type { ProxyPass, SockAddr } from '../../config/types.js';
import { ProxyError } from '../../core/errors.js';
import type { DynamicUpstreams } from '../../upstream/dynamic-upstreams.js';
import type { UpstreamPool } from '../../upstream/pool.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';
import type { ProxyRoute } from './proxy-route.js';

/** What the runtime lends: its upstream groups by name and the run-time upstreams. */
export interface TargetSources {
  readonly pools: ReadonlyMap<string, UpstreamPool>;
  readonly dynamic: DynamicUpstreams;
  readonly vars: Variables;
}

/** A target that could not be found: the error (its status) and nginx's error-log line. */
export interface TargetFailure {
  readonly error: ProxyError;
  readonly log: string;
}

function invalid(log: string): TargetFailure {
  return { error: new ProxyError('UPSTREAM_URL_INVALID'), log };
}

function unresolved(log: string): TargetFailure {
  return { error: new ProxyError('UPSTREAM_UNRESOLVED'), log };
}

/** nginx's upstream names compare case-insensitively; `pools` holds them as written. */
function groupNamed(pools: ReadonlyMap<string, UpstreamPool>, host: string): UpstreamPool | undefined {
  const exact = pools.get(host);
  if (exact !== undefined && !exact.config.implicit) return exact;
  const lower = host.toLowerCase();
  for (const p of pools.values()) if (!p.config.implicit && p.name.toLowerCase() === lower) return p;
  return undefined;
}

/** The route this request goes to, or why there is none. */
export async function variableTarget(route: ProxyRoute, ctx: RequestContext, src: TargetSources): Promise<ProxyRoute | TargetFailure> {
  const pass = route.pass;
  const url = src.vars.evaluate(pass.variable!, ctx);
  const lower = url.toLowerCase();
  const scheme = lower.startsWith('https://') ? 'https' : lower.startsWith('http://') ? 'http' : null;
  if (scheme === null) return invalid(`invalid URL prefix in "${url}"`);
  const rest = url.slice(`${scheme}://`.length);
  let cut = rest.search(/[/?]/);
  if (cut < 0) cut = rest.length;
  const authority = rest.slice(0, cut);
  // nginx: a URI that starts with "?" gets a "/" before it.
  const uri = cut === rest.length ? null : rest[cut] === '?' ? `/${rest.slice(cut)}` : rest.slice(cut);
  if (authority === '') return invalid(`no host in upstream "${rest}"`);
  const hp = splitHostPort(authority);
  if (!hp.ok) return invalid(`${hp.error === 'unix' ? 'invalid host' : hp.error} in upstream "${rest}"`);
  const { host, port } = hp.value;
  const defaultPort = scheme === 'https' ? 443 : 80;
  const hostText = port === null ? authority : authority.slice(0, authority.lastIndexOf(':'));
  const proxyHost = port === null || port === defaultPort ? hostText : authority;
  let pool = port === null ? groupNamed(src.pools, host) : undefined;
  if (pool === undefined && port !== null) {
    const implicit = src.pools.get(formatHostPort(host.toLowerCase(), port));
    if (implicit?.config.implicit) pool = implicit;
  }
  const group = pool !== undefined;
  if (pool === undefined) {
    const p = port ?? defaultPort;
    const literal = literalAddress(host);
    let addresses: readonly SockAddr[];
    if (literal !== null) {
      addresses = [literal];
    } else {
      const settings = route.settings;
      if (settings.resolver === null) return unresolved(`no resolver defined to resolve ${host}`);
      const r = await src.dynamic.resolver(settings.resolver).resolve(host.toLowerCase(), settings.resolverTimeout);
      if (!r.ok) return unresolved(`${host} could not be resolved (${r.state}: ${r.text})`);
      addresses = r.addresses;
    }
    pool = src.dynamic.poolFor(formatHostPort(host.toLowerCase(), p), addresses, p);
  }
  const target: ProxyPass = {
    // A resolved name is counted under the URL as written (statistics, metrics labels): names
    // from a variable such as $host would otherwise make one entry per name.
    url, scheme, upstream: group ? pool.name : pass.url, uri, proxyHost, tls: scheme === 'https' ? pass.tls : null,
    variable: pass.variable!, wholeUri: true,
  };
  ctx.proxyPass = target;
  return { ...route, pass: target, pool };
}
