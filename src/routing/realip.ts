/**
 * nginx's realip module at request time (ngx_http_realip_handler with ngx_http_get_forwarded_addr):
 * when the connection comes from a `set_real_ip_from` address, the client address becomes the one
 * `real_ip_header` names. For X-Forwarded-For (or any header with a list) the last address is
 * taken; with `real_ip_recursive on` trusted addresses are skipped from the right and the first
 * untrusted one is taken (the leftmost when all are trusted). Applied once per request, with the
 * server's settings and again, if still unapplied, with the location's (nginx's post-read and
 * pre-access phases).
 */
import type { Settings } from '../config/types.js';
import { cidrMatch as trusted, formatIp, parseIp } from '../core/cidr.js';
import type { RequestContext } from '../proxy/context/request-context.js';

/** The address the header names, or null when nothing applies. */
export function realAddress(settings: Settings, connAddress: string, header: string | string[] | undefined): string | null {
  if (settings.realIpFrom.length === 0 || header === undefined || !trusted(settings.realIpFrom, connAddress)) return null;
  const list = (Array.isArray(header) ? header.join(',') : header).split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (list.length === 0) return null;
  let pick = list[list.length - 1] as string;
  if (settings.realIpRecursive) {
    let i = list.length - 1;
    while (i > 0 && trusted(settings.realIpFrom, list[i] as string)) i--;
    pick = list[i] as string;
  }
  // nginx prints the address it parsed (ngx_sock_ntop): "2001:Db8::1" is $remote_addr "2001:db8::1".
  const ip = parseIp(pick);
  return ip === null ? null : formatIp(ip);
}

/**
 * Applies the realip rules of `settings` to the request, unless an earlier phase did.
 * `real_ip_header proxy_protocol` takes the address (and port) of the connection's PROXY header.
 */
export function applyRealIp(settings: Settings, ctx: RequestContext): void {
  if (ctx.realIp !== null || settings.realIpFrom.length === 0) return;
  if (settings.realIpHeader === 'proxy_protocol') {
    const pp = ctx.conn.proxyProtocol ?? null;
    if (pp === null) return;
    ctx.realIp = realAddress(settings, ctx.conn.remoteAddress, pp.addr);
    if (ctx.realIp !== null) ctx.realPort = pp.port;
    return;
  }
  ctx.realIp = realAddress(settings, ctx.conn.remoteAddress, ctx.headers[settings.realIpHeader]);
}
