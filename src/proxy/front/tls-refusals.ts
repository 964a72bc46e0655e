/**
 * The requests nginx refuses because of TLS, each with its own 400 page: a plain HTTP request
 * sent to an HTTPS port (nginx's internal 497), a client certificate that failed verification
 * (495) and a missing client certificate where `ssl_verify_client on` requires one (496). nginx
 * completes the handshake and refuses the request, so the client sees why.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { UpgradeRequest } from './h1-head-parser.js';
import type { Socket } from 'node:net';
import type { ServerConfig } from '../../config/types.js';
import { applyHeadersFilter } from '../headers/response-headers.js';
import { serverSignature } from '../answer/server-tokens.js';
import { requestHost } from '../../routing/host.js';
import { contextFor } from './h1-request.js';
import { logContext } from '../context/log-context.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import type { RequestContext } from '../context/request-context.js';
import { errorResponse, sendLocal, sendLocalRaw, type LocalResponse } from '../answer/respond.js';
import type { SslInfo } from '../context/ssl-info.js';
import { verifyErrorCode } from '../context/ssl-info.js';

/** nginx's special 400 pages (ngx_http_error_495/496/497_page), signed by Sluice. */
export const TLS_REFUSAL_TEXT = {
  495: 'The SSL certificate error',
  496: 'No required SSL certificate was sent',
  497: 'The plain HTTP request was sent to HTTPS port',
} as const;

export type TlsRefusal = keyof typeof TLS_REFUSAL_TEXT;

export function tlsRefusalPage(kind: TlsRefusal, signature = 'sluice'): string {
  const text = TLS_REFUSAL_TEXT[kind];
  return `<html>\r\n<head><title>400 ${text}</title></head>\r\n<body>\r\n<center><h1>400 Bad Request</h1></center>\r\n`
    + `<center>${text}</center>\r\n<hr><center>${signature}</center>\r\n</body>\r\n</html>\r\n`;
}

/**
 * nginx's 400 for a TLS refusal: signed as the server's `server_tokens` says, and through the
 * headers filter like any page nginx makes (`add_header ... always` applies).
 */
export function refusalResponse(kind: TlsRefusal, rt: ProxyRuntime, ctx: RequestContext): LocalResponse {
  const settings = ctx.settings;
  const headers = ['Content-Type', 'text/html'];
  ctx.status = 400;
  if (settings !== null) applyHeadersFilter(settings, 400, ctx, rt.vars, headers);
  const server = serverSignature(settings);
  return { status: 400, headers, body: tlsRefusalPage(kind, server), drop: false, server };
}

/**
 * What `ssl_verify_client` of the request's server says about this connection's client
 * certificate: null to go on, else the refusal and nginx's error-log line (at `info`).
 */
export function clientCertRefusal(ssl: SslInfo | null | undefined, server: ServerConfig): { kind: TlsRefusal; log: string } | null {
  if (!ssl) return null;
  const verify = server.settings.ssl.verifyClient;
  if (verify === 'off') return null;
  if (ssl.clientVerifyError !== null) {
    return { kind: 495, log: `client SSL certificate verify error: (${verifyErrorCode(ssl.clientVerifyError)}:${ssl.clientVerifyError})` };
  }
  // ssl_verify_depth: OpenSSL's depth check, which Node.js cannot set, made on the verified chain.
  if (ssl.clientIntermediates > server.settings.ssl.verifyDepth) {
    return { kind: 495, log: 'client SSL certificate verify error: (22:certificate chain too long)' };
  }
  if (verify === 'on' && !ssl.clientCert) return { kind: 496, log: 'client sent no required SSL certificate' };
  return null;
}

export const MISDIRECTED_LOG = 'client attempted to request the server name different from the one that was negotiated';

/**
 * nginx 1.22's ngx_http_set_virtual_server: on a connection whose client named a server by SNI,
 * a request whose Host names another one gets 421 when the server the Host selects verifies client
 * certificates (the certificate was checked for the SNI server, not for this one).
 */
