/**
 * What the two front ends that open tunnels (h1-upgrade.ts, h2-connect.ts) share about them: the
 * guardrails a route puts on a WebSocket tunnel, and the error-log line of its end.
 */
import type { Settings } from '../../config/types.js';
import type { Peer } from '../../upstream/peer.js';
import type { FrameLimits } from '../../websocket/frame-guard.js';
import { logContext, upstreamUrl } from '../context/log-context.js';
import type { RequestContext } from '../context/request-context.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import type { MessageRateSettings } from '../tunnel/message-rate.js';
import type { PingSettings } from '../tunnel/pinger.js';
import type { ProxyTunnel } from '../tunnel/tunnel.js';

/** websocket_message_rate of a WebSocket tunnel; null: none (or not a WebSocket). */
export function tunnelRate(settings: Settings, ctx: RequestContext): MessageRateSettings | null {
  return ctx.websocket ? settings.websocketMessageRate : null;
}

/** websocket_ping_interval / websocket_ping_timeout of a WebSocket tunnel; null: no pings (or not a WebSocket). */
export function tunnelPings(settings: Settings, ctx: RequestContext): PingSettings | null {
  if (!ctx.websocket || settings.websocketPingInterval === 0) return null;
  return { interval: settings.websocketPingInterval, timeout: settings.websocketPingTimeout };
}

/** websocket_max_frame_size / websocket_max_message_size of a WebSocket tunnel; null: none set (or not a WebSocket). */
export function tunnelGuards(settings: Settings, ctx: RequestContext): FrameLimits | null {
  if (!ctx.websocket || (settings.websocketMaxFrame === 0 && settings.websocketMaxMessage === 0)) return null;
  return { maxFrame: settings.websocketMaxFrame, maxMessage: settings.websocketMaxMessage };
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
