/**
 * A relative Location the proxy sends (a `return` redirect, a Location that proxy_redirect
 * rewrote) becomes absolute as in nginx's header filter: `absolute_redirect` on (the default)
 * adds the scheme, the host (`server_name_in_redirect on`: the server's first name; otherwise the
 * request's host, or the local address without one) and, with `port_in_redirect` on, the port
 * the connection came in on unless it is the scheme's default. A Location the upstream sent
 * relative and proxy_redirect left alone stays relative, as in nginx.
 */
import type { Settings } from '../../config/types.js';
import type { RequestContext } from '../context/request-context.js';

export function absoluteLocation(url: string, settings: Settings, ctx: RequestContext): string {
  const core = settings.core;
  if (!url.startsWith('/') || !core.absoluteRedirect) return url;
  const tls = ctx.conn.tls;
  let host: string;
  if (core.serverNameInRedirect) host = ctx.server?.primaryName ?? '';
  else if (ctx.host) host = ctx.host;
  else host = ctx.conn.localAddress.includes(':') ? `[${ctx.conn.localAddress}]` : ctx.conn.localAddress;
  const port = ctx.conn.localPort;
  const showPort = core.portInRedirect && port !== (tls ? 443 : 80);
  return `${tls ? 'https' : 'http'}://${host}${showPort ? `:${port}` : ''}${url}`;
}
