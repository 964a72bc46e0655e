import type { BalanceMethod } from '../../config/types.js';
import type { Peer } from '../peer.js';
import type { Balancer, BalancerOptions } from './balancer.js';
import { consistentHash, hash } from './hash.js';
import { ipHash } from './ip-hash.js';
import { leastConn } from './least-conn.js';
import { random } from './random.js';
import { roundRobin } from './round-robin.js';

export const DEFAULT_BALANCER_OPTIONS: BalancerOptions = Object.freeze({ random: Math.random });

/** Builds the balancer for an upstream's method over one list of peers. */
export function makeBalancer(method: BalanceMethod, peers: readonly Peer[], options: BalancerOptions = DEFAULT_BALANCER_OPTIONS): Balancer {
  switch (method.name) {
    case 'round_robin': return roundRobin(peers);
    case 'least_conn': return leastConn(peers, method.fleet === true);
    case 'ip_hash': return ipHash(peers);
    case 'hash': return method.consistent ? consistentHash(peers) : hash(peers);
    case 'random': return random(method.two)(peers, options);
  }
}

/** One example of every method, for the shared contract suite. */
export const EVERY_METHOD: readonly BalanceMethod[] = Object.freeze([
  { name: 'round_robin' },
  { name: 'least_conn' },
  { name: 'least_conn', fleet: true },
  { name: 'ip_hash' },
  { name: 'hash', key: { raw: '$remote_addr', parts: [{ variable: 'remote_addr' }], constant: null }, consistent: false },
  { name: 'hash', key: { raw: '$remote_addr', parts: [{ variable: 'remote_addr' }], constant: null }, consistent: true },
  { name: 'random', two: false },
  { name: 'random', two: true },
]);

export function methodLabel(m: BalanceMethod): string {
  if (m.name === 'hash') return m.consistent ? 'hash consistent' : 'hash';
  if (m.name === 'random') return m.two ? 'random two' : 'random';
  if (m.name === 'least_conn' && m.fleet === true) return 'least_conn fleet';
  return m.name;
}
