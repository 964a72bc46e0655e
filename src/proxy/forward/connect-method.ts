/**
 * `CONNECT host:port` (RFC 9110 9.3.6) on a `forward_proxy` server: authentication, the
 * allowlist and the resolved addresses (admission.ts), a connection under proxy_connect_timeout,
 * then `200 Connection established` and a byte tunnel (TLS for https:// and wss://, or anything
 * else). The access log's `$request` is `CONNECT host:port HTTP/1.1`, `$status` 200, and the
 * tunnelled bytes count as the request's.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { ServerConfig } from '../../config/types.js';
import { rawAnswer } from '../front/h1-upgrade.js';
import { failRequest } from '../session/guard.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { parseDestination } from './destinations.js';
import { openForwardTunnel, startRawForward } from './raw-forward.js';
import type { RawForward } from './raw-forward.js';
import { badTarget, reachDestination } from './reach.js';

const ESTABLISHED = Buffer.from('HTTP/1.1 200 Connection established\r\n\r\n', 'latin1');

/** The 'connect' handler for a server with `forward_proxy on`. */
export function handleConnect(rt: ProxyRuntime, req: IncomingMessage, socket: Socket, head: Buffer, server: ServerConfig): void {
  const f = startRawForward(rt, req, socket, head, server);
  const sentBefore = socket.bytesWritten;
  connectTunnel(f, req.url ?? '').catch((err: unknown) => failRequest(rt, f.ctx, rawAnswer(socket, sentBefore), err));
}

async function connectTunnel(f: RawForward, target: string): Promise<void> {
  const { ctx } = f;
  // The port is required (RFC 9110 9.3.6).
  const dest = parseDestination(target, null);
  if (dest === null) {
    badTarget(f, target);
    return;
  }
  const upstream = await reachDestination(f, dest, 'https');
  if (upstream === null) return;
  ctx.status = 200;
  const attempt = ctx.attempts.at(-1);
  if (attempt !== undefined) attempt.status = 200;
  ctx.bytesSent += ESTABLISHED.length;
  f.socket.write(ESTABLISHED);
  // Bytes the client sent after the CONNECT head (a TLS ClientHello, optimistically) go first.
  openForwardTunnel(f.rt, f, upstream, f.takeEarly(), Buffer.alloc(0));
}
