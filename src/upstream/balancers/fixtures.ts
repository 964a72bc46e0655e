/** Test fixtures for balancers (used by the contract and per-method suites). */
import type { UpstreamServer } from '../../config/types.js';
import { Peer, PeerState } from '../peer.js';

export function testPeer(port: number, extra: Partial<UpstreamServer> = {}): Peer {
  const server: UpstreamServer = {
    name: `127.0.0.1:${port}`, address: { host: '127.0.0.1', port, family: 4 }, weight: 1, maxFails: 1,
    failTimeout: 10_000, backup: false, down: false, maxConns: 0, slowStart: 0, loc: { file: 't', line: 1 }, ...extra,
  };
  return new Peer(server, new PeerState());
}

/** A seeded generator (mulberry32) so random methods are repeatable. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

