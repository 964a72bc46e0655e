/**
 * A request on an HTTP/2 client stream, proxied to an HTTP/1.1 upstream: the same routing, access
 * phase, local answers, attempt loop, header rules and response filters as HTTP/1.1 (the shared
 * pieces of http-forward), with the message mapped at both ends (h2-messages). Extended CONNECT
 * (RFC 8441 WebSockets) goes to h2-connect.
 */
import { constants as h2 } from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { AdminHandler, Settings } from '../../config/types.js';
import { ProxyError, messageWhile } from '../../core/errors.js';
import { adminResponse, wantsEvents } from '../../admin/serve.js';
import type { StatsSnapshot } from '../../observability/stats.js';
import type { Peer } from '../../upstream/peer.js';
import { runAttempts } from '../session/attempts.js';
import type { TryOutcome } from '../session/attempts.js';
import { h2Request, h2ResponseHeaders, headerBytes, sendLocalH2 } from './h2-messages.js';
import { handleH2WebSocket } from './h2-connect.js';
import { logContext, upstreamUrl } from '../context/log-context.js';
import { failRequest, guarded } from '../session/guard.js';
import type { FrontEndAnswer } from '../session/guard.js';
import { logSendTimeout, relayBody, watchBodyReads } from './client-timeouts.js';
import { exchangeWithPeer } from '../session/peer-exchange.js';
import type { ExchangeResponse } from '../session/peer-exchange.js';
import { pickKey } from '../session/proxy-route.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { RequestContext } from '../context/request-context.js';
import type { UpstreamAttempt } from '../context/request-context.js';
import { errorResponse, returnResponse } from '../answer/respond.js';
import { rememberSent } from '../headers/response-headers.js';
import { clientCertRefusal, tlsRefusalPage } from './tls-refusals.js';
import type { Exchange } from '../client/node-client.js';
import { NO_UPGRADE } from '../headers/upstream-request.js';

function noop(): void {}

/** The error log's `upstream: "..."` for an attempt. */

/** 'stream' of a client HTTP/2 session. `socket` is the TLS connection the session runs on. */
export function handleH2Stream(rt: ProxyRuntime, socket: TLSSocket, stream: ServerHttp2Stream, rawHeaders: readonly string[]): void {
  stream.on('error', noop);
  const hasBody = !stream.endAfterHeaders;
  const m = h2Request(rawHeaders, hasBody);
  const conn = rt.connInfo(socket);
  conn.requests++;
  if (m.method === 'CONNECT' && m.protocol !== null) {
    handleH2WebSocket(rt, socket, stream, m);
    return;
  }
  const ctx = new RequestContext(conn, m.method, m.path, '2.0', m.headers, m.rawHeaders, performance.now());
  ctx.bytesReceived = headerBytes(m.rawHeaders);
  stream.once('close', () => {
    ctx.endMs = performance.now();
    if (ctx.status === 0) ctx.status = 499;
    rt.finish(ctx);
  });
  guarded(rt, ctx, () => h2Answer(stream, ctx), () => routeH2(rt, socket, stream, ctx, m.method, hasBody));
}

/** How the safety net answers on an HTTP/2 stream: a page, or RST_STREAM once the response started. */
export function h2Answer(stream: ServerHttp2Stream, ctx: RequestContext | null): FrontEndAnswer {
  return {
    started: () => stream.headersSent,
    send: (r) => sendLocalH2(stream, r, ctx),
    abort: () => {
      if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    },
  };
}

function routeH2(rt: ProxyRuntime, socket: TLSSocket, stream: ServerHttp2Stream, ctx: RequestContext, method: string, hasBody: boolean): Promise<void> | undefined {
  const decision = rt.routesFor(socket).route(ctx);
  if (method === 'CONNECT') {
    // A plain CONNECT (no :protocol) asks for a forward proxy: nginx answers 405.
    sendLocalH2(stream, errorResponse(405, ctx.settings, ctx, rt.vars), ctx);
    return undefined;
  }
  if (answerLocally(rt, stream, ctx, decision)) return undefined;
  return proxyH2(rt, ctx, rt.proxyRoute(ctx.location as NonNullable<typeof ctx.location>), stream, hasBody);
}

