/**
 * nginx's access phase (ngx_http_access_module): the `allow` / `deny` rules of the level that
 * serves the request are checked in order and the first that matches decides; when none matches,
 * access is allowed (nginx returns NGX_DECLINED and the request goes on). nginx keeps one list per
 * address family, with `all` in each; checking one list in file order, skipping rules of the other
 * family, is the same thing. An IPv4-mapped IPv6 client (`::ffff:a.b.c.d`) is checked against the
 * IPv4 rules when there are any, as nginx does.
 */
import type { AccessRule } from '../config/types.js';
import { inNetwork, parseIp, unmapIPv4 } from '../core/cidr.js';
import type { ConnInfo } from '../proxy/context/request-context.js';

interface ClientAddr {
  readonly family: 4 | 6 | null;
  readonly bytes: readonly number[];
  /** The IPv4 address of an IPv4-mapped IPv6 client, else null. */
  readonly mapped: readonly number[] | null;
}

/** Parsed once per connection, on its first request that meets any rule. */
const clients = new WeakMap<ConnInfo, ClientAddr>();

function clientOf(conn: ConnInfo): ClientAddr {
  let c = clients.get(conn);
  if (c === undefined) {
    c = clientFrom(conn.remoteAddress);
    clients.set(conn, c);
  }
  return c;
}

function clientFrom(address: string): ClientAddr {
  const ip = parseIp(address);
  return ip === null
    ? { family: null, bytes: [], mapped: null }
    : { family: ip.family, bytes: ip.bytes, mapped: ip.family === 6 ? unmapIPv4(ip.bytes) : null };
}

/** The rule that decides for this client (`realIp`: the realip module's address), or null when none matches. */
export function matchAccess(rules: readonly AccessRule[], conn: ConnInfo, realIp: string | null = null): AccessRule | null {
  const client = realIp === null ? clientOf(conn) : clientFrom(realIp);
  let family = client.family;
  let bytes = client.bytes;
  if (client.mapped !== null && rules.some((r) => r.family === 4 || r.family === 'all')) {
    family = 4;
    bytes = client.mapped;
  }
  for (const r of rules) {
    if (r.family === 'all') return r;
    if (r.family === family && inNetwork(bytes, r.addr, r.mask)) return r;
  }
  return null;
}

/** True when the rules forbid this client (a `deny` matched first). */
export function accessDenied(rules: readonly AccessRule[], conn: ConnInfo, realIp: string | null = null): boolean {
  if (rules.length === 0) return false;
  return matchAccess(rules, conn, realIp)?.deny === true;
}
