/**
 * The HTTP/1.1 front end for ordinary requests, on Node's HTTP server (IncomingMessage and
 * ServerResponse): nginx's checks of the request head and keep-alive rules, then a proxy session
 * (session/session.ts). Responses are relayed with writeHead and the body under send_timeout; a
 * request body streams upstream under client_body_timeout.
 */
import { serverSignature } from '../answer/server-tokens.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { serveAdmin } from '../../admin/serve.js';
import type { AdminHandler, Settings } from '../../config/types.js';
import { ProxyError } from '../../core/errors.js';
import type { Peer } from '../../upstream/peer.js';
import { sendLocal } from '../answer/respond.js';
import type { LocalResponse } from '../answer/respond.js';
import { reasonPhrase } from '../answer/error-page.js';
import type { StreamedResponse } from '../answer/streamed.js';
import { logContext } from '../context/log-context.js';
import { responseFilters } from '../filters/ssi/filter.js';
import { RequestContext, requestHasBody } from '../context/request-context.js';
import type { UpstreamAttempt } from '../context/request-context.js';
import { addOwnHeaders, rememberSent } from '../headers/response-headers.js';
import { NO_UPGRADE } from '../headers/upstream-request.js';
import type { ForwardMode } from '../headers/upstream-request.js';
import type { RouteDecision } from '../../routing/router.js';
import { watchBodyReads } from '../session/body-relay.js';
import type { FrontEnd } from '../session/front-end.js';
import type { FrontEndAnswer } from '../session/guard.js';
import { noTunnel } from '../session/front-end.js';
import type { ExchangeResponse } from '../session/peer-exchange.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { ProxySession } from '../session/session.js';
import { lingerOnClose, lingerRequestDone, requestEnded, requestStarted, resetConnection } from './client-timeouts.js';
import { headRefusal, headSizeRefusal, isClosing, markClosing } from './h1-head-checks.js';
import { dropInvalidHeaders } from './invalid-headers.js';
import type { LeanHead, UpgradeRequest } from './h1-head-parser.js';
import type { LeanResponse } from './h1-lean-response.js';

/**
 * nginx's browser detection for keepalive_disable (ngx_http_process_user_agent): `msie6` is
 * MSIE 4 to 6 without "SV1" (XP SP2's MSIE 6 handles keep-alive with POST); `safari` is Safari
 * on macOS and iOS (not Chrome, whose user agent also says Safari).
 */
export function keepaliveDisabledFor(browsers: readonly ('msie6' | 'safari')[], ua: string | undefined): boolean {
  if (ua === undefined) return false;
  for (const b of browsers) {
    if (b === 'msie6') {
      const m = /MSIE ([0-9])\./.exec(ua);
      if (m !== null && Number(m[1]) >= 4 && Number(m[1]) <= 6 && !ua.includes('; SV1')) return true;
    } else if (ua.includes('Safari/') && ua.includes('Mac OS X') && !ua.includes('Chrome/')) {
      return true;
    }
  }
  return false;
}

/**
 * Makes the request context for a request read by Node's HTTP server (or the lean front end's parser), without the header lines
 * nginx ignores as invalid (each logged at `info` in nginx's words).
 */
export function contextFor(rt: ProxyRuntime, req: UpgradeRequest): RequestContext {
  const conn = rt.connInfo(req.socket);
  conn.requests++;
  const defaults = rt.routesFor(req.socket).group.defaultServer.settings;
  const kept = dropInvalidHeaders(req.rawHeaders, req.headers, defaults.core);
  const ctx = new RequestContext(conn, req.method ?? 'GET', req.url ?? '/', req.httpVersion, kept?.headers ?? req.headers, kept?.raw ?? req.rawHeaders, performance.now());
  if (kept !== null) {
    const log = rt.errorLog(defaults);
    for (const [name, value] of kept.dropped) {
      log.log('info', `client sent invalid header line: "${name}: ${value}" while reading client request headers${logContext(ctx)}`, conn.id);
    }
  }
  return ctx;
}

/** The 'request' handler: a session for the request, its end accounted when the response closes. */
export function handleHttpRequest(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket;
  // A request pipelined behind one that ends the connection is never handled (h1-head-checks.ts).
  if (isClosing(socket)) return;
  const ctx = contextFor(rt, req);
  accountResponse(rt, req, res, ctx);
  new ProxySession(rt, ctx, new H1RequestFront(rt, ctx, req, res)).start();
}

