/**
 * Absolute-form requests (RFC 9112 3.2.2, `GET http://host/path HTTP/1.1`) on a `forward_proxy`
 * server: what a client configured with an HTTP proxy sends for `http://` and `ws://` URLs. The
 * destination passes admission.ts like a CONNECT's; the request goes there in origin form without
 * the hop-by-hop headers (RFC 9110 7.6.1: Proxy-Authorization and Proxy-Connection included), one
 * request per upstream connection. An ordinary request is relayed with Node's client; one that
 * asks for an upgrade (`ws://`) is written on the raw connection, the destination's answer is
 * relayed as it comes, and the connection becomes a tunnel (its 101 starts a WebSocket session).
 * An ordinary request's body is under client_max_body_size (a declared one over it is refused
 * before anything else, as nginx's find-config phase does) and client_body_timeout.
 */
import type { UpgradeRequest } from '../front/h1-head-parser.js';
import { request as httpRequest } from 'node:http';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { ServerConfig } from '../../config/types.js';
import { ERROR_CATALOG, ProxyError, toProxyError } from '../../core/errors.js';
import { bodyTooLarge } from '../../routing/server-routes.js';
import { errorResponse, sendLocal } from '../answer/respond.js';
import { logContext } from '../context/log-context.js';
import { requestHasBody } from '../context/request-context.js';
import { resetConnection } from '../front/client-timeouts.js';
import { accountResponse, contextFor, h1Answer } from '../front/h1-request.js';
import { headRefusal, isClosing } from '../front/h1-head-checks.js';
import { rawAnswer } from '../front/h1-upgrade.js';
import { connectionTokens, isHopByHop } from '../headers/hop-by-hop.js';
import { watchBodyReads, watchBodySize } from '../session/body-relay.js';
import { failRequest } from '../session/guard.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { refused } from './admission.js';
import { parseDestination } from './destinations.js';
import type { Destination } from './destinations.js';
import { enterForwardServer, openForwardTunnel, startRawForward } from './raw-forward.js';
import type { RawForward } from './raw-forward.js';
import { badTarget, reachDestination, refuseLogged } from './reach.js';
import type { ForwardRequest } from './reach.js';

/** The largest response head read before an upgraded connection becomes a tunnel. */
const UPGRADE_HEAD_LIMIT = 64 * 1024;

/** Where an absolute-form target points, and the origin-form target to send there. */
interface AbsoluteTarget {
  readonly dest: Destination;
  readonly path: string;
  readonly authority: string;
}

