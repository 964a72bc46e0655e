import type { IncomingMessage, ServerResponse } from 'node:http';
import { serveAdmin } from '../../admin/serve.js';
import { ProxyError, messageWhile } from '../../core/errors.js';
import type { Peer } from '../../upstream/peer.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import { RequestContext } from '../context/request-context.js';
import type { UpstreamAttempt } from '../context/request-context.js';
import { runAttempts } from '../session/attempts.js';
import type { TryOutcome } from '../session/attempts.js';
import { exchangeWithPeer } from '../session/peer-exchange.js';
import { pickKey } from '../session/proxy-route.js';
import type { Exchange } from '../client/node-client.js';
import { NO_UPGRADE } from '../headers/upstream-request.js';
import { requestHasBody } from '../context/request-context.js';
import { rememberSent } from '../headers/response-headers.js';
import { errorResponse, returnResponse, sendLocal } from '../answer/respond.js';
import { logContext, upstreamUrl } from '../context/log-context.js';
import { guarded } from '../session/guard.js';
import type { FrontEndAnswer } from '../session/guard.js';
import { headRefusal, isClosing, markClosing } from './h1-head-checks.js';
import { logSendTimeout, relayBody, requestEnded, requestStarted, watchBodyReads } from './client-timeouts.js';

/** Makes the request context for a request read by Node's HTTP server. */
export function contextFor(rt: ProxyRuntime, req: IncomingMessage): RequestContext {
  const conn = rt.connInfo(req.socket);
  conn.requests++;
  return new RequestContext(conn, req.method ?? 'GET', req.url ?? '/', req.httpVersion, req.headers, req.rawHeaders, performance.now());
}

/** The 'request' handler: route, then answer locally or proxy with retries. */
export function handleHttpRequest(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  // A request pipelined behind one that ends the connection is never handled (h1-head-checks.ts).
  if (isClosing(socket)) return;
  const ctx = contextFor(rt, req);
  const sentBefore = socket.bytesWritten;
  requestStarted(socket);
  res.once('close', () => {
    ctx.endMs = performance.now();
    ctx.bytesSent = socket.bytesWritten - sentBefore;
    ctx.bytesReceived = Math.max(0, socket.bytesRead - ctx.conn.readMark);
    ctx.conn.readMark = socket.bytesRead;
    if (!res.writableFinished && ctx.status === 0) ctx.status = 499;
    requestEnded(socket, res.shouldKeepAlive ? (ctx.settings?.keepaliveTimeout ?? 0) : 0);
    rt.finish(ctx);
  });
  guarded(rt, ctx, () => h1Answer(res, ctx), () => routeHttp(rt, ctx, req, res));
}

/** How the safety net answers on Node's ServerResponse. */
export function h1Answer(res: ServerResponse, ctx: RequestContext | null): FrontEndAnswer {
  return {
    started: () => res.headersSent,
    send: (r) => sendLocal(res, r, ctx),
    abort: () => void res.destroy(),
  };
}

function routeHttp(rt: ProxyRuntime, ctx: RequestContext, req: IncomingMessage, res: ServerResponse): Promise<void> | undefined {
  const socket = req.socket;
  const routes = rt.routesFor(socket);
  const refusal = headRefusal(req);
  if (refusal !== null) {
    const refused = routes.refuse(ctx, refusal.status);
    rt.errorLog(refused.settings).log('info', `${refusal.log}${logContext(ctx)}`, ctx.conn.id);
    res.shouldKeepAlive = false;
    markClosing(socket);
    sendLocal(res, errorResponse(refusal.status, refused.settings, ctx, rt.vars), ctx);
    return undefined;
  }
  const decision = routes.route(ctx);
  // nginx: keepalive_timeout 0 turns keep-alive off; a 400 ends the connection (and what the
  // client pipelined after it).
  if (decision.settings.keepaliveTimeout === 0 || (decision.kind === 'error' && decision.status === 400)) res.shouldKeepAlive = false;
  if (!res.shouldKeepAlive) markClosing(socket);
  // nginx sends `Keep-Alive: timeout=N` only for keepalive_timeout's second value, and only on
  // a response that keeps the connection: Node writes it on exactly those from this field (the
  // server's own keepAliveTimeout is 0, see client-timeouts.ts).
  else if (decision.settings.keepaliveHeader > 0) (res as ServerResponse & { _keepAliveTimeout: number })._keepAliveTimeout = decision.settings.keepaliveHeader * 1000;
  if (decision.kind === 'error') {
    if (decision.log !== undefined) rt.errorLog(decision.settings).log('error', `${decision.log}${logContext(ctx)}`, ctx.conn.id);
    sendLocal(res, errorResponse(decision.status, decision.settings, ctx, rt.vars), ctx);
    return undefined;
  }
  if (decision.kind === 'return') {
    sendLocal(res, returnResponse(decision.action, decision.settings, ctx, rt.vars), ctx);
    return undefined;
  }
  if (decision.kind === 'admin') {
    return serveAdmin(rt, decision.handler, decision.settings, ctx, res);
  }
  const route = rt.proxyRoute(ctx.location as NonNullable<typeof ctx.location>);
  return proxyHttp(rt, ctx, route, req, res);
}

