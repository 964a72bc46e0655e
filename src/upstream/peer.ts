import type { SockAddr, UpstreamServer } from '../config/types.js';

/** "127.0.0.1:8010" or "[::1]:8010", as `$upstream_addr` shows it. */
export function formatAddr(a: SockAddr): string {
  return a.family === 6 ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * Live state of one upstream server, kept apart from its config and keyed by upstream name and
 * address so that it survives a reload for servers that still exist.
 */
export class PeerState {
  /** Failures counted since the last success (nginx `fails`). */
  fails = 0;
  /** When the last failure happened (ms, monotonic clock). */
  accessed = 0;
  /** Start of the current fail_timeout window (ms). */
  checked = 0;
  /** Open connections to this server, WebSocket tunnels included, for their whole life. */
  active = 0;
}

/** One upstream server as a balancer sees it: config, live state, and its balancing weights. */
export class Peer {
  readonly server: UpstreamServer;
  /** "127.0.0.1:8010" or "[::1]:8010" (`$upstream_addr`). */
  readonly addr: string;
  readonly state: PeerState;
  currentWeight = 0;
  effectiveWeight: number;

  constructor(server: UpstreamServer, state: PeerState) {
    this.server = server;
    this.addr = formatAddr(server.address);
    this.state = state;
    this.effectiveWeight = server.weight;
  }
}

/** nginx's availability rule for a peer in round robin and every method built on it. */
export function peerAvailable(peer: Peer, now: number, single: boolean): boolean {
  if (peer.server.down) return false;
  if (single) return true; // nginx never marks the only server of a group as failed
  const s = peer.state;
  const max = peer.server.maxFails;
  return !(max > 0 && s.fails >= max && now - s.checked <= peer.server.failTimeout);
}

/** nginx ngx_http_upstream_free_round_robin_peer, failure branch. */
export function recordFailure(peer: Peer, now: number): void {
  const s = peer.state;
  s.fails++;
  s.accessed = now;
  s.checked = now;
  const max = peer.server.maxFails;
  if (max > 0) {
    peer.effectiveWeight -= Math.floor(peer.server.weight / max);
    if (peer.effectiveWeight < 0) peer.effectiveWeight = 0;
  }
}

/** nginx ngx_http_upstream_free_round_robin_peer, success branch. */
export function recordSuccess(peer: Peer): void {
  const s = peer.state;
  if (s.accessed < s.checked) s.fails = 0;
}
