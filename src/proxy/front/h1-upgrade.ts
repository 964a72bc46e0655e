import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import type { Readable } from 'node:stream';
import { serveAdminRaw } from '../../admin/serve.js';
import type { AdminHandler, Settings } from '../../config/types.js';
import { ProxyError } from '../../core/errors.js';
import { serverSignature } from '../answer/server-tokens.js';
import { keepAliveOff, resetConnection } from './client-timeouts.js';
import type { RouteDecision } from '../../routing/router.js';
import type { Peer } from '../../upstream/peer.js';
import { acceptKey } from '../../websocket/accept-key.js';
import { reasonPhrase } from '../answer/error-page.js';
import { httpDate } from '../answer/http-date.js';
import { errorResponse, rawHead, sendLocalRaw } from '../answer/respond.js';
import type { LocalResponse } from '../answer/respond.js';
import type { StreamedResponse } from '../answer/streamed.js';
import type { UpstreamMessage } from '../client/node-client.js';
import { logContext } from '../context/log-context.js';
import type { RequestContext, UpstreamAttempt } from '../context/request-context.js';
import { hasToken } from '../headers/hop-by-hop.js';
import { responseFilters } from '../filters/ssi/filter.js';
import { addOwnHeaders, rememberSent } from '../headers/response-headers.js';
import { NO_UPGRADE } from '../headers/upstream-request.js';
import type { ForwardMode } from '../headers/upstream-request.js';
import type { FrontEnd } from '../session/front-end.js';
import type { FrontEndAnswer } from '../session/guard.js';
import type { ExchangeResponse, SwitchedExchange } from '../session/peer-exchange.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { ProxySession } from '../session/session.js';
import { nativeTunnels } from '../tunnel/native-tunnels.js';
import { openSocketTunnel, tcpFd } from '../tunnel/socket-tunnel.js';
import type { ProxyTunnel, TunnelEnd } from '../tunnel/tunnel.js';
import { logTunnelEnd, tunnelGuardrails } from './tunnel-end.js';
import { contextFor } from './h1-request.js';
import { headRefusal, headSizeRefusal } from './h1-head-checks.js';
import type { UpgradeRequest } from './h1-head-parser.js';
import { isNativeClient } from './native-client.js';

function noop(): void {}

/**
 * The socket to write to: a native client (native-client.ts) becomes a net.Socket on its first
 * write, and everything after is the answer on a socket, as without it.
 */
function io(socket: Socket): Socket {
  return isNativeClient(socket) ? socket.materialize() : socket;
}

/**
 * How an upgrade session ends, once (access log, events), and what the end of the tunnel it may
 * open does first (the upstream server's count given back, the registry, the error-log line): one
 * object per session, which an open tunnel keeps for its whole life in place of two closures and
 * their scopes (docs/benchmarks.md, "Idle memory"). It names no socket: a tunnel the native addon
 * holds must not keep its closed client Socket alive.
 */
class UpgradeEnd implements TunnelEnd {
  readonly #rt: ProxyRuntime;
  readonly #ctx: RequestContext;
  /** The connection's read mark when the request came: an ended session's bytes count from it. */
  readonly #readMark: number;
  #finished = false;
  #route: ProxyRoute | null = null;
  #peer: Peer | null = null;
  #release: (() => void) | null = null;

  constructor(rt: ProxyRuntime, ctx: RequestContext, readMark: number) {
    this.#rt = rt;
    this.#ctx = ctx;
    this.#readMark = readMark;
  }