type Decision = ReturnType<ReturnType<ProxyRuntime['routesFor']>['route']>;

/**
 * The answers that need no upstream: ssl_verify_client refusals, routing errors, `return`, status
 * pages. True when the stream was answered.
 */
export function answerLocally(rt: ProxyRuntime, stream: ServerHttp2Stream, ctx: RequestContext, decision: Decision): boolean {
  const refusal = ctx.server === null ? null : clientCertRefusal(ctx.conn.ssl, ctx.server);
  if (refusal !== null) {
    rt.errorLog(ctx.settings).log('info', `${refusal.log} while reading client request headers${logContext(ctx)}`, ctx.conn.id);
    sendLocalH2(stream, { status: 400, headers: ['Content-Type', 'text/html'], body: tlsRefusalPage(refusal.kind), drop: false }, ctx);
    return true;
  }
  if (decision.kind === 'error') {
    if (decision.log !== undefined) rt.errorLog(decision.settings).log('error', `${decision.log}${logContext(ctx)}`, ctx.conn.id);
    sendLocalH2(stream, errorResponse(decision.status, decision.settings, ctx, rt.vars), ctx);
    return true;
  }
  if (decision.kind === 'return') {
    sendLocalH2(stream, returnResponse(decision.action, decision.settings, ctx, rt.vars), ctx);
    return true;
  }
  if (decision.kind === 'admin') {
    serveAdminH2(rt, decision.handler, decision.settings, ctx, stream);
    return true;
  }
  return false;
}

/**
 * A status location over HTTP/2: one snapshot per request. The dashboard's event stream is answered
 * with one snapshot too (EventSource reconnects after `retry`), not held open.
 */
function serveAdminH2(rt: ProxyRuntime, handler: AdminHandler, settings: Settings, ctx: RequestContext, stream: ServerHttp2Stream): void {
  if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
    sendLocalH2(stream, errorResponse(405, settings, ctx, rt.vars), ctx);
    return;
  }
  const stats = rt.stats;
  if (stats === null) {
    sendLocalH2(stream, errorResponse(503, settings, ctx, rt.vars), ctx);
    return;
  }
  if (handler === 'dashboard' && !wantsEvents(ctx)) {
    sendLocalH2(stream, adminResponse(handler, null as unknown as StatsSnapshot, settings, ctx, rt.vars), ctx);
    return;
  }
  stats.combinedSnapshot().then((snap) => {
    if (handler === 'dashboard') {
      const body = `retry: 2000\n\ndata: ${JSON.stringify(snap)}\n\n`;
      sendLocalH2(stream, { status: 200, headers: ['Content-Type', 'text/event-stream; charset=utf-8', 'Cache-Control', 'no-cache'], body, drop: false }, ctx);
    } else {
      sendLocalH2(stream, adminResponse(handler, snap, settings, ctx, rt.vars), ctx);
    }
  }, () => sendLocalH2(stream, errorResponse(500, settings, ctx, rt.vars), ctx))
    .catch((err: unknown) => failRequest(rt, ctx, h2Answer(stream, ctx), err));
}

/**
 * Relays an upstream response on a stream: status and filtered headers (no connection-specific
 * ones), then the body with backpressure (stream.write's flow control pauses the upstream).
 * Returns false when the headers could not be sent (the stream is reset then).
 */
