/**
 * WebSockets over HTTP/2 (RFC 8441), which nginx does not do. The client sends an extended CONNECT
 * (`:method CONNECT`, `:protocol websocket`, allowed by our SETTINGS_ENABLE_CONNECT_PROTOCOL);
 * the upstream gets the ordinary HTTP/1.1 upgrade it expects, with the same forwarded headers as an
 * HTTP/1.1 WebSocket request and a fresh Sec-WebSocket-Key (RFC 8441 5: HTTP/2 has none), whose
 * Sec-WebSocket-Accept is checked. A 101 becomes a 200 on the client's stream (without the
 * HTTP/1.1-only Upgrade, Connection and Sec-WebSocket-Accept), and the stream's DATA and the
 * upstream's bytes are then relayed as they are, with flow control both ways: a stream that cannot
 * take more pauses the upstream socket; an upstream that cannot take more stops reading the stream
 * (so no WINDOW_UPDATE goes to the client). END_STREAM and FIN map to each other (half-close),
 * RST_STREAM and a TCP reset or error map to each other (RFC 8441 4, RFC 9113 8.5 CONNECT_ERROR).
 */
import { randomBytes } from 'node:crypto';
import { constants as h2 } from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { AdminHandler, Settings } from '../../config/types.js';
import { ProxyError } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';
import type { RouteDecision } from '../../routing/router.js';
import type { Peer } from '../../upstream/peer.js';
import { acceptKey } from '../../websocket/accept-key.js';
import { FrameCursor } from '../../websocket/frame-cursor.js';
import { encodeClose } from '../../websocket/frame-writer.js';
import { errorResponse } from '../answer/respond.js';
import type { StreamedResponse } from '../answer/streamed.js';
import type { UpstreamMessage } from '../client/node-client.js';
import { logContext, upstreamUrl } from '../context/log-context.js';
import { RequestContext } from '../context/request-context.js';
import { rememberSent } from '../headers/response-headers.js';
import type { ForwardMode } from '../headers/upstream-request.js';
import type { FrontEnd } from '../session/front-end.js';
import type { SwitchedExchange } from '../session/peer-exchange.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { ProxySession } from '../session/session.js';
import type { Tunnel } from '../tunnel/socket-tunnel.js';
import { H2Front } from './h2-front.js';
import type { H2Request } from './h2-messages.js';
import { h2ResponseHeaders, headerBytes } from './h2-messages.js';

const WEBSOCKET: ForwardMode = Object.freeze({ upgrade: 'websocket', upgradeValue: 'websocket' });

/** Response fields that only mean something in an HTTP/1.1 upgrade (RFC 8441 5). */
const HTTP1_UPGRADE_ONLY = new Set(['sec-websocket-accept']);

function noop(): void {}

/**
 * The request the upstream gets for an extended CONNECT: GET with the client's path and headers,
 * a fresh Sec-WebSocket-Key, and Upgrade/Connection as an HTTP/1.1 client would send them (so
 * `$http_upgrade` reads "websocket" as for an HTTP/1.1 WebSocket request).
 */
function upgradeContext(rt: ProxyRuntime, socket: TLSSocket, m: H2Request): { ctx: RequestContext; key: string } {
  const key = randomBytes(16).toString('base64');
  const raw: string[] = [];
  for (let i = 0; i < m.rawHeaders.length; i += 2) {
    if (m.rawHeaders[i] === 'sec-websocket-key') continue;
    raw.push(m.rawHeaders[i] as string, m.rawHeaders[i + 1] as string);
  }
  raw.push('sec-websocket-key', key);
  const headers = { ...m.headers, 'sec-websocket-key': key, upgrade: 'websocket', connection: 'upgrade' };
  delete headers['transfer-encoding'];
  const ctx = new RequestContext(rt.connInfo(socket), 'GET', m.path, '2.0', headers, raw, performance.now());
  ctx.upgrade = 'websocket';
  ctx.websocket = true;
  ctx.bytesReceived = headerBytes(m.rawHeaders);
  return { ctx, key };
}