async function proxyHttp(rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const log = rt.errorLog(route.settings);
  const hasBody = requestHasBody(ctx);
  let current: Exchange | null = null;
  let clientGone = false;
  let bodyTimedOut = false;
  const onClientGone = (): void => {
    if (res.writableFinished) return;
    clientGone = true;
    current?.abort();
  };
  res.once('close', onClientGone);
  if (hasBody) {
    // nginx terminates a request whose body stalls past client_body_timeout: no response, the
    // connection closed, 408 in the access log, nothing in the error log (checked against 1.22).
    const stopBodyTimer = watchBodyReads(req, route.settings.clientBodyTimeout, () => {
      bodyTimedOut = true;
      if (!res.headersSent) ctx.status = 408;
      res.destroy();
    });
    res.once('close', stopBodyTimer);
  }

  const tryPeer = async (peer: Peer, attempt: UpstreamAttempt, more: boolean): Promise<TryOutcome> => {
    // The response head went out: a failure now can only close the client connection (a chunked
    // body stays unterminated), and is logged once, in nginx's words for the body phase.
    let lateFailure = false;
    const failLate = (err: ProxyError): void => {
      if (!lateFailure && !clientGone) {
        lateFailure = true;
        log.log('error', `${messageWhile(err, 'reading upstream')}${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
      }
      res.destroy();
    };
    const x = await exchangeWithPeer({
      rt, ctx, route, peer, attempt, more, mode: NO_UPGRADE, body: hasBody ? req : null,
      clientGone: () => clientGone,
      setCurrent: (ex) => void (current = ex),
      onLateError: failLate,
      // No tunnel unless the client asked for one (BEHAVIOURS 9).
      checkSwitch: () => new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE'),
    });
    if (x.kind === 'done') return x.outcome;
    if (x.kind === 'upgrade') throw new Error('unreachable: checkSwitch refuses every upgrade');
    const { release, headers } = x;
    const ex = x.exchange;
    const up = x.res;
    const status = up.statusCode ?? 502;
    headers.unshift('Server', 'sluice');
    rememberSent(ctx, headers);
    try {
      res.writeHead(status, up.statusMessage, headers);
    } catch (err) {
      release();
      ex.abort();
      log.log('error', `cannot relay upstream response: ${(err as Error).message}${logContext(ctx)}`, ctx.conn.id);
      res.destroy();
      return { ok: true };
    }
    // A client that stops reading holds the upstream back (backpressure) for at most send_timeout
    // between two writes; it is the client that timed out, not the upstream (nginx's wording).
    relayBody(up, res, req.socket, route.settings.sendTimeout, () => {
      logSendTimeout(log, ctx, upstreamUrl(route, peer, ctx));
      res.destroy();
    }, (chunk) => void (ctx.bodyBytesSent += chunk.length));
    up.once('end', () => {
      attempt.responseTime = performance.now() - ctx.startMs;
      release();
      if (!res.destroyed) res.end();
    });
    up.once('close', release);
    up.once('aborted', () => failLate(new ProxyError('UPSTREAM_RESET')));
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
  if (!res.headersSent && !res.destroyed) sendLocal(res, errorResponse(failure.status, route.settings, ctx, rt.vars), ctx);
}
