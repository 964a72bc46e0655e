import type { SockAddr, UpstreamServer } from '../config/types.js';

/** "127.0.0.1:8010", "[::1]:8010" or "unix:/path", as `$upstream_addr` shows it. */
export function formatAddr(a: SockAddr): string {
  if (a.path !== undefined) return `unix:${a.path}`;
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
  /**
   * The other fleet members' open connections to this server, as last read from Redis (0 without
   * a fleet, or while Redis is unreachable): `least_conn fleet` balances on active + remote.
   */
  remote = 0;
  /** Active health: false once `fails` consecutive probes failed, until `passes` succeed. */
  healthy = true;
  probeFails = 0;
  probePasses = 0;
  /** When the server last came back (ms), for slow_start; 0 = never went away. */
  recoveredAt = 0;
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

/** Whether a balancer may pick a peer now ('up'), or the first reason it may not. */
export type PeerAvailability = 'up' | 'down' | 'unhealthy' | 'full' | 'failed';

/**
 * nginx's availability rule for a peer in round robin and every method built on it: not `down`,
 * not unhealthy by active checks, not full (max_conns), not failed (max_fails within
 * fail_timeout). The one definition: the balancers ask {@link peerAvailable}, and the status
 * pages show the reason by name, so what they show is what the balancers do.
 *
 * @param now - the monotonic clock the attempt loop uses (ms).
 * @param single - the peer is the group's only server: nginx never marks that one as failed.
 */
export function peerAvailability(peer: Peer, now: number, single: boolean): PeerAvailability {
  const s = peer.state;
  if (peer.server.down) return 'down';
  if (!s.healthy) return 'unhealthy';
  if (peer.server.maxConns > 0 && s.active >= peer.server.maxConns) return 'full';
  if (single) return 'up';
  const max = peer.server.maxFails;
  return max > 0 && s.fails >= max && now - s.checked <= peer.server.failTimeout ? 'failed' : 'up';
}

/** Whether a balancer may pick `peer` now: {@link peerAvailability} says 'up'. */
export function peerAvailable(peer: Peer, now: number, single: boolean): boolean {
  return peerAvailability(peer, now, single) === 'up';
}

/** The weight a peer may use now: slow_start ramps it from 1 up to its weight after it recovers. */
export function weightNow(peer: Peer, now: number): number {
  const w = peer.server.weight;
  const ramp = peer.server.slowStart;
  const since = now - peer.state.recoveredAt;
  if (ramp <= 0 || peer.state.recoveredAt === 0 || since >= ramp) return w;
  return Math.max(1, Math.floor((w * since) / ramp));
}

/**
 * Every nginx balancing method, on handing out a peer: once its fail_timeout window has passed,
 * the pick opens a new one (`checked = now`), so that a success on this try clears the old
 * failures (see recordSuccess) instead of leaving them to count against the next failure.
 */
export function notePicked(peer: Peer, now: number): void {
  if (now - peer.state.checked > peer.server.failTimeout) peer.state.checked = now;
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
export function recordSuccess(peer: Peer, now: number): void {
  const s = peer.state;
  if (s.accessed < s.checked) {
    if (peer.server.maxFails > 0 && s.fails >= peer.server.maxFails) s.recoveredAt = now;
    s.fails = 0;
  }
}
