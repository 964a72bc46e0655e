import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { serveAdminRaw } from '../../admin/serve.js';
import { ProxyError, messageWhile } from '../../core/errors.js';
import type { Peer } from '../../upstream/peer.js';
import { acceptKey } from '../../websocket/accept-key.js';
import { runAttempts } from '../session/attempts.js';
import type { TryOutcome } from '../session/attempts.js';
import { reasonPhrase } from '../answer/error-page.js';
import { hasToken } from '../headers/hop-by-hop.js';
import { httpDate } from '../answer/http-date.js';
import { contextFor } from './h1-request.js';
import { logContext, upstreamUrl } from '../context/log-context.js';
import { guarded } from '../session/guard.js';
import type { FrontEndAnswer } from '../session/guard.js';
import { exchangeWithPeer } from '../session/peer-exchange.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import { pickKey } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import type { RequestContext, UpstreamAttempt } from '../context/request-context.js';
import { errorResponse, rawHead, returnResponse, sendLocalRaw } from '../answer/respond.js';
import { rememberSent } from '../headers/response-headers.js';
import type { Exchange, UpstreamMessage } from '../client/node-client.js';
import type { SwitchedExchange } from '../session/peer-exchange.js';
import type { ForwardMode } from '../headers/upstream-request.js';
import { nativeTunnels } from '../tunnel/native-tunnels.js';
import { logSendTimeout, relayBody } from './client-timeouts.js';
import { headRefusal } from './h1-head-checks.js';
import { Tunnel } from '../tunnel/socket-tunnel.js';

function noop(): void {}

/** Ends the session once (access log, events); `bytesRead` is the client socket's, read before any tunnel. */
type UpgradeFinish = (bytesRead: number) => void;

/** Client bytes buffered while an upgrade waits for the upstream's answer; past this, reading pauses. */
export const EARLY_BYTES_LIMIT = 64 * 1024;

/**
 * The 'upgrade' handler: Node hands over the raw socket of any request with an Upgrade header
 * and a Connection `upgrade` token. A WebSocket upgrade is always proxied as one (a documented
 * difference from nginx, which needs the Upgrade/Connection lines); another token is proxied as
 * an upgrade only where the config forwards Upgrade with proxy_http_version 1.1, as in nginx;
 * h2c never is. Everything else is answered as an ordinary request on this socket, which is then
 * closed.
 */
export function handleUpgrade(rt: ProxyRuntime, req: IncomingMessage, socket: Socket, head: Buffer): void {
  socket.on('error', noop);
  socket.setTimeout(0);
  const ctx = contextFor(rt, req);
  // $bytes_received counts the request head, as for an ordinary request; a tunnel adds every
  // byte after it as it is relayed, a session that ends without one counts what was read.
  const readMark = ctx.conn.readMark;
  ctx.bytesReceived = Math.max(0, socket.bytesRead - head.length - readMark);
  let finished = false;
  // No closure of this scope names `socket`: the end callback of a tunnel keeps `finish`, and a
  // tunnel the native addon holds must not keep its closed client Socket alive through it.
  const finish: UpgradeFinish = (bytesRead) => {
    if (finished) return;
    finished = true;
    ctx.endMs = performance.now();
    if (ctx.tunnelStartMs === 0) ctx.bytesReceived = Math.max(0, bytesRead - readMark);
    rt.finish(ctx);
  };
  // 'on', not 'once': 'close' fires once anyway, and a once-wrapper is kept per open tunnel.
  socket.on('close', function onUpgradeSocketClose(this: Socket) {
    if (ctx.tunnelStartMs === 0) {
      if (ctx.status === 0) ctx.status = 499;
      finish(this.bytesRead);
    }
  });
  // In a scope of its own: the closures the safety net makes name `socket` (see above).
  guardUpgrade(rt, ctx, req, socket, head, finish);
}

function guardUpgrade(rt: ProxyRuntime, ctx: RequestContext, req: IncomingMessage, socket: Socket, head: Buffer, finish: UpgradeFinish): void {
  const sentBefore = socket.bytesWritten;
  guarded(rt, ctx, () => rawAnswer(socket, ctx, sentBefore), () => routeUpgrade(rt, ctx, req, socket, head, finish));
}

/** How the safety net answers on a raw client socket (an upgrade request, before or after its tunnel opened). */
export function rawAnswer(socket: Socket, ctx: RequestContext | null, sentBefore: number): FrontEndAnswer {
  return {
    started: () => socket.bytesWritten > sentBefore || (ctx !== null && ctx.tunnelStartMs !== 0),
    send: (r) => sendLocalRaw(socket, r, ctx),
    abort: () => void socket.destroy(),
  };
}