/**
 * A plain request the lean front end took (server/lean-front.ts): the same front end as on Node's
 * server, on the parsed head and a LeanResponse, which have every member of IncomingMessage and
 * ServerResponse this file, answer/respond.ts (sendLocal), admin/serve.ts and the session's body
 * relays use (h1-lean-response.ts lists them); a request with a body is a LeanBodyRequest, the
 * stream part of IncomingMessage (h1-lean-body.ts). `pipelined`: read with the request before it
 * (nginx's $pipe).
 */
export function handleLeanRequest(rt: ProxyRuntime, head: LeanHead, lean: LeanResponse, pipelined: boolean): void {
  const req = head as unknown as IncomingMessage;
  const res = lean as unknown as ServerResponse;
  const ctx = contextFor(rt, head);
  accountResponse(rt, req, res, ctx);
  ctx.pipelined = pipelined;
  new ProxySession(rt, ctx, new H1RequestFront(rt, ctx, req, res)).start();
}

/**
 * The end of an HTTP/1.1 request on Node's server, whoever answers it (a session, the forward
 * proxy): keep-alive and lingering close, the byte counts, 499 for a response cut short, the log.
 */
export function accountResponse(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse, ctx: RequestContext): void {
  const socket = req.socket;
  // Node queues the answer of a request that came while the previous one's was still going out
  // (no socket assigned yet): nginx's pipelined request ($pipe "p").
  ctx.pipelined = res.socket === null;
  const sentBefore = socket.bytesWritten;
  requestStarted(socket);
  const bodyLeft = (): boolean => !req.complete;
  lingerOnClose(socket, () => ctx.settings, bodyLeft);
  res.once('close', () => {
    ctx.endMs = performance.now();
    ctx.bytesSent = socket.bytesWritten - sentBefore;
    ctx.bytesReceived = Math.max(0, socket.bytesRead - ctx.conn.readMark);
    ctx.conn.readMark = socket.bytesRead;
    if (!res.writableFinished && ctx.status === 0) ctx.status = 499;
    requestEnded(socket, res.shouldKeepAlive ? (ctx.settings?.keepaliveTimeout ?? 0) : 0);
    lingerRequestDone(socket, bodyLeft);
    rt.finish(ctx);
  });
}

/** An ordinary HTTP/1.1 request: what the session asks of Node's IncomingMessage/ServerResponse. */
export class H1RequestFront implements FrontEnd {
  readonly mode: ForwardMode = NO_UPGRADE;
  readonly #rt: ProxyRuntime;
  readonly #ctx: RequestContext;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;

  constructor(rt: ProxyRuntime, ctx: RequestContext, req: IncomingMessage, res: ServerResponse) {
    this.#rt = rt;
    this.#ctx = ctx;
    this.#req = req;
    this.#res = res;
  }

  started(): boolean {
    return this.#res.headersSent;
  }

