import type { Peer } from '../../upstream/peer.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { RequestContext } from './request-context.js';

/** nginx's `upstream: "http://127.0.0.1:8010/path"` part of an error line (https for TLS upstreams). */
export function upstreamUrl(route: ProxyRoute, peer: Peer, ctx: RequestContext): string {
  // nginx names a FastCGI upstream without a URI (its u->uri is empty).
  if (route.pass.scheme === 'fastcgi') return `fastcgi://${peer.addr}`;
  return `${route.pass.scheme}://${peer.addr}${ctx.rawUri}`;
}

/** nginx's error log suffix: `, client: 1.2.3.4, server: x, request: "GET / HTTP/1.1", upstream: "...", host: "..."`. */
export function logContext(ctx: RequestContext, upstream?: string): string {
  let s = `, client: ${ctx.remoteAddr}, server: ${ctx.server?.primaryName ?? ''}, request: "${ctx.method} ${ctx.rawUri} HTTP/${ctx.httpVersion}"`;
  if (upstream) s += `, upstream: "${upstream}"`;
  if (ctx.headers.host) s += `, host: "${ctx.headers.host}"`;
  return s;
}
