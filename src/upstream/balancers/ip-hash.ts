import { isIPv4, isIPv6 } from 'node:net';
import type { Peer } from '../peer.js';
import type { Balancer, PickContext } from './balancer.js';
import { RoundRobin } from './round-robin.js';
import { MAX_REHASH, totalWeight, weightedSlot } from './weighted-slot.js';

/** The bytes nginx hashes: the first three octets of an IPv4 address, all 16 of an IPv6 one. */
export function ipHashBytes(addr: string): number[] {
  const v4 = addr.startsWith('::ffff:') && isIPv4(addr.slice(7)) ? addr.slice(7) : addr;
  if (isIPv4(v4)) return v4.split('.').slice(0, 3).map(Number);
  if (!isIPv6(addr)) return [...Buffer.from(addr)];
  const [head = '', tail = ''] = addr.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = addr.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.flatMap((g) => {
    const n = parseInt(g, 16);
    return [n >> 8, n & 0xff];
  });
}

/**
 * nginx's ip_hash (ngx_http_upstream_get_ip_hash_peer): hash = (hash * 113 + byte) % 6271 over the
 * address bytes, a weighted slot; an unavailable choice rehashes, and after 20 tries the pick
 * falls back to round robin.
 */
export class IpHash implements Balancer {
  readonly #peers: readonly Peer[];
  readonly #total: number;
  readonly #fallback: RoundRobin;

  constructor(peers: readonly Peer[]) {
    this.#peers = peers;
    this.#total = totalWeight(peers);
    this.#fallback = new RoundRobin(peers);
  }

  pick(ctx: PickContext): Peer | null {
    if (this.#peers.length === 0) return null;
    const bytes = ipHashBytes(ctx.key);
    let hash = 89;
    for (let tries = 0; tries <= MAX_REHASH; tries++) {
      for (const b of bytes) hash = (hash * 113 + b) % 6271;
      const peer = weightedSlot(this.#peers, this.#total, hash, ctx);
      if (peer) return peer;
    }
    return this.#fallback.pick(ctx);
  }
}

export function ipHash(peers: readonly Peer[]): Balancer {
  return new IpHash(peers);
}
