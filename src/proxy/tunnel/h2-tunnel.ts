import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { RequestContext } from '../context/request-context.js';
import { SocketLeg, StreamLeg } from './legs.js';
import { Relay } from './relay.js';
import { Tunnel } from './tunnel.js';
import type { ProxyTunnel, TunnelOptions } from './tunnel.js';

const NOTHING = Buffer.alloc(0);

/**
 * An RFC 8441 tunnel: the client's HTTP/2 stream on one side, the upstream's socket on the other,
 * relayed by the same relay as a socket pair. The stream's DATA and the upstream's bytes pass as
 * they are, with flow control both ways: a stream that cannot take more pauses the upstream
 * socket; an upstream that cannot take more stops reading the stream (so no WINDOW_UPDATE goes to
 * the client). END_STREAM and FIN map to each other (half-close, RFC 8441 4); RST_STREAM and a TCP
 * reset or error map to each other (RFC 9113 8.5, CONNECT_ERROR). The caller has answered the
 * stream (200) already.
 */
export function openH2Tunnel(stream: ServerHttp2Stream, upstream: Socket, ctx: RequestContext, options: TunnelOptions): ProxyTunnel {
  const tunnel = new Tunnel(ctx, options.onEnd);
  const relay = new Relay(tunnel, new StreamLeg(stream), new SocketLeg(upstream, 'upstream', /* facesStream */ true), options.idleTimeout, options.guardrails ?? null);
  relay.sendAhead(options.clientHead ?? NOTHING, options.upstreamHead ?? NOTHING);
  tunnel.run(relay);
  relay.start();
  return tunnel;
}
