/**
 * Host name resolution at load time, as nginx does for upstream servers and proxy_pass hosts:
 * a name yields every address it resolves to. IP literals never reach the resolver.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { SockAddr } from './types.js';

export type ResolveHost = (host: string) => Promise<SockAddr[]>;

/** The default resolver: the system's (dns.lookup, so /etc/hosts applies), every address. */
export async function systemResolveHost(host: string): Promise<SockAddr[]> {
  const found = await lookup(host, { all: true });
  return found.map((a) => ({ host: a.address, port: 0, family: a.family === 6 ? 6 : 4 }));
}

/** Resolved addresses by lower-cased host (port 0: callers set the port), or null when not found. */
export type HostTable = ReadonlyMap<string, readonly SockAddr[] | null>;

export function literalAddress(host: string): SockAddr | null {
  const family = isIP(host);
  if (family === 0) return null;
  return { host, port: 0, family: family === 6 ? 6 : 4 };
}

/** Resolves every distinct name at once; a failing or empty lookup maps to null. */
export async function resolveHosts(hosts: Iterable<string>, resolver: ResolveHost): Promise<HostTable> {
  const names = [...new Set([...hosts].map((h) => h.toLowerCase()))];
  const table = new Map<string, readonly SockAddr[] | null>();
  await Promise.all(names.map(async (name) => {
    const literal = literalAddress(name);
    if (literal !== null) {
      table.set(name, [literal]);
      return;
    }
    try {
      const found = await resolver(name);
      const unique = new Map<string, SockAddr>();
      for (const a of found) unique.set(`${a.family}/${a.host}`, a);
      table.set(name, unique.size === 0 ? null : [...unique.values()]);
    } catch {
      table.set(name, null);
    }
  }));
  return table;
}