  /** Ends the session, once; `bytesRead` is the client socket's, read before any tunnel. */
  finish(bytesRead: number): void {
    if (this.#finished) return;
    this.#finished = true;
    const ctx = this.#ctx;
    ctx.endMs = performance.now();
    if (ctx.tunnelStartMs === 0) ctx.bytesReceived = Math.max(0, bytesRead - this.#readMark);
    this.#rt.finish(ctx);
  }

  /** A tunnel opens: its end gives the upstream server's count back (`release`) and may log a line for `route`. */
  tunnelOpens(route: ProxyRoute, peer: Peer, release: () => void): void {
    this.#route = route;
    this.#peer = peer;
    this.#release = release;
  }

  tunnelEnded(tunnel: ProxyTunnel, reason: string): void {
    this.#release?.();
    this.#rt.tunnelClosed(tunnel);
    if (this.#route !== null && this.#peer !== null) logTunnelEnd(this.#rt, this.#route, this.#peer, this.#ctx, tunnel, reason);
    this.finish(0);
  }
}

/** Client bytes buffered while an upgrade waits for the upstream's answer; past this, reading pauses. */
export const EARLY_BYTES_LIMIT = 64 * 1024;

/**
 * The 'upgrade' handler: Node (or the lean front end, server/lean-front.ts, which parses the head
 * itself) hands over the raw socket of any request with an Upgrade header and a Connection
 * `upgrade` token. A WebSocket upgrade is always proxied as one (a documented
 * difference from nginx, which needs the Upgrade/Connection lines); another token is proxied as
 * an upgrade only where the config forwards Upgrade with proxy_http_version 1.1, as in nginx;
 * h2c never is. Everything else is answered as an ordinary request on this socket, which is then
 * closed.
 */
export function handleUpgrade(rt: ProxyRuntime, req: UpgradeRequest, socket: Socket, head: Buffer): void {
  socket.on('error', noop);
  socket.setTimeout(0);
  keepAliveOff(socket);
  const ctx = contextFor(rt, req);
  // $bytes_received counts the request head, as for an ordinary request; a tunnel adds every
  // byte after it as it is relayed, a session that ends without one counts what was read.
  const readMark = ctx.conn.readMark;
  ctx.bytesReceived = Math.max(0, socket.bytesRead - head.length - readMark);
  const end = new UpgradeEnd(rt, ctx, readMark);
  // 'on', not 'once': 'close' fires once anyway, and a once-wrapper is kept per open tunnel.
  socket.on('close', function onUpgradeSocketClose(this: Socket) {
    if (ctx.tunnelStartMs === 0) {
      if (ctx.status === 0) ctx.status = 499;
      end.finish(this.bytesRead);
    }
  });
  new ProxySession(rt, ctx, new H1UpgradeFront(rt, ctx, req, socket, head, end)).start();
}

/** How the safety net answers on a raw client socket before a request has a context (proxy-server.ts). */
export function rawAnswer(socket: Socket, sentBefore: number): FrontEndAnswer {
  return {
    started: () => socket.bytesWritten > sentBefore,
    send: (r) => sendLocalRaw(socket, r, null),
    abort: () => void socket.destroy(),
  };
}

/**
 * A request that came with an Upgrade header, on the raw socket Node hands over: what the session
 * asks of it. Until the upstream answers, the client socket is read (bounded) so that a client
 * that leaves is noticed (499, the try cancelled) and bytes it pipelines after the handshake are
 * kept, in order, for the upstream once the 101 arrives (BEHAVIOURS 6, 7).
 */
export class H1UpgradeFront implements FrontEnd {
  mode: ForwardMode = NO_UPGRADE;
  readonly #rt: ProxyRuntime;
  readonly #ctx: RequestContext;
  readonly #req: UpgradeRequest;
  readonly #socket: Socket;
  readonly #head: Buffer;
  readonly #end: UpgradeEnd;
  readonly #sentBefore: number;
  #early: Buffer[] = [];
  #earlyBytes = 0;
  #session: ProxySession | null = null;

  constructor(rt: ProxyRuntime, ctx: RequestContext, req: UpgradeRequest, socket: Socket, head: Buffer, end: UpgradeEnd) {
    this.#rt = rt;
    this.#ctx = ctx;
    this.#req = req;
    this.#socket = socket;
    this.#head = head;
    this.#end = end;
    this.#sentBefore = socket.bytesWritten;
  }

  started(): boolean {
    return this.#socket.bytesWritten > this.#sentBefore || this.#ctx.tunnelStartMs !== 0;
  }

  send(r: LocalResponse): void {
    sendLocalRaw(io(this.#socket), r, this.#ctx);
  }

  abort(timedOut = false): void {
    if (timedOut && this.#ctx.settings?.resetTimedoutConnection === true) resetConnection(io(this.#socket));
    else this.#socket.destroy();
  }

  route(): RouteDecision | null {
    const rt = this.#rt;
    const ctx = this.#ctx;
    const req = this.#req;
    const refusal = headRefusal(req) ?? headSizeRefusal(req, rt.routesFor(this.#socket).group.defaultServer.settings.largeClientHeaderBuffers.size);
    if (refusal !== null) {
      const refused = rt.routesFor(this.#socket).refuse(ctx, refusal.status);
      rt.errorLog(refused.settings).log('info', `${refusal.log}${logContext(ctx)}`, ctx.conn.id);
      // Answered by the session, through the server's error_page; the body is never forwarded.
      ctx.bodyDropped = true;
      return refused;
    }
    const token = (req.headers.upgrade ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
    const websocket = token === 'websocket';
    const decision = rt.routesFor(this.#socket).route(ctx);
    if (websocket && (req.method !== 'GET' || !req.headers['sec-websocket-key'])) {
      // RFC 6455 4.1: a WebSocket opening handshake is a GET with a key. Answered as a page of
      // the location it was for (its add_header ... always, its server_tokens).
      const bad = new ProxyError('CLIENT_BAD_UPGRADE');
      rt.errorLog(null).log('info', `${bad.message}${logContext(ctx)}`, ctx.conn.id);
      this.send(errorResponse(bad.status, decision.settings, ctx, rt.vars));
      return null;
    }
    return decision;
  }

  serveAdmin(handler: AdminHandler, settings: Settings): Promise<void> | undefined {
    return serveAdminRaw(this.#rt, handler, settings, this.#ctx, io(this.#socket));
  }

  start(s: ProxySession, route: ProxyRoute): Readable | null | false {
    const req = this.#req;
    const socket = this.#socket;
    // Decided here, not when routing: an internal redirect (try_files ... @app) may be what
    // brought the request to the location that proxies it.
    const token = (req.headers.upgrade ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
    const websocket = token === 'websocket';
    const upgradeValue = Array.isArray(req.headers.upgrade) ? req.headers.upgrade.join(', ') : (req.headers.upgrade ?? '');
    if (websocket) this.mode = { upgrade: token, upgradeValue };
    else if (token !== 'h2c' && configForwardsUpgrade(this.#rt, this.#ctx, route)) this.mode = { upgrade: token, upgradeValue };
    this.#ctx.upgrade = this.mode.upgrade;
    this.#ctx.websocket = websocket;
    let body: PassThrough | null = null;
    if (this.mode.upgrade === null && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)) {
      const cl = Number(req.headers['content-length']);
      if (req.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(cl)) {
        this.send(errorResponse(501, route.settings, this.#ctx, this.#rt.vars));
        return false;
      }
      body = rawBody(io(socket), this.#head, cl);
    }
    this.#session = s;
    socket.on('close', this.#onGone);
    if (this.mode.upgrade !== null) {
      if (this.#head.length > 0) this.#keep(this.#head);
      socket.on('data', this.#onEarlyData);
      socket.once('end', this.#onGone);
      socket.resume();
    }
    return body;
  }

  readonly #onGone = (): void => {
    const ctx = this.#ctx;
    if (ctx.tunnelStartMs !== 0 || ctx.status !== 0) return;
    this.#session?.clientLeft();
  };

  readonly #onEarlyData = (chunk: Buffer): void => {
    this.#keep(chunk);
  };

  #keep(chunk: Buffer): void {
    this.#early.push(chunk);
    this.#earlyBytes += chunk.length;
    if (this.#earlyBytes >= EARLY_BYTES_LIMIT) this.#socket.pause();
  }

  /**
   * The tries are over: a listener left on the client socket would keep the session, and through
   * it the upstream exchange, alive for as long as the tunnel is open.
   */
  triesOver(): void {
    const socket = this.#socket;
    socket.removeListener('data', this.#onEarlyData);
    socket.removeListener('end', this.#onGone);
    socket.removeListener('close', this.#onGone);
    this.#session = null;
    socket.pause();
  }

  checkSwitch(res: UpstreamMessage): ProxyError | null {
    return checkSwitch(this.#ctx, this.mode, res);
  }

  /**
   * A WebSocket handshake on a plain TCP client (a socket, or a descriptor the addon accepted,
   * native-client.ts): the addon may run the upstream leg.
   */
  get nativeUpstream(): boolean {
    const s = this.#socket;
    return this.#ctx.websocket && (isNativeClient(s) || tcpFd(s) >= 0);
  }

  /**
   * A refused upgrade (or an ordinary request on this socket) is relayed as an ordinary response;
   * the client's early bytes are never forwarded (BEHAVIOURS 7), and the connection closes after.
   */
  relay(s: ProxySession, x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt): void {
    const ctx = this.#ctx;
    const socket = io(this.#socket);
    const up = x.res;
    const status = up.statusCode ?? 502;
    const headers = x.headers;
    addOwnHeaders(headers, httpDate(), serverSignature(ctx.settings));
    // The connection closes after this response, which delimits a compressed body.
    const encoder = responseFilters(ctx, ctx.settings, status, headers, { vars: this.#rt.vars, log: s.log, subrequest: s.subrequest });
    headers.push('Connection', 'close');
    rememberSent(ctx, headers);
    const headBytes = rawHead(status, up.statusMessage ?? reasonPhrase(status), headers);
    ctx.bytesSent += Buffer.byteLength(headBytes);
    socket.write(headBytes);
    const noBody = ctx.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    s.relayBody(x, peer, attempt, socket, socket, noBody, (chunk) => {
      ctx.bodyBytesSent += chunk.length;
      ctx.bytesSent += chunk.length;
    }, encoder);
  }

  /** A file asked for with an Upgrade header: nginx serves it as for any GET; the connection closes after it. */
  sendStreamed(s: ProxySession, r: StreamedResponse): void {
    const ctx = this.#ctx;
    const socket = io(this.#socket);
    if (socket.destroyed) {
      r.body?.destroy();
      return;
    }
    const headers = ['Server', 'sluice', 'Date', httpDate(), ...r.headers, 'Connection', 'close'];
    ctx.status = r.status;
    rememberSent(ctx, headers);
    const head = rawHead(r.status, reasonPhrase(r.status), headers);
    ctx.bytesSent += Buffer.byteLength(head);
    if (r.body === null) {
      socket.end(head);
      return;
    }
    socket.write(head);
    s.streamBody(r.body, socket, socket, (chunk) => {
      ctx.bodyBytesSent += chunk.length;
      ctx.bytesSent += chunk.length;
    });
  }

  tunnel(s: ProxySession, x: SwitchedExchange, peer: Peer): void {
    const early = this.#early;
    this.#early = [];
    openTunnel(this.#rt, this.#ctx, s.route as ProxyRoute, peer, this.#socket, early.length === 1 ? (early[0] as Buffer) : Buffer.concat(early), x, this.#end);
  }

  left(): void {
    this.#socket.destroy();
    this.#end.finish(this.#socket.bytesRead);
  }
}

/** nginx forwards an upgrade only when proxy_http_version is 1.1 and the config sends Upgrade and `Connection: upgrade`. */
function configForwardsUpgrade(rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute): boolean {
  if (route.settings.proxyHttpVersion !== '1.1') return false;
  let upgrade = false;
  let connection = false;
  for (const r of route.headerRules) {
    if (r.lower === 'upgrade') upgrade = rt.vars.evaluate(r.value, ctx) !== '';
    else if (r.lower === 'connection') connection = hasToken(rt.vars.evaluate(r.value, ctx), 'upgrade');
  }
  return upgrade && connection;
}

/**
 * The body of an ordinary request that arrived on an upgrade socket: `head` plus Content-Length
 * more bytes, with backpressure: reading the client pauses while the body's buffer is full (until
 * the upstream connection takes it), so an upstream that does not read holds the client back
 * instead of growing the proxy.
 */
function rawBody(socket: Socket, head: Buffer, length: number): PassThrough {
  const body = new PassThrough();
  let left = length;
  const take = (chunk: Buffer): void => {
    const part = chunk.length > left ? chunk.subarray(0, left) : chunk;
    left -= part.length;
    const more = body.write(part);
    if (left === 0) {
      socket.removeListener('data', take);
      socket.pause();
      body.end();
    } else if (!more) {
      socket.pause();
    }
  };
  if (length === 0) body.end();
  else {
    body.on('drain', () => {
      if (left > 0) socket.resume();
    });
    if (head.length > 0) take(head);
    if (left > 0) socket.on('data', take);
  }
  return body;
}

/** RFC 6455 4.1 and RFC 9110 7.8: the 101 must switch to the protocol asked for, with the right accept key. */
function checkSwitch(ctx: RequestContext, mode: ForwardMode, res: UpstreamMessage): ProxyError | null {
  if (mode.upgrade === null) return new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE');
  const got = (res.headers.upgrade ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
  if (got !== mode.upgrade) return new ProxyError('UPSTREAM_UPGRADE_MISMATCH', `asked "${mode.upgrade}", got "${got}"`);
  if (ctx.websocket) {
    const key = ctx.headers['sec-websocket-key'] as string;
    if (res.headers['sec-websocket-accept'] !== acceptKey(key)) return new ProxyError('UPSTREAM_BAD_ACCEPT');
  }
  return null;
}

function openTunnel(
  rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute, peer: Peer, client: Socket, clientHead: Buffer,
  switched: SwitchedExchange, end: UpgradeEnd,
): void {
  const { res, socket: upstream, head: upstreamHead, release, headers } = switched;
  addOwnHeaders(headers, httpDate(), serverSignature(route.settings));
  rememberSent(ctx, headers);
  const head101 = rawHead(101, res.statusMessage || 'Switching Protocols', headers);
  ctx.bytesSent += Buffer.byteLength(head101);
  ctx.tunnelStartMs = performance.now();
  ctx.tunnelBodyStarts();
  ctx.compactForTunnel(rt.tunnelKeep(ctx.settings));
  // From here the session counts its own bytes: finish() ignores the socket's figure.
  if (client.destroyed) {
    upstream.destroy();
    release();
    end.finish(0);
    return;
  }
  end.tunnelOpens(route, peer, release);
  // Server bytes that came in the packet of the 101 go right after it; client bytes pipelined
  // after the request head go upstream only now that the upgrade is accepted.
  const options = {
    idleTimeout: route.settings.proxyReadTimeout,
    onEnd: end,
    clientHead,
    upstreamHead,
    guardrails: tunnelGuardrails(route, ctx),
    native: route.settings.nativeTunnels === 'off' ? null : nativeTunnels(),
    host: rt.tunnelHost,
  };
  // A client with no net.Socket yet: the addon writes the 101 and the relay adopts its descriptor
  // (native-client.ts); where it cannot, the client is a socket from here, the 101 written.
  const inAddon = isNativeClient(client) && !client.materialized && clientHead.length === 0;
  const native = inAddon ? client.openTunnel(Buffer.from(head101, 'latin1'), upstream, ctx, options) : null;
  if (native !== null) {
    rt.tunnelOpened(native);
    return;
  }
  const socket = io(client);
  if (!inAddon) socket.write(head101);
  const tunnel = openSocketTunnel(socket, upstream, ctx, options);
  rt.tunnelOpened(tunnel);
}
