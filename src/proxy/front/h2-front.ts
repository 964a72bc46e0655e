/**
 * What the two HTTP/2 front ends (an ordinary request, h2-request.ts, and an RFC 8441 extended
 * CONNECT, h2-connect.ts) share: answers on the client's stream, the ssl_verify_client refusal,
 * status locations, and the relay of an upstream response (status and filtered headers, then the
 * body with HTTP/2 flow control under send_timeout).
 */
import { serverSignature } from '../answer/server-tokens.js';
import { ERROR_CATALOG } from '../../core/errors.js';
import { constants as h2 } from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { adminResponse, wantsEvents } from '../../admin/serve.js';
import type { AdminHandler, Settings } from '../../config/types.js';
import type { StatsSnapshot } from '../../observability/stats.js';
import type { RouteDecision } from '../../routing/router.js';
import type { Peer } from '../../upstream/peer.js';
import { errorResponse } from '../answer/respond.js';
import type { LocalResponse } from '../answer/respond.js';
import type { StreamedResponse } from '../answer/streamed.js';
import { logContext, upstreamUrl } from '../context/log-context.js';
import type { RequestContext, UpstreamAttempt } from '../context/request-context.js';
import { responseFilters } from '../filters/ssi/filter.js';
import { addOwnHeaders, rememberSent } from '../headers/response-headers.js';
import type { FrontEndAnswer } from '../session/guard.js';
import { failRequest } from '../session/guard.js';
import type { ExchangeResponse } from '../session/peer-exchange.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import type { ProxySession } from '../session/session.js';
import { h2ResponseHeaders, headerBytes, sendLocalH2 } from './h2-messages.js';
import { MISDIRECTED_LOG, clientCertRefusal, misdirected, refusalResponse } from './tls-refusals.js';

