import type { IncomingMessage, ServerResponse } from 'node:http';
import { ProxyError, messageWhile } from '../core/errors.js';
import type { Peer } from '../upstream/peer.js';
import type { ProxyRuntime } from './proxy-runtime.js';
import type { ProxyRoute } from './proxy-route.js';
import { RequestContext } from './request-context.js';
import type { UpstreamAttempt } from './request-context.js';
import { FAILURE_STATUSES, retryAllowed, runAttempts } from './attempts.js';
import type { TryOutcome } from './attempts.js';
import { exchange } from './upstream-exchange.js';
import type { Exchange } from './upstream-exchange.js';
import { buildUpstreamHead, requestHasBody } from './upstream-request.js';
import { relayHeaders, rememberSent } from './response-headers.js';
import { errorResponse, returnResponse, sendLocal } from './respond.js';
import { logContext } from './log-context.js';

/** Makes the request context for a request read by Node's HTTP server. */
export function contextFor(rt: ProxyRuntime, req: IncomingMessage): RequestContext {
  const conn = rt.connInfo(req.socket);
  conn.requests++;
  return new RequestContext(conn, req.method ?? 'GET', req.url ?? '/', req.httpVersion, req.headers, req.rawHeaders, performance.now());
}

/** The 'request' handler: route, then answer locally or proxy with retries. */
export function handleHttpRequest(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse): void {
  const ctx = contextFor(rt, req);
  const socket = req.socket;
  const sentBefore = socket.bytesWritten;
  res.once('close', () => {
    ctx.endMs = performance.now();
    ctx.bytesSent = socket.bytesWritten - sentBefore;
    ctx.bytesReceived = Math.max(0, socket.bytesRead - ctx.conn.readMark);
    ctx.conn.readMark = socket.bytesRead;
    if (!res.writableFinished && ctx.status === 0) ctx.status = 499;
    rt.finish(ctx);
  });
  const decision = rt.routesFor(socket).route(ctx);
  if (decision.kind === 'error') {
    sendLocal(res, errorResponse(decision.status, decision.settings, ctx, rt.vars), ctx);
    return;
  }
  if (decision.kind === 'return') {
    sendLocal(res, returnResponse(decision.action, decision.settings, ctx, rt.vars), ctx);
    return;
  }
  if (decision.settings.keepaliveTimeout === 0) res.shouldKeepAlive = false;
  const route = rt.proxyRoute(ctx.location as NonNullable<typeof ctx.location>);
  void proxyHttp(rt, ctx, route, req, res);
}

async function proxyHttp(rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const log = rt.errorLog(route.settings);
  const hasBody = requestHasBody(ctx);
  let current: Exchange | null = null;
  let clientGone = false;
  const onClientGone = (): void => {
    if (res.writableFinished) return;
    clientGone = true;
    current?.abort();
  };
  res.once('close', onClientGone);

  const tryPeer = async (peer: Peer, attempt: UpstreamAttempt, more: boolean): Promise<TryOutcome> => {
    const head = buildUpstreamHead(ctx, route, rt.vars, { upgrade: null, upgradeValue: null });
    peer.state.active++;
    let released = false;
    const release = (): void => {
      if (!released) {
        released = true;
        peer.state.active--;
      }
    };
    // The response head went out: a failure now can only close the client connection (a chunked
    // body stays unterminated), and is logged once, in nginx's words for the body phase.
    let lateFailure = false;
    const failLate = (err: ProxyError): void => {
      if (!lateFailure && !clientGone) {
        lateFailure = true;
        log.log('error', `${messageWhile(err, 'reading upstream')}${logContext(ctx, `http://${peer.addr}${head.path}`)}`, ctx.conn.id);
      }
      res.destroy();
    };
    const ex = exchange({
      peer, pool: route.pool, method: ctx.method, head, body: hasBody ? req : null, upgrade: false,
      connectTimeout: route.settings.proxyConnectTimeout,
      sendTimeout: route.settings.proxySendTimeout,
      readTimeout: route.settings.proxyReadTimeout,
      attempt,
      onLateError: failLate,
    });
    current = ex;
    if (clientGone) ex.abort();
    const r = await ex.result;
    if (clientGone) {
      release();
      if (r.kind === 'upgrade') r.socket.destroy();
      return { ok: false, error: new ProxyError('CLIENT_CLOSED'), sent: true, countFailure: false, retryable: false };
    }
    if (r.kind === 'error') {
      release();
      return { ok: false, error: r.error, sent: r.connected, countFailure: true, retryable: more && retryAllowed(route, ctx, r.error.retry, r.connected) };
    }
    // No tunnel unless the client asked for one (BEHAVIOURS 9); a 101 that Node's parser does not
    // take for an upgrade (no Upgrade header) arrives as a response and is no answer to relay either.
    if (r.kind === 'upgrade' || r.res.statusCode === 101) {
      if (r.kind === 'upgrade') r.socket.destroy();
      else ex.abort();
      release();
      const error = new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE');
      return { ok: false, error, sent: true, countFailure: true, retryable: more && retryAllowed(route, ctx, error.retry, true) };
    }
    const up = r.res;
    const status = up.statusCode ?? 502;
    if (route.retryStatuses.has(status) && more && retryAllowed(route, ctx, `http_${status}`, true)) {
      up.resume();
      ex.abort();
      release();
      return { ok: false, error: new ProxyError('UPSTREAM_INVALID_RESPONSE', `status ${status}`), sent: true, countFailure: FAILURE_STATUSES.has(status), retryable: true };
    }
    ctx.upstreamHeaders = up.headers;
    // Set first: add_header values may read $status.
    ctx.status = status;
    const headers = relayHeaders(ctx, route, rt.vars, status, up.rawHeaders);
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
    up.on('data', (chunk: Buffer) => void (ctx.bodyBytesSent += chunk.length));
    up.once('end', () => {
      attempt.responseTime = performance.now() - ctx.startMs;
      release();
    });
    up.once('close', release);
    up.once('aborted', () => failLate(new ProxyError('UPSTREAM_RESET')));
    up.pipe(res);
    return { ok: true };
  };

  const failure = await runAttempts(ctx, route, tryPeer, (peer, error) => {
    if (error.code !== 'CLIENT_CLOSED') log.log('error', `${error.message}${logContext(ctx, `http://${peer.addr}${ctx.rawUri}`)}`, ctx.conn.id);
  });
  if (failure === null) return;
  if (failure.code === 'CLIENT_CLOSED' || clientGone) {
    ctx.status = 499;
    return;
  }
  if (failure.code === 'NO_LIVE_UPSTREAMS') log.log('error', `${failure.message}${logContext(ctx)}`, ctx.conn.id);
  if (!res.headersSent && !res.destroyed) sendLocal(res, errorResponse(failure.status, route.settings, ctx, rt.vars), ctx);
}
