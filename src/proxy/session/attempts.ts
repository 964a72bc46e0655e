import { monotonicNow } from '../../core/clock.js';
import { ProxyError } from '../../core/errors.js';
import { events } from '../../observability/events.js';
import type { Peer } from '../../upstream/peer.js';
import { recordFailure, recordSuccess } from '../../upstream/peer.js';
import type { RequestContext, UpstreamAttempt } from '../context/request-context.js';
import type { PickKey, ProxyRoute } from './proxy-route.js';
import type { TryOutcome } from './retry-rules.js';
import type { ExchangeResponse, PeerTry, SwitchedExchange } from './peer-exchange.js';

/** A try's answer the session relays or tunnels. */
export type LiveExchange = ExchangeResponse | SwitchedExchange;

/**
 * What the attempt loop asks of its session (the session itself, so that no callbacks are made
 * per request). The loop drives each try (peer-exchange.ts), so that its one await on the exchange
 * is the only one per try, then gives the answer to the session (synchronous unless the cache
 * takes part).
 */
export interface AttemptHost {
  /** One try at `peer` (not begun yet); `mayRetryAfter`: another server may still be tried after this one. */
  tryPeer(peer: Peer, attempt: UpstreamAttempt, mayRetryAfter: boolean): PeerTry;
  /** The try got an answer to relay or tunnel: the session takes it. */
  answered(x: LiveExchange, peer: Peer, attempt: UpstreamAttempt): TryOutcome | Promise<TryOutcome>;
  /** A try failed (each failure is logged as it happens, as nginx does). */
  attemptFailed(peer: Peer, error: ProxyError): void;
}

const NO_KEY: PickKey = { key: '' };

/** What the first pick is given as tried: nothing (most requests make one try and need no Set). */
const NOTHING_TRIED: ReadonlySet<Peer> = new Set<Peer>();

/**
 * One more try for `$upstream_*`: the first makes the array at its exact size (an empty array's
 * first push() leaves room for 17).
 */
function noteAttempt(ctx: RequestContext, attempt: UpstreamAttempt): void {
  if (ctx.attempts.length === 0) ctx.attempts = [attempt];
  else ctx.attempts.push(attempt);
}

/**
 * nginx's tries for a group: one per server line that is not `down` (ngx_http_upstream_init_round_robin
 * counts no tries for down servers), so when the rest are down the first answer is the last one
 * and is relayed as it came (a 404 under http_404, say), not "no live upstreams".
 */
function triesOf(peers: readonly Peer[]): number {
  let n = 0;
  for (const p of peers) if (!p.server.down) n++;
  return n;
}

/**
 * The attempt loop: the pool yields servers in balancer order, skipping unavailable and already
 * tried ones; a failure before anything reached the client may move on to the next server, within
 * proxy_next_upstream_tries and proxy_next_upstream_timeout. Returns null on success, else the
 * error that ends the request.
 */
export async function runAttempts(
  ctx: RequestContext, route: ProxyRoute, host: AttemptHost, pickKey: PickKey = NO_KEY,
): Promise<ProxyError | null> {
  // The servers tried so far: the first alone in `first`, a Set from the second try on.
  let first: Peer | null = null;
  let tried: Set<Peer> | null = null;
  let count = 0;
  const s = route.settings;
  const started = monotonicNow();
  const peerCount = triesOf(route.pool.primary) + triesOf(route.pool.backup);
  const maxTries = s.proxyNextUpstreamTries > 0 ? Math.min(s.proxyNextUpstreamTries, peerCount) : peerCount;
  let last: ProxyError | null = null;
  for (;;) {
    const now = monotonicNow();
    if (first !== null && tried === null) tried = new Set([first]);
    const peer = route.pool.pick(tried ?? NOTHING_TRIED, now, pickKey.key, pickKey.sticky, pickKey.learnt ?? undefined);
    if (!peer) {
      // nginx names the group where no server was left (ngx_http_upstream_get_round_robin_peer
      // sets pc->name to it): "$upstream_addr" ends in "backend" with a 502, and the request
      // ends in "no live upstreams", also after tries that failed (NOLIVE is never retried).
      noteAttempt(ctx, { addr: route.pool.name, status: 502, connectTime: -1, headerTime: -1, responseTime: 0, bytesSent: 0, bytesReceived: 0 });
      return new ProxyError('NO_LIVE_UPSTREAMS', `upstream "${route.pool.name}"`);
    }
    if (tried === null) first = peer;
    else tried.add(peer);
    count++;
    if (events.upstreamPick.hasSubscribers) {
      events.upstreamPick.publish({ upstream: route.pool.name, server: peer.addr, reason: count === 1 ? 'balancer' : 'retry' });
    }
    const attempt: UpstreamAttempt = { addr: peer.addr, status: 0, connectTime: -1, headerTime: -1, responseTime: -1, bytesSent: 0, bytesReceived: 0 };
    noteAttempt(ctx, attempt);
    const withinTime = s.proxyNextUpstreamTimeout === 0 || now - started < s.proxyNextUpstreamTimeout;
    const more = count < maxTries && withinTime;
    const tryStart = performance.now();
    const t = host.tryPeer(peer, attempt, more);
    let x = t.failed;
    while (x === null) x = t.settle(await t.begin());
    let out = x.kind === 'done' ? x.outcome : host.answered(x, peer, attempt);
    if (out instanceof Promise) out = await out;
    if (out.ok) {
      recordSuccess(peer, monotonicNow());
      return null;
    }
    // nginx's $upstream_status shows the status a failed try maps to (502, 504) when no response came.
    if (attempt.status === 0 && out.error.source === 'upstream') attempt.status = out.error.status;
    // ...and a response time for every try, a failed one too (ngx_http_upstream_next).
    if (attempt.responseTime < 0) attempt.responseTime = performance.now() - tryStart;
    if (out.countFailure) recordFailure(peer, monotonicNow());
    if (events.upstreamFail.hasSubscribers) events.upstreamFail.publish({ upstream: route.pool.name, server: peer.addr, error: out.error.code });
    host.attemptFailed(peer, out.error);
    last = out.error;
    const timeLeft = s.proxyNextUpstreamTimeout === 0 || monotonicNow() - started < s.proxyNextUpstreamTimeout;
    if (!out.retryable || count >= maxTries || !timeLeft) return last;
  }
}