/** RFC 6455 4.1 as the proxy checks it for its own key: a 101 to websocket with the right accept. */
function checkSwitch(key: string, res: UpstreamMessage): ProxyError | null {
  const got = (res.headers.upgrade ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
  if (got !== 'websocket') return new ProxyError('UPSTREAM_UPGRADE_MISMATCH', `asked "websocket", got "${got}"`);
  if (res.headers['sec-websocket-accept'] !== acceptKey(key)) return new ProxyError('UPSTREAM_BAD_ACCEPT');
  return null;
}

/** An extended CONNECT on a client stream. */
export function handleH2WebSocket(rt: ProxyRuntime, socket: TLSSocket, stream: ServerHttp2Stream, m: H2Request): void {
  const { ctx, key } = upgradeContext(rt, socket, m);
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    ctx.endMs = performance.now();
    rt.finish(ctx);
  };
  stream.once('close', () => {
    if (ctx.tunnelStartMs !== 0) return;
    if (ctx.status === 0) ctx.status = 499;
    finish();
  });
  new ProxySession(rt, ctx, new H2ConnectFront(rt, ctx, socket, stream, m.protocol ?? '', key, finish)).start();
}

/** An RFC 8441 WebSocket: the upstream gets an HTTP/1.1 upgrade with a key of Sluice's own. */
export class H2ConnectFront extends H2Front implements FrontEnd {
  readonly mode: ForwardMode = WEBSOCKET;
  /** The client is answered 200 (RFC 8441 5); add_header and the filters see the 101 they relay. */
  readonly switchedStatus = 200;
  readonly #protocol: string;
  readonly #key: string;
  readonly #finish: () => void;

  constructor(rt: ProxyRuntime, ctx: RequestContext, socket: TLSSocket, stream: ServerHttp2Stream, protocol: string, key: string, finish: () => void) {
    super(rt, ctx, socket, stream);
    this.#protocol = protocol;
    this.#key = key;
    this.#finish = finish;
  }

  route(): RouteDecision | null {
    const { rt, ctx } = this;
    if (this.#protocol.toLowerCase() !== 'websocket') {
      rt.routesFor(this.socket).route(ctx);
      // RFC 8441 4: other protocols are not something this proxy can carry to an HTTP/1.1 upstream.
      rt.errorLog(ctx.settings).log('info', `client sent extended CONNECT for unsupported protocol "${this.#protocol}"${logContext(ctx)}`, ctx.conn.id);
      this.send(errorResponse(501, ctx.settings, ctx, rt.vars));
      return null;
    }
    return this.decide();
  }

  override serveAdmin(_handler: AdminHandler, settings: Settings): undefined {
    // A status location is no WebSocket endpoint.
    this.send(errorResponse(405, settings, this.ctx, this.rt.vars));
    return undefined;
  }

  override sendStreamed(_s: ProxySession, r: StreamedResponse): void {
    // A file is no WebSocket endpoint either (the stream asked for a tunnel, not a body).
    r.body?.destroy();
    this.send(errorResponse(405, this.ctx.settings, this.ctx, this.rt.vars));
  }

  start(s: ProxySession): null {
    const { ctx, stream } = this;
    stream.once('close', () => {
      if (ctx.tunnelStartMs !== 0 || ctx.status !== 0) return;
      s.clientLeft();
    });
    return null;
  }

