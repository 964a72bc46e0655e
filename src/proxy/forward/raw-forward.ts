/**
 * What the forward proxy's two raw-socket requests share (a CONNECT, and an absolute-form request
 * that asks for an upgrade, both on the socket Node hands over): which server takes them, the
 * request's context and its one end (access log, events), refusals as pages, and the tunnel
 * between the client and the destination (the socket tunnel, so the native relay takes it where
 * it can, proxy_read_timeout as its idle timeout, counted like every tunnel, kept by reloads).
 */
import type { UpgradeRequest } from '../front/h1-head-parser.js';
import type { Socket } from 'node:net';
import type { ServerConfig } from '../../config/types.js';
import { events } from '../../observability/events.js';
import { errorResponse, sendLocalRaw } from '../answer/respond.js';
import { logContext } from '../context/log-context.js';
import type { RequestContext } from '../context/request-context.js';
import { contextFor } from '../front/h1-request.js';
import { EARLY_BYTES_LIMIT } from '../front/h1-upgrade.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { nativeTunnels } from '../tunnel/native-tunnels.js';
import { openSocketTunnel } from '../tunnel/socket-tunnel.js';
import type { ForwardRequest } from './reach.js';

function noop(): void {}

/**
 * The client's FIN before its tunnel opened or it was answered (while a limit_req delay, admission
 * or the connection runs): it has left, as nginx's ngx_http_test_reading decides for a waiting
 * request, and as the h1 upgrade front end treats it; the close that follows ends the request (499).
 */
function onForwardSocketEnd(this: Socket): void {
  this.destroy();
}

/**
 * The server that answers forward-proxy requests on this connection: the default server of the
 * address, when it has `forward_proxy on` (config validation refuses it anywhere else).
 */
export function forwardServer(rt: ProxyRuntime, socket: Socket): ServerConfig | null {
  const server = rt.routesFor(socket).group.defaultServer;
  return server.settings.forwardProxy.on ? server : null;
}

/** An absolute-form request target (RFC 9112 3.2.2): a scheme, then `://`. */
export function isAbsoluteForm(url: string | undefined): boolean {
  return url !== undefined && url[0] !== '/' && /^[a-z][a-z0-9+.-]*:\/\//i.test(url);
}

/**
 * Routes the request to the forward-proxy server (no location: the server's settings apply). A
 * forward request never reaches the location phases: the server's limits, allow/deny and body
 * limits apply on the way to the destination (reach.ts, absolute-form.ts).
 */
export function enterForwardServer(ctx: RequestContext, server: ServerConfig): void {
  ctx.server = server;
  ctx.settings = server.settings;
  if (events.requestStart.hasSubscribers) events.requestStart.publish({ ctx });
}

/** A request on a raw socket: its context, and the one end (the access log, the end event). */
export interface RawForward extends ForwardRequest {
  readonly socket: Socket;
  /** `bytesRead`: the client socket's, counted only when no tunnel opened. */
  readonly finish: (bytesRead: number) => void;
  /**
   * The client's bytes after the request head, read (up to EARLY_BYTES_LIMIT, then reading
   * pauses) while the destination is being reached, so that a client that leaves is noticed;
   * taking them stops the reading.
   */
  takeEarly(): Buffer;
}

/** Takes over the raw socket of a CONNECT or an upgrade for the forward-proxy `server`. */
export function startRawForward(rt: ProxyRuntime, req: UpgradeRequest, socket: Socket, head: Buffer, server: ServerConfig): RawForward {
  socket.on('error', noop);
  socket.setTimeout(0);
  const ctx = contextFor(rt, req);
  const readMark = ctx.conn.readMark;
  ctx.bytesReceived = Math.max(0, socket.bytesRead - head.length - readMark);
  enterForwardServer(ctx, server);
  let finished = false;
  // No closure here names `socket`: a tunnel's end callback keeps `finish`, and a tunnel the
  // native addon holds must not keep its closed client Socket alive through it.
  const finish = (bytesRead: number): void => {
    if (finished) return;
    finished = true;
    ctx.endMs = performance.now();
    if (ctx.tunnelStartMs === 0) ctx.bytesReceived = Math.max(0, bytesRead - readMark);
    rt.finish(ctx);
  };
  socket.on('close', function onForwardSocketClose(this: Socket) {
    if (ctx.tunnelStartMs !== 0) return;
    if (ctx.status === 0) ctx.status = 499;
    finish(this.bytesRead);
  });
  const early: Buffer[] = head.length > 0 ? [head] : [];
  let earlyBytes = head.length;
  const keep = (chunk: Buffer): void => {
    early.push(chunk);
    earlyBytes += chunk.length;
    if (earlyBytes >= EARLY_BYTES_LIMIT) socket.pause();
  };
  socket.on('data', keep);
  socket.once('end', onForwardSocketEnd);
  socket.resume();
  const takeEarly = (): Buffer => {
    socket.removeListener('data', keep);
    socket.removeListener('end', onForwardSocketEnd);
    socket.pause();
    return early.length === 1 ? early[0]! : Buffer.concat(early);
  };
  const settings = server.settings;
  return {
    rt, ctx, socket, settings, finish, takeEarly,
    gone: () => socket.destroyed,
    refuse: (refusal) => {
      // What the client sent ahead is dropped; the lingering close reads what follows.
      socket.removeListener('data', keep);
      socket.removeListener('end', onForwardSocketEnd);
      const page = errorResponse(refusal.status, settings, ctx, rt.vars);
      page.headers.push(...refusal.headers);
      sendLocalRaw(socket, page, ctx);
    },
  };
}

/**
 * The tunnel between the client and the destination, once the client has been told (200 for a
 * CONNECT, the destination's own answer for an upgrade): `clientHead` goes to the destination
 * first, `upstreamHead` to the client.
 */
export function openForwardTunnel(rt: ProxyRuntime, f: RawForward, upstream: Socket, clientHead: Buffer, upstreamHead: Buffer): void {
  const { ctx, settings, finish, socket } = f;
  ctx.tunnelStartMs = performance.now();
  ctx.tunnelBodyStarts();
  ctx.compactForTunnel(rt.tunnelKeep(ctx.settings));
  if (socket.destroyed) {
    upstream.destroy();
    finish(0);
    return;
  }
  const tunnel = openSocketTunnel(socket, upstream, ctx, {
    idleTimeout: settings.proxyReadTimeout,
    onEnd: {
      tunnelEnded(t, reason) {
        rt.tunnelClosed(t);
        if (reason === 'idle timeout') rt.errorLog(settings).log('info', `upstream timed out (110: Connection timed out) while proxying connection${logContext(ctx, ctx.proxyPass?.url)}`, ctx.conn.id);
        finish(0);
      },
    },
    clientHead,
    upstreamHead,
    native: settings.nativeTunnels === 'off' ? null : nativeTunnels(),
    host: rt.tunnelHost,
  });
  rt.tunnelOpened(tunnel);
}