export function relayH2Response(
  rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute, peer: Peer, attempt: UpstreamAttempt, stream: ServerHttp2Stream,
  x: ExchangeResponse, onLate: (err: ProxyError) => void,
): boolean {
  const { res: up, release, headers: flat } = x;
  const status = up.statusCode ?? 502;
  flat.unshift('Server', 'sluice');
  rememberSent(ctx, flat);
  const noBody = ctx.method === 'HEAD' || status === 204 || status === 304;
  try {
    stream.respond(h2ResponseHeaders(status, flat), { endStream: noBody });
  } catch (err) {
    release();
    up.destroy();
    rt.errorLog(route.settings).log('error', `cannot relay upstream response: ${(err as Error).message}${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return false;
  }
  ctx.bytesSent += headerBytes(flat);
  up.once('end', () => {
    attempt.responseTime = performance.now() - ctx.startMs;
    release();
  });
  up.once('close', release);
  up.once('aborted', () => onLate(new ProxyError('UPSTREAM_RESET')));
  if (noBody) {
    up.resume();
    return true;
  }
  // send_timeout per stream: a client that stops reading (no WINDOW_UPDATE, or a blocked
  // connection) holds the upstream back for at most that long between two writes.
  relayBody(up, stream, stream, route.settings.sendTimeout, () => {
    logSendTimeout(rt.errorLog(route.settings), ctx, upstreamUrl(route, peer, ctx));
    if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  }, (chunk) => {
    ctx.bodyBytesSent += chunk.length;
    ctx.bytesSent += chunk.length;
  });
  up.once('end', () => {
    if (!stream.destroyed) stream.end();
  });
  return true;
}

async function proxyH2(rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute, stream: ServerHttp2Stream, hasBody: boolean): Promise<void> {
  const log = rt.errorLog(route.settings);
  let current: Exchange | null = null;
  let clientGone = false;
  let counting = false;
  // The body is counted once it flows to an upstream (a listener any earlier would start the flow).
  const countBody = (): void => {
    if (counting) return;
    counting = true;
    stream.on('data', (chunk: Buffer) => void (ctx.bytesReceived += chunk.length));
  };
  let bodyTimedOut = false;
  stream.once('close', () => {
    if (stream.writableFinished && stream.rstCode === h2.NGHTTP2_NO_ERROR) return;
    clientGone = true;
    current?.abort();
  });
  if (hasBody) {
    // client_body_timeout: the stream is reset (nginx terminates the request, 408 in the log).
    const stopBodyTimer = watchBodyReads(stream, route.settings.clientBodyTimeout, () => {
      bodyTimedOut = true;
      if (!stream.headersSent) ctx.status = 408;
      if (!stream.destroyed) stream.close(h2.NGHTTP2_CANCEL);
    });
    stream.once('close', stopBodyTimer);
  }
  const tryPeer = async (peer: Peer, attempt: UpstreamAttempt, more: boolean): Promise<TryOutcome> => {
    let lateFailure = false;
    const failLate = (err: ProxyError): void => {
      if (!lateFailure && !clientGone) {
        lateFailure = true;
        log.log('error', `${messageWhile(err, 'reading upstream')}${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
      }
      // Something already went out: the stream is reset so the client can tell the body is cut.
      if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    };
    const x = await exchangeWithPeer({
      rt, ctx, route, peer, attempt, more, mode: NO_UPGRADE, body: hasBody ? stream : null,
      clientGone: () => clientGone,
      setCurrent: (ex) => void (current = ex),
      onBodyStart: countBody,
      onLateError: failLate,
      checkSwitch: () => new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE'),
    });
    if (x.kind === 'done') return x.outcome;
    if (x.kind === 'upgrade') throw new Error('unreachable: checkSwitch refuses every upgrade');
    relayH2Response(rt, ctx, route, peer, attempt, stream, x, failLate);
    return { ok: true };
  };
  const failure = await runAttempts(ctx, route, tryPeer, (peer, error) => {
    if (error.code !== 'CLIENT_CLOSED') log.log('error', `${error.message}${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
  }, pickKey(route, ctx, rt.vars));
  if (failure === null) return;
  if (failure.code === 'CLIENT_CLOSED' || clientGone) {
    if (!bodyTimedOut) ctx.status = 499;
    return;
  }
  if (failure.code === 'NO_LIVE_UPSTREAMS') log.log('error', `${failure.message}${logContext(ctx)}`, ctx.conn.id);
  sendLocalH2(stream, errorResponse(failure.status, route.settings, ctx, rt.vars), ctx);
}