export function misdirected(ssl: SslInfo | null | undefined, server: ServerConfig, rawUri: string, host: string | string[] | undefined): boolean {
  if (!ssl || ssl.serverName === '' || server.settings.ssl.verifyClient === 'off') return false;
  const h = requestHost(rawUri, Array.isArray(host) ? host[0] : host);
  return h !== null && h !== ssl.serverName.toLowerCase();
}

/** The server a request on this connection is for (by Host, as the router chooses it). */
function serverOf(rt: ProxyRuntime, socket: Socket, rawUri: string, host: string | string[] | undefined): ServerConfig {
  const group = rt.routesFor(socket).group;
  const h = requestHost(rawUri, Array.isArray(host) ? host[0] : host);
  return h === null ? group.defaultServer : group.select(h).server;
}

function finishOnClose(rt: ProxyRuntime, ctx: RequestContext, emitter: { once(e: 'close', f: () => void): unknown }): void {
  emitter.once('close', () => {
    if (ctx.endMs === 0) ctx.endMs = performance.now();
    rt.finish(ctx);
  });
}

function refuse(rt: ProxyRuntime, req: UpgradeRequest, log: string): RequestContext {
  const ctx = contextFor(rt, req);
  // Routed for $server_name, the access log and add_header of the server; the decision is not used.
  rt.routesFor(req.socket).route(ctx);
  rt.errorLog(ctx.settings).log('info', `${log} while reading client request headers${logContext(ctx)}`, ctx.conn.id);
  return ctx;
}

/**
 * The answer nginx gives this request on a TLS connection before any phase: 421 for a Host other
 * than the SNI name (misdirected), else 495/496 when the client certificate does not satisfy the
 * server's ssl_verify_client; null to go on. Logged at info, the context routed.
 */
function tlsRefusal(rt: ProxyRuntime, req: UpgradeRequest, socket: Socket): { ctx: RequestContext; answer: LocalResponse } | null {
  const conn = rt.connInfo(socket);
  const server = serverOf(rt, socket, req.url ?? '/', req.headers.host);
  if (misdirected(conn.ssl, server, req.url ?? '/', req.headers.host)) {
    const ctx = refuse(rt, req, MISDIRECTED_LOG);
    return { ctx, answer: errorResponse(421, ctx.settings, ctx, rt.vars) };
  }
  const refusal = clientCertRefusal(conn.ssl, server);
  if (refusal === null) return null;
  const ctx = refuse(rt, req, refusal.log);
  return { ctx, answer: refusalResponse(refusal.kind, rt, ctx) };
}

/** For the HTTP/1.1 'request' event on a TLS connection: answers and returns true on a refusal. */
export function refuseForClientCert(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse): boolean {
  const r = tlsRefusal(rt, req, req.socket);
  if (r === null) return false;
  finishOnClose(rt, r.ctx, res);
  sendLocal(res, r.answer, r.ctx);
  return true;
}

/** The same for the 'upgrade' event (the answer is written to the raw socket, which is then closed). */
export function refuseUpgradeForClientCert(rt: ProxyRuntime, req: UpgradeRequest, socket: Socket): boolean {
  const r = tlsRefusal(rt, req, socket);
  if (r === null) return false;
  finishOnClose(rt, r.ctx, socket);
  sendLocalRaw(socket, r.answer, r.ctx);
  return true;
}

/** 'request' of the server that reads plain HTTP sent to a TLS port: nginx's 400 and close. */
export function answerPlainHttpOnTlsPort(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse): void {
  const ctx = refuse(rt, req, 'client sent plain HTTP request to HTTPS port');
  finishOnClose(rt, ctx, res);
  sendLocal(res, refusalResponse(497, rt, ctx), ctx);
}

/** The same for a plain upgrade request (a ws:// client on a wss:// port). */
export function answerPlainUpgradeOnTlsPort(rt: ProxyRuntime, req: IncomingMessage, socket: Socket): void {
  socket.on('error', () => undefined);
  const ctx = refuse(rt, req, 'client sent plain HTTP request to HTTPS port');
  finishOnClose(rt, ctx, socket);
  sendLocalRaw(socket, refusalResponse(497, rt, ctx), ctx);
}
