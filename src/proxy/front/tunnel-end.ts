/**
 * What the two front ends that open tunnels (h1-upgrade.ts, h2-connect.ts) share about them: the
 * guardrails a route puts on a WebSocket tunnel, and the error-log line of its end.
 */
import type { Peer } from '../../upstream/peer.js';
import { logContext, upstreamUrl } from '../context/log-context.js';
import type { RequestContext } from '../context/request-context.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import type { TunnelGuardrails } from '../tunnel/guardrails.js';
import type { ProxyTunnel } from '../tunnel/tunnel.js';

/** The guardrails of a WebSocket tunnel of `route` (built with the route); null: none set, or not a WebSocket. */
export function tunnelGuardrails(route: ProxyRoute, ctx: RequestContext): TunnelGuardrails | null {
  return ctx.websocket ? route.guardrails : null;
}

/** The error-log line of a tunnel's end, where it has one: a guardrail that closed it, or the idle timeout. */
export function logTunnelEnd(rt: ProxyRuntime, route: ProxyRoute, peer: Peer, ctx: RequestContext, tunnel: ProxyTunnel, reason: string): void {
  if (tunnel.refusal !== null) {
    // As nginx's "client intended to send too large body" (error), and its client time-outs (info).
    rt.errorLog(route.settings).log(tunnel.refusal.level, `${tunnel.refusal.line} while proxying upgraded connection${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
  } else if (reason === 'idle timeout') {
    rt.errorLog(route.settings).log('info', `upstream timed out (110: Connection timed out) while proxying upgraded connection${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
  }
}