/** `http://` or `ws://` (both port 80 by default); userinfo is refused as nginx refuses it. */
function absoluteTarget(url: string): AbsoluteTarget | null {
  const m = /^(http|ws):\/\/([^/?#]*)(.*)$/i.exec(url);
  if (m === null) return null;
  const authority = m[2]!;
  if (authority.includes('@')) return null;
  const dest = parseDestination(authority, 80);
  if (dest === null) return null;
  const rest = m[3]!.replace(/#.*$/, '');
  return { dest, authority, path: rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest };
}

/**
 * Header lines without the hop-by-hop ones (and those the Connection header names); for a
 * request (`authority` given), Host is the target's authority, whatever the client sent
 * (RFC 9112 3.2.2: a proxy ignores a received Host for an absolute-form target).
 */
function endToEndHeaders(raw: readonly string[], authority: string | null): string[] {
  const named = connectionTokens(raw);
  const out: string[] = authority === null ? [] : ['Host', authority];
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (isHopByHop(lower) || named.has(lower) || (authority !== null && lower === 'host')) continue;
    out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** The 'request' handler for an absolute-form request to a `forward_proxy` server. */
export function handleForwardRequest(rt: ProxyRuntime, req: IncomingMessage, res: ServerResponse, server: ServerConfig): void {
  // A request pipelined behind one that ends the connection is never handled (h1-head-checks.ts).
  if (isClosing(req.socket)) return;
  const ctx = contextFor(rt, req);
  accountResponse(rt, req, res, ctx);
  enterForwardServer(ctx, server);
  const settings = server.settings;
  const r: ForwardRequest = {
    rt, ctx, settings,
    gone: () => res.destroyed,
    refuse: (refusal) => {
      if (res.headersSent || res.destroyed) return;
      const page = errorResponse(refusal.status, settings, ctx, rt.vars);
      page.headers.push(...refusal.headers);
      sendLocal(res, page, ctx);
    },
  };
  forwardRequest(r, req, res).catch((err: unknown) => failRequest(rt, ctx, h1Answer(res), err));
}

/** nginx's checks of the request head, as for any request (400, 501, 505). */
function headRefused(r: ForwardRequest, req: UpgradeRequest): boolean {
  const refusal = headRefusal(req);
  if (refusal === null) return false;
  r.rt.errorLog(r.settings).log('info', `${refusal.log}${logContext(r.ctx)}`, r.ctx.conn.id);
  r.refuse(refused(refusal.status, null));
  return true;
}

async function forwardRequest(r: ForwardRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (headRefused(r, req)) return;
  const target = absoluteTarget(req.url ?? '');
  if (target === null) {
    badTarget(r, req.url ?? '');
    return;
  }
  const large = bodyTooLarge(r.settings, r.ctx);
  if (large !== null) {
    refuseLogged(r, refused(large.status, large.log ?? null));
    return;
  }
  const socket = await reachDestination(r, target.dest, 'http');
  if (socket !== null) relay(r, req, res, target, socket);
}

/** One request on the new connection, the answer relayed to the client as it comes. */
function relay(r: ForwardRequest, req: IncomingMessage, res: ServerResponse, target: AbsoluteTarget, socket: Socket): void {
  const { rt, ctx, settings } = r;
  const attempt = ctx.attempts.at(-1)!;
  const headers = endToEndHeaders(ctx.rawHeaders, target.authority);
  headers.push('Connection', 'close');
  const up = httpRequest({
    createConnection: () => socket,
    method: ctx.method,
    path: target.path,
    headers: headers as unknown as OutgoingHttpHeaders,
    setHost: false,
  });
  // proxy_read_timeout and proxy_send_timeout: the destination is silent for that long.
  socket.setTimeout(Math.max(settings.proxyReadTimeout, settings.proxySendTimeout), () => up.destroy(new ProxyError('UPSTREAM_READ_TIMEOUT')));
  const upstreamUrl = `http://${attempt.addr}${target.path}`;
  // Set when the proxy ended the request itself (its body too large or too slow): what the
  // destination's side does after that is not an upstream failure.
  let stopped = false;
  up.on('error', (err: Error) => {
    if (stopped) return;
    const e = toProxyError(err, 'UPSTREAM_RESET');
    if (!res.destroyed) rt.errorLog(settings).log('error', `${e.message}${logContext(ctx, upstreamUrl)}`, ctx.conn.id);
    if (res.headersSent) res.destroy();
    else r.refuse(refused(e.status, null));
  });
  up.on('response', (answer: IncomingMessage) => {
    const status = answer.statusCode ?? 502;
    attempt.status = status;
    attempt.headerTime = performance.now() - ctx.startMs;
    ctx.status = status;
    if (res.destroyed) {
      up.destroy();
      return;
    }
    // The destination's Date and Server pass as they are: this proxy adds neither.
    res.sendDate = false;
    res.writeHead(status, answer.statusMessage, endToEndHeaders(answer.rawHeaders, null));
    answer.on('data', (chunk: Buffer) => {
      ctx.bodyBytesSent += chunk.length;
    });
    answer.pipe(res);
    answer.once('end', () => {
      attempt.responseTime = performance.now() - ctx.startMs;
    });
    answer.once('aborted', () => res.destroy());
  });
  // Expect: 100-continue went to the destination: its 100 is the client's cue.
  up.on('continue', () => {
    if (!res.headersSent && !res.destroyed) res.writeContinue();
  });
  res.once('close', () => {
    if (!res.writableFinished) up.destroy();
  });
  if (requestHasBody(ctx)) {
    const limit = settings.clientMaxBodySize;
    // A body without a declared length is counted as it streams (nginx: "client intended to send
    // too large chunked body"): 413, or the connection closed once the answer has begun.
    if (limit > 0) {
      watchBodySize(req, limit, (received, chunk) => {
        stopped = true;
        req.unpipe(up);
        up.destroy();
        rt.errorLog(settings).log('error', `${ERROR_CATALOG.CLIENT_BODY_TOO_LARGE.text.replace(' body', ' chunked body')}: ${received}+${chunk} bytes${logContext(ctx)}`, ctx.conn.id);
        if (res.headersSent) res.destroy();
        else r.refuse(refused(ERROR_CATALOG.CLIENT_BODY_TOO_LARGE.status, null));
      });
    }
    // client_body_timeout, as for any streamed body: the connection closed, 408 in the access log.
    const stop = watchBodyReads(req, settings.clientBodyTimeout, () => {
      stopped = true;
      if (!res.headersSent) ctx.status = ERROR_CATALOG.CLIENT_BODY_TIMEOUT.status;
      up.destroy();
      if (settings.resetTimedoutConnection) resetConnection(req.socket);
      else res.destroy();
    });
    res.once('close', stop);
  }
  req.pipe(up);
}

/** The 'upgrade' handler for an absolute-form request (`ws://`) to a `forward_proxy` server. */
export function handleForwardUpgrade(rt: ProxyRuntime, req: UpgradeRequest, socket: Socket, head: Buffer, server: ServerConfig): void {
  const f = startRawForward(rt, req, socket, head, server);
  const sentBefore = socket.bytesWritten;
  forwardUpgrade(f, req).catch((err: unknown) => failRequest(rt, f.ctx, rawAnswer(socket, sentBefore), err));
}

async function forwardUpgrade(f: RawForward, req: UpgradeRequest): Promise<void> {
  const { rt, ctx, settings } = f;
  if (headRefused(f, req)) return;
  const target = absoluteTarget(req.url ?? '');
  if (target === null) {
    badTarget(f, req.url ?? '');
    return;
  }
  const upstream = await reachDestination(f, target.dest, 'http');
  if (upstream === null) return;
  upstream.on('error', noop);
  const attempt = ctx.attempts.at(-1)!;
  const upgrade = req.headers.upgrade ?? '';
  const headers = endToEndHeaders(ctx.rawHeaders, target.authority);
  headers.push('Upgrade', upgrade, 'Connection', 'upgrade');
  let text = `${ctx.method} ${target.path} HTTP/1.1\r\n`;
  for (let i = 0; i < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
  upstream.write(`${text}\r\n`, 'latin1');
  const answered = await readResponseHead(upstream, settings.proxyReadTimeout);
  if (answered instanceof ProxyError) {
    upstream.destroy();
    if (!f.socket.destroyed) rt.errorLog(settings).log('error', `${answered.message}${logContext(ctx, `http://${attempt.addr}${target.path}`)}`, ctx.conn.id);
    f.refuse(refused(answered.status, null));
    return;
  }
  const status = answered.status;
  attempt.status = status;
  attempt.headerTime = performance.now() - ctx.startMs;
  ctx.status = status;
  ctx.upgrade = status === 101 ? upgrade.split(',')[0]!.trim().toLowerCase() : null;
  // A WebSocket session's close frames and going away apply only once the destination switched.
  ctx.websocket = ctx.upgrade === 'websocket';
  if (f.socket.destroyed) {
    upstream.destroy();
    return;
  }
  ctx.bytesSent += answered.head.length;
  f.socket.write(answered.head);
  openForwardTunnel(rt, f, upstream, f.takeEarly(), answered.rest);
}

function noop(): void {}

/** The destination's response head (status line and headers) and whatever came after it. */
function readResponseHead(s: Socket, timeoutMs: number): Promise<{ status: number; head: Buffer; rest: Buffer } | ProxyError> {
  return new Promise((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    const timer = timeoutMs > 0 ? setTimeout(() => done(new ProxyError('UPSTREAM_READ_TIMEOUT')), timeoutMs) : null;
    function done(r: { status: number; head: Buffer; rest: Buffer } | ProxyError): void {
      if (timer !== null) clearTimeout(timer);
      s.removeListener('data', onData);
      s.removeListener('end', onEnd);
      s.removeListener('error', onError);
      s.pause();
      resolve(r);
    }
    function onData(chunk: Buffer): void {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > UPGRADE_HEAD_LIMIT) done(new ProxyError('UPSTREAM_HEADER_TOO_BIG'));
        return;
      }
      const m = /^HTTP\/1\.[01] ([1-5][0-9][0-9])[ \r]/.exec(buf.subarray(0, Math.min(end + 2, 64)).toString('latin1'));
      if (m === null) {
        done(new ProxyError('UPSTREAM_INVALID_RESPONSE'));
        return;
      }
      done({ status: Number(m[1]), head: buf.subarray(0, end + 4), rest: buf.subarray(end + 4) });
    }
    function onEnd(): void {
      done(new ProxyError('UPSTREAM_RESET'));
    }
    function onError(err: Error): void {
      done(toProxyError(err, 'UPSTREAM_RESET'));
    }
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('error', onError);
  });
}
