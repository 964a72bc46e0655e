import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ReturnAction, Settings } from '../../config/types.js';
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';
import { errorPage, hasErrorPage, reasonPhrase } from './error-page.js';
import { sendableHeaderValue } from '../headers/header-value.js';
import { httpDate } from './http-date.js';
import { applyHeadersFilter, rememberSent, withCharset } from '../headers/response-headers.js';
import { absoluteLocation } from './location-header.js';
import { lingeringClose } from '../front/client-timeouts.js';
import { encodeLocalBody } from '../filters/compression.js';
import { serverSignature } from './server-tokens.js';

/** A response Sluice makes itself (a `return`, an error page). */
export interface LocalResponse {
  readonly status: number;
  readonly headers: string[];
  readonly body: string;
  /** nginx's 444: close the connection without a response. */
  readonly drop: boolean;
  /** The Server header (`server_tokens`). @default 'sluice' */
  readonly server?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** nginx closes the connection after these (ngx_http_special_response_handler, and 408 always). */
const CLOSE_AFTER = new Set([400, 408, 413, 414, 431, 494, 500, 501]);

export function returnResponse(action: ReturnAction, settings: Settings, ctx: RequestContext, vars: Variables): LocalResponse {
  const status = action.code;
  // $status is the status being sent, also while add_header and return values are evaluated.
  ctx.status = status;
  if (status === 444) return { status, headers: [], body: '', drop: true };
  const text = action.text ? vars.evaluate(action.text, ctx) : null;
  const headers: string[] = [];
  const server = serverSignature(settings);
  let body = '';
  if (REDIRECTS.has(status) && text !== null) {
    headers.push('Location', sendableHeaderValue('Location', absoluteLocation(text, settings, ctx)));
    body = errorPage(status, undefined, undefined, server);
    headers.push('Content-Type', withCharset(settings, 'text/html'));
  } else if (text !== null) {
    body = text;
    headers.push('Content-Type', withCharset(settings, settings.defaultType));
  } else if (status >= 300 && hasErrorPage(status)) {
    body = errorPage(status, undefined, undefined, server);
    headers.push('Content-Type', withCharset(settings, 'text/html'));
  }
  // In an error page's target the header filters see the error's status (nginx's err_status).
  applyHeadersFilter(settings, ctx.errStatus === 0 ? status : ctx.errStatus, ctx, vars, headers);
  return { status, headers, body, drop: false, server };
}

export function errorResponse(status: number, settings: Settings | null, ctx: RequestContext | null, vars: Variables | null): LocalResponse {
  // nginx's internal 494 goes out as a 400 with its own page (ngx_http_error_494_page); a status
  // nginx has no page for goes out with an empty body.
  const page = status === 494 || hasErrorPage(status);
  const sent = status === 494 ? 400 : status;
  const headers = page ? ['Content-Type', settings === null ? 'text/html' : withCharset(settings, 'text/html')] : [];
  if (ctx) ctx.status = sent;
  if (settings && ctx && vars) applyHeadersFilter(settings, sent, ctx, vars, headers);
  const server = serverSignature(settings);
  const body = status === 494 ? errorPage(400, reasonPhrase(494), `400 ${reasonPhrase(494)}`, server) : page ? errorPage(status, undefined, undefined, server) : '';
  return { status: sent, headers, body, drop: false, server };
}

/** Sends a local response through Node's HTTP server (keep-alive, HEAD handled by Node). */
export function sendLocal(res: ServerResponse, r: LocalResponse, ctx: RequestContext | null): void {
  if (r.drop) {
    res.socket?.destroy();
    return;
  }
  let body: Buffer = Buffer.from(r.body, 'utf8');
  const headers = ['Server', r.server ?? 'sluice', ...r.headers, 'Content-Length', String(body.length)];
  if (CLOSE_AFTER.has(r.status)) headers.push('Connection', 'close');
  if (ctx) {
    body = encodeLocalBody(ctx, r.status, headers, body);
    ctx.status = r.status;
    rememberSent(ctx, headers);
    if (ctx.method !== 'HEAD') ctx.bodyBytesSent = body.length;
  }
  res.writeHead(r.status, reasonPhrase(r.status), headers);
  res.end(ctx?.method === 'HEAD' ? undefined : body);
}

/** The bytes of a response head written straight to a socket (after an upgrade request). */
export function rawHead(status: number, reason: string, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${reason}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i]}: ${headers[i + 1]}\r\n`;
  return head + '\r\n';
}

/** Sends a local response on a raw socket and closes the connection. */
export function sendLocalRaw(socket: Socket, r: LocalResponse, ctx: RequestContext | null): void {
  if (r.drop || socket.destroyed) {
    socket.destroy();
    return;
  }
  let body: Buffer = Buffer.from(r.body, 'utf8');
  const headers = ['Server', r.server ?? 'sluice', 'Date', httpDate(), ...r.headers, 'Content-Length', String(body.length)];
  // Without Content-Length, a compressed body ends with the connection.
  if (ctx) body = encodeLocalBody(ctx, r.status, headers, body);
  headers.push('Connection', 'close');
  const head = rawHead(r.status, reasonPhrase(r.status), headers);
  if (ctx) {
    ctx.status = r.status;
    rememberSent(ctx, headers);
    ctx.bodyBytesSent = body.length;
    ctx.bytesSent += Buffer.byteLength(head) + body.length;
  }
  socket.end(ctx?.method === 'HEAD' ? head : Buffer.concat([Buffer.from(head, 'latin1'), body]));
  lingeringClose(socket, ctx?.settings ?? null);
}
