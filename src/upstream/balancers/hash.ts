import { crc32 } from 'node:zlib';
import type { Peer } from '../peer.js';
import { peerAvailable } from '../peer.js';
import type { Balancer, PickContext } from './balancer.js';
import { RoundRobin } from './round-robin.js';
import { MAX_REHASH, totalWeight, weightedSlot } from './weighted-slot.js';

/**
 * nginx's `hash KEY` (ngx_http_upstream_get_hash_peer), compatible with Cache::Memcached:
 * ((crc32([REHASH] KEY) >> 16) & 0x7fff) + PREV_HASH selects a weighted slot; an unavailable
 * choice rehashes. An empty key falls back to round robin, as in nginx.
 */
export class Hash implements Balancer {
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
    // nginx 1.17.1+: an empty key (no such header, cookie or argument) is balanced by round robin
    // rather than sending every keyless request to the one server the empty string hashes to.
    if (ctx.key === '') return this.#fallback.pick(ctx);
    let hash = 0;
    for (let rehash = 0; rehash <= MAX_REHASH; rehash++) {
      const crc = crc32(ctx.key, rehash > 0 ? crc32(String(rehash)) : 0);
      hash += (crc >>> 16) & 0x7fff;
      const peer = weightedSlot(this.#peers, this.#total, hash, ctx);
      if (peer) return peer;
    }
    return this.#fallback.pick(ctx);
  }
}

/** Points on the ring per unit of weight (nginx and ketama use 160). */
const POINTS_PER_WEIGHT = 160;

/**
 * `hash KEY consistent`: a ketama ring. Each server owns 160 points per unit of weight, placed by
 * crc32 of its name and the previous point (nginx's construction), so removing or adding a
 * server moves only the keys on its own points (about 1/N of them). A key goes to the first point
 * at or after crc32(KEY); an unavailable server passes the key along the ring. An empty key falls
 * back to round robin, as in nginx.
 */
export class ConsistentHash implements Balancer {
  readonly #single: boolean;
  readonly #hashes: Uint32Array;
  readonly #owners: Peer[];
  readonly #fallback: RoundRobin;

  constructor(peers: readonly Peer[]) {
    this.#single = peers.length === 1;
    this.#fallback = new RoundRobin(peers);
    const points: { hash: number; peer: Peer }[] = [];
    for (const peer of peers) {
      // nginx hashes "host" NUL "port" of the server as written, so the ring does not depend on
      // the order of the servers nor on which address a name resolved to first.
      const { host, port } = peer.server.address;
      const base = crc32(Buffer.concat([Buffer.from(peer.server.name.replace(/:\d+$/, '') || host), Buffer.from([0]), Buffer.from(String(port))]));
      let prev = 0;
      const n = POINTS_PER_WEIGHT * peer.server.weight;
      for (let j = 0; j < n; j++) {
        const prevBytes = Buffer.alloc(4);
        prevBytes.writeUInt32LE(prev >>> 0);
        const h = crc32(prevBytes, base) >>> 0;
        points.push({ hash: h, peer });
        prev = h;
      }
    }
    points.sort((a, b) => a.hash - b.hash);
    this.#hashes = Uint32Array.from(points.map((p) => p.hash));
    this.#owners = points.map((p) => p.peer);
  }

  pick(ctx: PickContext): Peer | null {
    const n = this.#hashes.length;
    if (n === 0) return null;
    if (ctx.key === '') return this.#fallback.pick(ctx);
    const hash = crc32(ctx.key) >>> 0;
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#hashes[mid] as number) < hash) lo = mid + 1;
      else hi = mid;
    }
    for (let k = 0; k < Math.min(n, MAX_REHASH); k++) {
      const peer = this.#owners[(lo + k) % n] as Peer;
      if (!ctx.tried.has(peer) && peerAvailable(peer, ctx.now, this.#single)) return peer;
    }
    return this.#fallback.pick(ctx);
  }
}

export function hash(peers: readonly Peer[]): Balancer {
  return new Hash(peers);
}

export function consistentHash(peers: readonly Peer[]): Balancer {
  return new ConsistentHash(peers);
}