  checkSwitch(res: UpstreamMessage): ProxyError | null {
    return checkSwitch(this.#key, res);
  }

  tunnel(s: ProxySession, x: SwitchedExchange, peer: Peer): void {
    openH2Tunnel(this.rt, this.ctx, s.route as ProxyRoute, peer, this.stream, x, this.#finish);
  }

  left(): void {
    this.#finish();
  }
}

function openH2Tunnel(
  rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute, peer: Peer, stream: ServerHttp2Stream,
  switched: SwitchedExchange, finish: () => void,
): void {
  const { socket: upstream, head: upstreamHead, release } = switched;
  const flat = switched.headers.filter((_, i, a) => {
    const name = (i % 2 === 0 ? a[i] : a[i - 1]) as string;
    return !HTTP1_UPGRADE_ONLY.has(name.toLowerCase());
  });
  flat.unshift('Server', 'sluice');
  rememberSent(ctx, flat);
  if (stream.destroyed || stream.closed) {
    upstream.destroy();
    release();
    finish();
    return;
  }
  try {
    stream.respond(h2ResponseHeaders(200, flat));
  } catch (err) {
    upstream.destroy();
    release();
    rt.errorLog(route.settings).log('error', `cannot relay upstream response: ${(err as Error).message}${logContext(ctx)}`, ctx.conn.id);
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  ctx.bytesSent += headerBytes(flat);
  ctx.tunnelStartMs = performance.now();
  const tunnel = new H2Tunnel(stream, upstream, ctx, route.settings.proxyReadTimeout, (t, reason) => {
    release();
    rt.tunnelClosed(t as unknown as Tunnel);
    if (reason === 'idle timeout') {
      rt.errorLog(route.settings).log('info', `upstream timed out (110: Connection timed out) while proxying upgraded connection${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
    }
    finish();
  });
  rt.tunnelOpened(tunnel as unknown as Tunnel);
  // Server bytes that came with the 101 go first.
  if (upstreamHead.length > 0) tunnel.toClient(upstreamHead);
}

/**
 * RFC 9113 8.5: an error on the stream is passed on as a TCP reset. Node can reset a plain TCP
 * socket whose write side is still open (libuv refuses a reset after a shutdown, and the socket
 * would never close); a TLS one (an https upstream) or a half-closed one is destroyed instead.
 */
function resetSocket(socket: Socket): void {
  try {
    if ('encrypted' in socket || socket.writableEnded) socket.destroy();
    else socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** What an H2Tunnel reports when both sides are done. */
export type H2TunnelEnd = (tunnel: H2Tunnel, reason: string) => void;

/**
 * An RFC 8441 tunnel: the client's stream on one side, the upstream's socket on the other. It has
 * the shape of the HTTP/1.1 Tunnel that the registry, reloads and shutdown use (`ctx`, `reason`,
 * `goAway`, `destroy`).
 */
export class H2Tunnel {
  readonly stream: ServerHttp2Stream;
  readonly upstream: Socket;
  readonly ctx: RequestContext;
  reason = '';
  /** Frame boundaries each way, so that going away ends each direction with a close frame between two frames. */
  readonly up = new FrameCursor();
  readonly down = new FrameCursor();
  #goingAway = false;
  #closeSentUp = false;
  #closeSentDown = false;
  #awayTimer: NodeJS.Timeout | null = null;
  #streamClosed = false;
  #upstreamClosed = false;
  readonly #onEnd: H2TunnelEnd;

  constructor(stream: ServerHttp2Stream, upstream: Socket, ctx: RequestContext, idleTimeout: number, onEnd: H2TunnelEnd) {
    this.stream = stream;
    this.upstream = upstream;
    this.ctx = ctx;
    this.#onEnd = onEnd;
    upstream.allowHalfOpen = true;
    upstream.setNoDelay(true);
    upstream.on('error', noop);
    stream.on('data', (chunk: Buffer) => this.#fromClient(chunk));
    upstream.on('data', (chunk: Buffer) => this.toClient(chunk));
    upstream.on('drain', () => stream.resume());
    stream.on('drain', () => upstream.resume());
    // END_STREAM <-> FIN (RFC 8441 4): each direction ends on its own.
    // Going away, a direction that ends is done: its end stands for its close frame.
    stream.on('end', () => {
      if (!this.reason) this.reason = 'client closed';
      if (!upstream.destroyed) upstream.end();
      if (this.#goingAway) this.#sendClose(true);
    });
    upstream.on('end', () => {
      if (!this.reason) this.reason = 'upstream closed';
      if (!stream.destroyed && !stream.closed) stream.end();
      if (this.#goingAway) this.#sendClose(false);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!this.reason) this.reason = `upstream error: ${err.code ?? err.message}`;
    });
    upstream.on('close', (hadError: boolean) => {
      this.#upstreamClosed = true;
      // A reset or error upstream resets the stream (RFC 9113 8.5: CONNECT_ERROR).
      if (!stream.destroyed && !stream.closed) {
        if (hadError || !upstream.readableEnded) stream.close(h2.NGHTTP2_CONNECT_ERROR);
        else stream.end();
      }
      this.#maybeDone();
    });
    stream.on('close', () => {
      this.#streamClosed = true;
      if (stream.rstCode !== h2.NGHTTP2_NO_ERROR) {
        // A reset says more than the END_STREAM some clients send just before it.
        if (!this.reason || this.reason === 'client closed') this.reason = `client reset (${stream.rstCode})`;
        resetSocket(upstream);
      } else if (this.#goingAway && this.#closeSentUp && this.#closeSentDown && upstream.writableEnded) {
        // Going away, both directions done: the upstream is read (its bytes dropped) until its FIN,
        // rather than reset while it may still be finishing what it sends; the timer bounds it.
        upstream.resume();
      } else if (!upstream.destroyed) {
        // Both directions ended cleanly on the stream: finish writing, then close.
        if (upstream.writableEnded) upstream.destroySoon();
        else upstream.end(() => upstream.destroy());
      }
      this.#maybeDone();
    });
    if (idleTimeout > 0) {
      // Stream reads and writes both reset its timer: this measures idleness both ways.
      stream.setTimeout(timerDelay(idleTimeout), () => this.destroy('idle timeout'));
    }
    upstream.resume();
  }

  /** @internal upstream bytes to the client (flow control: pause the upstream while the stream is full). */
  toClient(chunk: Buffer): void {
    this.ctx.bytesSent += chunk.length;
    if (this.#goingAway) {
      this.#relayUntilBoundary(chunk, false);
      return;
    }
    this.down.advance(chunk);
    if (!this.stream.write(chunk)) this.upstream.pause();
  }

  #fromClient(chunk: Buffer): void {
    this.ctx.bytesReceived += chunk.length;
    if (this.#goingAway) {
      this.#relayUntilBoundary(chunk, true);
      return;
    }
    this.up.advance(chunk);
    // Not reading the stream holds back WINDOW_UPDATE: the client's sending stops at its window.
    if (!this.upstream.write(chunk)) this.stream.pause();
  }

  /** Both sides at once (shutdown): the stream is reset, the upstream socket destroyed. */
  destroy(reason: string): void {
    if (!this.reason) this.reason = reason;
    if (!this.stream.destroyed && !this.stream.closed) this.stream.close(h2.NGHTTP2_CANCEL);
    this.upstream.destroy();
  }

  /** Ends politely (drain after a reload, shutdown): a close frame 1001 each way at frame boundaries, as Tunnel does. */
  goAway(reason: string): void {
    if (this.#goingAway) return;
    // A half-close does not end a tunnel, going away does: its reason replaces the end's.
    if (!this.reason || this.reason === 'client closed' || this.reason === 'upstream closed') this.reason = reason;
    this.#goingAway = true;
    this.#awayTimer = setTimeout(() => this.destroy(reason), 2000);
    this.#awayTimer.unref();
    // A direction already ended (half-close) is done wherever its frame cursor stopped.
    if (this.up.atBoundary || this.upstream.writableEnded) this.#sendClose(true);
    if (this.down.atBoundary || this.stream.writableEnded) this.#sendClose(false);
  }

  #relayUntilBoundary(chunk: Buffer, toUpstream: boolean): void {
    if (toUpstream ? this.#closeSentUp : this.#closeSentDown) return;
    const cursor = toUpstream ? this.up : this.down;
    const cut = cursor.advanceToBoundary(chunk);
    const write = (b: Buffer): void => void (toUpstream ? this.upstream.write(b) : this.stream.write(b));
    if (cut === -1) {
      write(chunk);
      return;
    }
    if (cut > 0) write(chunk.subarray(0, cut));
    this.#sendClose(toUpstream);
  }

  /** A direction whose receiver was ended already (half-close) gets nothing more: a write after end would reset both sides. */
  #sendClose(toUpstream: boolean): void {
    if (toUpstream) {
      if (this.#closeSentUp) return;
      this.#closeSentUp = true;
      if (!this.upstream.destroyed && !this.upstream.writableEnded) this.upstream.write(encodeClose(1001, 'going away', true));
    } else {
      if (this.#closeSentDown) return;
      this.#closeSentDown = true;
      if (!this.stream.destroyed && !this.stream.closed && !this.stream.writableEnded) this.stream.write(encodeClose(1001, 'going away'));
    }
    if (this.#closeSentUp && this.#closeSentDown) {
      if (!this.stream.destroyed && !this.stream.closed) this.stream.end();
      this.upstream.end();
    }
  }

  #maybeDone(): void {
    if (!this.#streamClosed || !this.#upstreamClosed) return;
    if (this.#awayTimer) clearTimeout(this.#awayTimer);
    this.#onEnd(this, this.reason || 'closed');
  }
}