  send(r: LocalResponse): void {
    if (!this.#res.destroyed) sendLocal(this.#res, r, this.#ctx);
  }

  abort(timedOut = false): void {
    if (timedOut && this.#ctx.settings?.resetTimedoutConnection === true) resetConnection(this.#req.socket);
    else this.#res.destroy();
  }

  route(): RouteDecision | null {
    const rt = this.#rt;
    const ctx = this.#ctx;
    const res = this.#res;
    const socket = this.#req.socket;
    const routes = rt.routesFor(socket);
    const refusal = headRefusal(this.#req) ?? headSizeRefusal(this.#req, routes.group.defaultServer.settings.largeClientHeaderBuffers.size);
    if (refusal !== null) {
      const refused = routes.refuse(ctx, refusal.status);
      rt.errorLog(refused.settings).log('info', `${refusal.log}${logContext(ctx)}`, ctx.conn.id);
      res.shouldKeepAlive = false;
      markClosing(socket);
      // Answered by the session, through the server's error_page (nginx's special response);
      // the body of a refused head is never forwarded.
      ctx.bodyDropped = true;
      return refused;
    }
    const decision = routes.route(ctx);
    // nginx: keepalive_timeout 0 turns keep-alive off; a 400 ends the connection (and what the
    // client pipelined after it).
    if (decision.settings.keepaliveTimeout === 0 || (decision.kind === 'error' && decision.status === 400)) res.shouldKeepAlive = false;
    // keepalive_requests: the connection's last request (ngx_http_finalize_connection).
    if (ctx.conn.requests >= decision.settings.keepaliveRequests) res.shouldKeepAlive = false;
    // keepalive_time: the connection has served long enough; keepalive_disable: a browser whose
    // keep-alive nginx does not trust.
    if (performance.now() - ctx.conn.startMs > decision.settings.keepaliveTime) res.shouldKeepAlive = false;
    if (decision.settings.keepaliveDisable.length > 0 && keepaliveDisabledFor(decision.settings.keepaliveDisable, this.#req.headers['user-agent'])) res.shouldKeepAlive = false;
    if (!res.shouldKeepAlive) markClosing(socket);
    // nginx sends `Keep-Alive: timeout=N` only for keepalive_timeout's second value, and only on
    // a response that keeps the connection: Node writes it on exactly those from this field (the
    // server's own keepAliveTimeout is 0, see client-timeouts.ts).
    else if (decision.settings.keepaliveHeader > 0) (res as ServerResponse & { _keepAliveTimeout: number })._keepAliveTimeout = decision.settings.keepaliveHeader * 1000;
    return decision;
  }

  serveAdmin(handler: AdminHandler, settings: Settings): Promise<void> | undefined {
    return serveAdmin(this.#rt, handler, settings, this.#ctx, this.#res);
  }

  start(s: ProxySession, route: ProxyRoute): Readable | null {
    const res = this.#res;
    res.once('close', () => {
      if (!res.writableFinished) s.clientLeft();
    });
    if (!requestHasBody(this.#ctx)) return null;
    // Node left "100 Continue" to us (proxy-server.ts): sent as nginx does, once the body is wanted.
    if (this.#req.httpVersion === '1.1' && (this.#req.headers.expect ?? '').toLowerCase() === '100-continue') res.writeContinue();
    // nginx terminates a request whose body stalls past client_body_timeout: no response, the
    // connection closed, 408 in the access log, nothing in the error log (checked against 1.22).
    const stop = watchBodyReads(this.#req, route.settings.clientBodyTimeout, () => s.bodyTimedOut());
    res.once('close', stop);
    return this.#req;
  }

  sendStreamed(s: ProxySession, r: StreamedResponse): void {
    const ctx = this.#ctx;
    const res = this.#res;
    if (res.destroyed) {
      r.body?.destroy();
      return;
    }
    const headers = ['Server', 'sluice', ...r.headers];
    ctx.status = r.status;
    rememberSent(ctx, headers);
    res.writeHead(r.status, reasonPhrase(r.status), headers);
    if (r.body === null) res.end();
    else s.streamBody(r.body, res, this.#req.socket, (chunk) => void (ctx.bodyBytesSent += chunk.length));
  }

  checkSwitch(): ProxyError {
    // No tunnel unless the client asked for one (BEHAVIOURS 9).
    return new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE');
  }

  relay(s: ProxySession, x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt): void {
    const ctx = this.#ctx;
    const res = this.#res;
    const up = x.res;
    const headers = x.headers;
    addOwnHeaders(headers, null, serverSignature(ctx.settings));
    // nginx's not_modified filter runs first and the range filter last (0: a 412 or 416 answered instead).
    const checked = s.notModifiedStatus(x);
    if (checked === 0) return;
    const encoder = responseFilters(ctx, ctx.settings, checked, headers, { vars: this.#rt.vars, log: s.log, subrequest: s.subrequest });
    const status = s.rangeStatus(x, checked, encoder !== null);
    if (status === 0) return;
    rememberSent(ctx, headers);
    // chunked_transfer_encoding off: a body of unknown length ends with the connection (Node
    // then sends `Connection: close`), as nginx does.
    if (ctx.settings?.core.chunkedTransferEncoding === false) res.useChunkedEncodingByDefault = false;
    try {
      res.writeHead(status, status === up.statusCode ? up.statusMessage : reasonPhrase(status), headers);
    } catch (err) {
      // Node refuses what no check above caught: this request only ends (nothing was sent).
      x.release();
      x.exchange.abort();
      s.log.log('error', `cannot relay upstream response: ${(err as Error).message}${logContext(ctx)}`, ctx.conn.id);
      res.destroy();
      return;
    }
    // Node's ServerResponse drops the body of HEAD, 204 and 304 itself; only HEAD can have an encoder.
    s.relayBody(x, peer, attempt, res, this.#req.socket, false, (chunk) => void (ctx.bodyBytesSent += chunk.length), ctx.method === 'HEAD' ? null : encoder);
  }

  tunnel(): never {
    return noTunnel();
  }
}

/** How the safety net answers a request that failed before it had a context (proxy-server.ts). */
export function h1Answer(res: ServerResponse): FrontEndAnswer {
  return {
    started: () => res.headersSent,
    send: (r) => sendLocal(res, r, null),
    abort: () => void res.destroy(),
  };
}