/** How the safety net answers on a stream before a request has a context (http2-listener.ts). */
export function h2Answer(stream: ServerHttp2Stream): FrontEndAnswer {
  return {
    started: () => stream.headersSent,
    send: (r) => sendLocalH2(stream, r, null),
    abort: () => {
      if (!stream.destroyed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    },
  };
}

export abstract class H2Front {
  protected readonly rt: ProxyRuntime;
  protected readonly ctx: RequestContext;
  protected readonly socket: TLSSocket;
  protected readonly stream: ServerHttp2Stream;

  constructor(rt: ProxyRuntime, ctx: RequestContext, socket: TLSSocket, stream: ServerHttp2Stream) {
    this.rt = rt;
    this.ctx = ctx;
    this.socket = socket;
    this.stream = stream;
  }

  started(): boolean {
    return this.stream.headersSent;
  }

  send(r: LocalResponse): void {
    sendLocalH2(this.stream, r, this.ctx);
  }

  /** A response cut short: RST_STREAM, so the client can tell the body is incomplete. */
  abort(): void {
    if (!this.stream.destroyed) this.stream.close(h2.NGHTTP2_INTERNAL_ERROR);
  }

  /** The router's decision, after the ssl_verify_client refusal nginx checks first (as a 400). */
  protected decide(): RouteDecision | null {
    const ctx = this.ctx;
    const decision = this.rt.routesFor(this.socket).route(ctx);
    // nginx's ngx_http_process_host checks :authority against the SNI name as it checks Host.
    if (ctx.server !== null && misdirected(ctx.conn.ssl, ctx.server, ctx.rawUri, ctx.headers.host)) {
      this.rt.errorLog(ctx.settings).log('info', `${MISDIRECTED_LOG} while reading client request headers${logContext(ctx)}`, ctx.conn.id);
      this.send(errorResponse(421, ctx.settings, ctx, this.rt.vars));
      return null;
    }
    const refusal = ctx.server === null ? null : clientCertRefusal(ctx.conn.ssl, ctx.server);
    if (refusal !== null) {
      this.rt.errorLog(ctx.settings).log('info', `${refusal.log} while reading client request headers${logContext(ctx)}`, ctx.conn.id);
      this.send(refusalResponse(refusal.kind, this.rt, ctx));
      return null;
    }
    return decision;
  }

  /**
   * A status location over HTTP/2: one snapshot per request. The dashboard's event stream is
   * answered with one snapshot too (EventSource reconnects after `retry`), not held open.
   */
  serveAdmin(handler: AdminHandler, settings: Settings): Promise<void> | undefined {
    const { rt, ctx } = this;
    if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
      this.send(errorResponse(405, settings, ctx, rt.vars));
      return undefined;
    }
    const stats = rt.stats;
    if (stats === null) {
      this.send(errorResponse(503, settings, ctx, rt.vars));
      return undefined;
    }
    if (handler === 'dashboard' && !wantsEvents(ctx)) {
      this.send(adminResponse(handler, null as unknown as StatsSnapshot, settings, ctx, rt.vars));
      return undefined;
    }
    return stats.combinedSnapshot().then((snap) => {
      if (handler === 'dashboard') {
        const body = `retry: 2000\n\ndata: ${JSON.stringify(snap)}\n\n`;
        this.send({ status: 200, headers: ['Content-Type', 'text/event-stream; charset=utf-8', 'Cache-Control', 'no-cache'], body, drop: false });
      } else {
        this.send(adminResponse(handler, snap, settings, ctx, rt.vars));
      }
    }, () => this.send(errorResponse(ERROR_CATALOG.INTERNAL.status, settings, ctx, rt.vars)))
      .catch((err: unknown) => failRequest(rt, ctx, this, err));
  }

  /** A response whose body streams (a file): status and headers, then the body under HTTP/2 flow control. */
  sendStreamed(s: ProxySession, r: StreamedResponse): void {
    const { ctx, stream } = this;
    if (stream.destroyed || stream.closed) {
      r.body?.destroy();
      return;
    }
    const flat = ['Server', 'sluice', ...r.headers];
    ctx.status = r.status;
    rememberSent(ctx, flat);
    try {
      stream.respond(h2ResponseHeaders(r.status, flat), { endStream: r.body === null });
    } catch {
      r.body?.destroy();
      this.abort();
      return;
    }
    ctx.bytesSent += headerBytes(flat);
    if (r.body !== null) {
      s.streamBody(r.body, stream, stream, (chunk) => {
        ctx.bodyBytesSent += chunk.length;
        ctx.bytesSent += chunk.length;
      });
    }
  }

  /**
   * Relays an upstream response on the stream: status and filtered headers (no
   * connection-specific ones), then the body, paced by the stream's flow control.
   */
  relay(s: ProxySession, x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt): void {
    const { ctx, stream } = this;
    const up = x.res;
    const flat = x.headers;
    addOwnHeaders(flat, null, serverSignature(ctx.settings));
    // nginx's not_modified filter runs first and the range filter last (0: a 412 or 416 answered instead).
    const checked = s.notModifiedStatus(x);
    if (checked === 0) return;
    const encoder = responseFilters(ctx, ctx.settings, checked, flat, { vars: this.rt.vars, log: s.log, subrequest: s.subrequest });
    const status = s.rangeStatus(x, checked, encoder !== null);
    if (status === 0) return;
    rememberSent(ctx, flat);
    const noBody = ctx.method === 'HEAD' || status === 204 || status === 304;
    try {
      stream.respond(h2ResponseHeaders(status, flat), { endStream: noBody });
    } catch (err) {
      x.release();
      up.destroy();
      s.log.log('error', `cannot relay upstream response: ${(err as Error).message}${logContext(ctx, upstreamUrl(s.route as ProxyRoute, peer, ctx))}`, ctx.conn.id);
      this.abort();
      return;
    }
    ctx.bytesSent += headerBytes(flat);
    s.relayBody(x, peer, attempt, stream, stream, noBody, (chunk) => {
      ctx.bodyBytesSent += chunk.length;
      ctx.bytesSent += chunk.length;
    }, encoder);
  }
}
