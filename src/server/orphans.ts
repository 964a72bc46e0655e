import type { Config } from '../config/types.js';
import type { ProxyTunnel } from '../proxy/tunnel/tunnel.js';
import { formatAddr } from '../upstream/peer.js';
import { FORWARD_UPSTREAM } from '../proxy/forward/forward-upstream.js';

/** "upstream|address" for every server of every upstream (implicit ones included). */
const keptCache = new WeakMap<Config, ReadonlySet<string>>();

/**
 * The upstream servers a config has, as "upstream|address" keys ("app|127.0.0.1:8010"): a tunnel
 * whose key is not among them would be drained by a reload to that config. Plain strings, so the
 * set can be sent to a running instance (`sluice -t` asks it what a config would drain).
 */
export function keptServers(config: Config): ReadonlySet<string> {
  let kept = keptCache.get(config);
  if (!kept) {
    const keys = new Set<string>();
    for (const [name, u] of config.http?.upstreams ?? []) {
      // A `resolve` line's addresses change at run time; the pool drains those that leave.
      for (const s of u.servers) keys.add(serverKey(name, s.resolve === undefined ? formatAddr(s.address) : '*'));
    }
    kept = keys;
    keptCache.set(config, kept);
  }
  return kept;
}

function serverKey(upstream: string, addr: string): string {
  return `${upstream}|${addr}`;
}

/** The upstream server a tunnel is connected to, as a {@link keptServers} key. */
export function tunnelServerKey(tunnel: ProxyTunnel): string {
  return serverKey(tunnel.ctx.proxyPass?.upstream ?? '', tunnel.ctx.attempts.at(-1)?.addr ?? '');
}

/** The tunnels whose upstream server is not in `kept` (what a reload to that config drains). */
export function orphanedTunnels(tunnels: Iterable<ProxyTunnel>, kept: ReadonlySet<string>): ProxyTunnel[] {
  const out: ProxyTunnel[] = [];
  for (const t of tunnels) {
    // A proxy_pass with variables found its server per request, not from the config; so did
    // the forward proxy (its tunnels are kept, as nginx keeps what a reload does not concern).
    if (t.ctx.proxyPass?.variable !== undefined || t.ctx.proxyPass?.upstream === FORWARD_UPSTREAM) continue;
    if (kept.has(serverKey(t.ctx.proxyPass?.upstream ?? '', '*'))) continue;
    if (!kept.has(tunnelServerKey(t))) out.push(t);
  }
  return out;
}

/** What a reload to some config would do to the open tunnels. */
export interface DrainImpact {
  /** Tunnels open now. */
  readonly open: number;
  /** Of those, the ones whose upstream server the config lacks. */
  readonly drained: number;
}
