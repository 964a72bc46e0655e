/**
 * Where a forward-proxy request wants to go, and whether `forward_proxy_allow` lets it: a name
 * rule allows the name the client asked for; an address rule allows the addresses it resolved
 * to (or the literal address asked for). Whatever the rules say about a name, each address it
 * resolved to is judged again: one in a special range (special-ranges.ts: loopback, private,
 * link-local...) is reached only when an address rule at least as narrow as that range names it.
 */
import { inNetwork, parseIp } from '../../core/cidr.js';
import { splitHostPort } from '../../config/address.js';
import type { ForwardAllowRule } from '../../config/types.js';
import { plainBytes, prefixLength, specialRange } from './special-ranges.js';

/** A destination as the client named it. */
export interface Destination {
  /** Lower-cased; an IPv6 address without brackets. */
  readonly host: string;
  readonly port: number;
  /** The host is an IP address (no name to resolve, no name rule applies). */
  readonly literal: boolean;
}

/**
 * `host:port` (the authority of CONNECT, RFC 9110 9.3.6: the port is required), or for an
 * absolute-form URI `host[:port]` with `defaultPort` when none is written.
 */
export function parseDestination(authority: string, defaultPort: number | null): Destination | null {
  const hp = splitHostPort(authority);
  if (!hp.ok) return null;
  const port = hp.value.port ?? defaultPort;
  if (port === null || port < 1 || port > 65535) return null;
  const host = hp.value.host.toLowerCase();
  if (host === '' || /[^a-z0-9._:-]/.test(host)) return null;
  return { host, port, literal: parseIp(host) !== null };
}

function portAllowed(rule: ForwardAllowRule, port: number): boolean {
  return rule.ports.some(([lo, hi]) => port >= lo && port <= hi);
}

function nameMatches(rule: ForwardAllowRule, host: string): boolean {
  if (rule.kind === 'name') return host === rule.name;
  if (rule.kind !== 'subdomains') return false;
  return host.endsWith(`.${rule.name}`) || (rule.withBase && host === rule.name);
}

/** A name rule allows this destination (before anything is resolved). */
export function nameAllowed(rules: readonly ForwardAllowRule[], dest: Destination): boolean {
  return !dest.literal && rules.some((r) => nameMatches(r, dest.host) && portAllowed(r, dest.port));
}

/** Some address rule could allow this port: worth resolving a name no name rule allows. */
export function addressRulesFor(rules: readonly ForwardAllowRule[], port: number): boolean {
  return rules.some((r) => r.kind === 'address' && portAllowed(r, port));
}

/** Whether the proxy may connect to `address` (what `dest` resolved to) on `dest.port`. */
export function addressAllowed(rules: readonly ForwardAllowRule[], dest: Destination, address: string): boolean {
  const ip = parseIp(address);
  if (ip === null) return false;
  const { family, bytes } = plainBytes(ip.family, ip.bytes);
  const special = specialRange(family, bytes);
  let byAddress = false;
  for (const r of rules) {
    const c = r.cidr;
    if (r.kind !== 'address' || c === null || !portAllowed(r, dest.port)) continue;
    if (c.family !== family || !inNetwork(bytes, c.addr, c.mask)) continue;
    // 0.0.0.0/0 is no explicit permission for 127.0.0.1: the rule must be as narrow as the range.
    if (special === null || prefixLength(c) >= special.prefix) byAddress = true;
  }
  if (byAddress) return true;
  return special === null && nameAllowed(rules, dest);
}