function routeUpgrade(rt: ProxyRuntime, ctx: RequestContext, req: IncomingMessage, socket: Socket, head: Buffer, finish: UpgradeFinish): Promise<void> | undefined {
  const refusal = headRefusal(req);
  if (refusal !== null) {
    const refused = rt.routesFor(socket).refuse(ctx, refusal.status);
    rt.errorLog(refused.settings).log('info', `${refusal.log}${logContext(ctx)}`, ctx.conn.id);
    sendLocalRaw(socket, errorResponse(refusal.status, refused.settings, ctx, rt.vars), ctx);
    return undefined;
  }
  const token = (req.headers.upgrade ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
  const websocket = token === 'websocket';
  if (websocket && (req.method !== 'GET' || !req.headers['sec-websocket-key'])) {
    // RFC 6455 4.1: a WebSocket opening handshake is a GET with a key.
    rt.errorLog(null).log('info', `client sent invalid WebSocket upgrade request${logContext(ctx)}`, ctx.conn.id);
    sendLocalRaw(socket, errorResponse(400, null, null, null), ctx);
    return undefined;
  }
  const decision = rt.routesFor(socket).route(ctx);
  if (decision.kind === 'error') {
    if (decision.log !== undefined) rt.errorLog(decision.settings).log('error', `${decision.log}${logContext(ctx)}`, ctx.conn.id);
    sendLocalRaw(socket, errorResponse(decision.status, decision.settings, ctx, rt.vars), ctx);
    return undefined;
  }
  if (decision.kind === 'return') {
    sendLocalRaw(socket, returnResponse(decision.action, decision.settings, ctx, rt.vars), ctx);
    return undefined;
  }
  if (decision.kind === 'admin') {
    return serveAdminRaw(rt, decision.handler, decision.settings, ctx, socket);
  }
  const route = rt.proxyRoute(ctx.location as NonNullable<typeof ctx.location>);
  const upgradeValue = Array.isArray(req.headers.upgrade) ? req.headers.upgrade.join(', ') : (req.headers.upgrade ?? '');
  let mode: ForwardMode = { upgrade: null, upgradeValue: null };
  if (websocket) mode = { upgrade: token, upgradeValue };
  else if (token !== 'h2c' && configForwardsUpgrade(rt, ctx, route)) mode = { upgrade: token, upgradeValue };
  ctx.upgrade = mode.upgrade;
  ctx.websocket = websocket;
  return proxyOnSocket(rt, ctx, route, req, socket, head, mode, finish);
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

async function proxyOnSocket(
  rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute, req: IncomingMessage, socket: Socket, head: Buffer, mode: ForwardMode, finish: UpgradeFinish,
): Promise<void> {
  const log = rt.errorLog(route.settings);
  let body: PassThrough | null = null;
  if (mode.upgrade === null && (req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined)) {
    const cl = Number(req.headers['content-length']);
    if (req.headers['transfer-encoding'] !== undefined || !Number.isSafeInteger(cl)) {
      sendLocalRaw(socket, errorResponse(501, route.settings, ctx, rt.vars), ctx);
      return;
    }
    body = rawBody(socket, head, cl);
  }
  let current: Exchange | null = null;
  let clientGone = false;
  const onGone = (): void => {
    if (ctx.tunnelStartMs !== 0 || ctx.status !== 0) return;
    clientGone = true;
    current?.abort();
  };
  socket.on('close', onGone);
  // While an upgrade waits for the upstream, the client socket is read (bounded) so that a client
  // that leaves is noticed (499, the upstream attempt cancelled) and bytes it pipelines after the
  // handshake are kept, in order, for the upstream once the 101 arrives.
  const early: Buffer[] = head.length > 0 ? [head] : [];
  let earlyBytes = head.length;
  const onEarlyData = (chunk: Buffer): void => {
    early.push(chunk);
    earlyBytes += chunk.length;
    if (earlyBytes >= EARLY_BYTES_LIMIT) socket.pause();
  };
  // Called once the attempts are over: a listener left on the client socket would keep this
  // scope, and through `current` the upstream ClientRequest and its response, alive for as long
  // as the tunnel is open.
  const stopEarly = (): void => {
    socket.removeListener('data', onEarlyData);
    socket.removeListener('end', onGone);
    socket.removeListener('close', onGone);
    current = null;
    socket.pause();
  };
  if (mode.upgrade !== null) {
    socket.on('data', onEarlyData);
    socket.once('end', onGone);
    socket.resume();
  }

  const tryPeer = async (peer: Peer, attempt: UpstreamAttempt, more: boolean): Promise<TryOutcome> => {
    const x = await exchangeWithPeer({
      rt, ctx, route, peer, attempt, more, mode, body,
      clientGone: () => clientGone,
      setCurrent: (ex) => void (current = ex),
      onLateError: (err) => {
        log.log('error', `${messageWhile(err, 'reading upstream')}${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
        socket.destroy();
      },
      checkSwitch: (res) => checkSwitch(ctx, mode, res),
    });
    if (x.kind === 'done') return x.outcome;
    if (x.kind === 'upgrade') {
      stopEarly();
      openTunnel(rt, ctx, route, peer, socket, early.length === 1 ? (early[0] as Buffer) : Buffer.concat(early), x, finish);
      return { ok: true };
    }
    const { release, headers } = x;
    stopEarly(); // early bytes of a refused upgrade are never forwarded (BEHAVIOURS 7)
    const up = x.res;
    const status = up.statusCode ?? 502;
    // A refused upgrade (or an ordinary request on this socket) is relayed as an ordinary
    // response; the client's early bytes are never forwarded, and the connection closes after.
    headers.unshift('Server', 'sluice', 'Date', httpDate());
    headers.push('Connection', 'close');
    rememberSent(ctx, headers);
    const headBytes = rawHead(status, up.statusMessage ?? reasonPhrase(status), headers);
    ctx.bytesSent += Buffer.byteLength(headBytes);
    socket.write(headBytes);
    const noBody = ctx.method === 'HEAD' || status === 204 || status === 304 || (status >= 100 && status < 200);
    if (noBody) up.resume();
    else {
      relayBody(up, socket, socket, route.settings.sendTimeout, () => {
        logSendTimeout(log, ctx, upstreamUrl(route, peer, ctx));
        socket.destroy();
      }, (chunk) => {
        ctx.bodyBytesSent += chunk.length;
        ctx.bytesSent += chunk.length;
      });
    }
    up.once('end', () => {
      attempt.responseTime = performance.now() - ctx.startMs;
      release();
      socket.end();
    });
    up.once('close', () => {
      release();
      if (!up.complete) socket.destroy();
    });
    return { ok: true };
  };

  const failure = await runAttempts(ctx, route, tryPeer, (peer, error) => {
    if (error.code !== 'CLIENT_CLOSED') log.log('error', `${error.message}${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
  }, pickKey(route, ctx, rt.vars));
  if (failure === null) return;
  stopEarly();
  if (failure.code === 'CLIENT_CLOSED' || clientGone) {
    ctx.status = 499;
    socket.destroy();
    finish(socket.bytesRead);
    return;
  }
  if (failure.code === 'NO_LIVE_UPSTREAMS') log.log('error', `${failure.message}${logContext(ctx)}`, ctx.conn.id);
  sendLocalRaw(socket, errorResponse(failure.status, route.settings, ctx, rt.vars), ctx);
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
  switched: SwitchedExchange, finish: UpgradeFinish,
): void {
  const { res, socket: upstream, head: upstreamHead, release, headers } = switched;
  headers.unshift('Server', 'sluice', 'Date', httpDate());
  rememberSent(ctx, headers);
  const head101 = rawHead(101, res.statusMessage || 'Switching Protocols', headers);
  ctx.bytesSent += Buffer.byteLength(head101);
  ctx.tunnelStartMs = performance.now();
  ctx.rawHeaders = []; // read only to build the upstream request; `headers` stays for $http_*
  // From here the session counts its own bytes: finish() ignores the socket's figure.
  if (client.destroyed) {
    upstream.destroy();
    release();
    finish(0);
    return;
  }
  client.write(head101);
  // Server bytes that came in the packet of the 101 go right after it; client bytes pipelined
  // after the request head go upstream only now that the upgrade is accepted.
  if (upstreamHead.length > 0) {
    ctx.bytesSent += upstreamHead.length;
    client.write(upstreamHead);
  }
  if (clientHead.length > 0) {
    ctx.bytesReceived += clientHead.length;
    upstream.write(clientHead);
  }
  const tunnel = new Tunnel(client, upstream, ctx, route.settings.proxyReadTimeout, (t, reason) => {
    release();
    rt.tunnelClosed(t);
    if (reason === 'idle timeout') rt.errorLog(route.settings).log('info', `upstream timed out (110: Connection timed out) while proxying upgraded connection${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
    finish(0);
  }, route.settings.nativeTunnels === 'off' ? null : nativeTunnels(), rt.tunnelHost);
  rt.tunnelOpened(tunnel);
}
