/**
 * WebSockets over HTTP/2 (RFC 8441), which nginx does not do. The client sends an extended CONNECT
 * (`:method CONNECT`, `:protocol websocket`, allowed by our SETTINGS_ENABLE_CONNECT_PROTOCOL);
 * the upstream gets the ordinary HTTP/1.1 upgrade it expects, with the same forwarded headers as an
 * HTTP/1.1 WebSocket request and a fresh Sec-WebSocket-Key (RFC 8441 5: HTTP/2 has none), whose
 * Sec-WebSocket-Accept is checked. A 101 becomes a 200 on the client's stream (without the
 * HTTP/1.1-only Upgrade, Connection and Sec-WebSocket-Accept), and the stream and the upstream's
 * socket become a tunnel (tunnel/h2-tunnel.ts: flow control both ways, END_STREAM <-> FIN,
 * RST_STREAM <-> reset).
 */
import { serverSignature } from '../answer/server-tokens.js';
import { randomBytes } from 'node:crypto';
import { constants as h2 } from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { AdminHandler, Settings } from '../../config/types.js';
import { ProxyError } from '../../core/errors.js';
import type { RouteDecision } from '../../routing/router.js';
import type { Peer } from '../../upstream/peer.js';
import { acceptKey } from '../../websocket/accept-key.js';
import { errorResponse } from '../answer/respond.js';
import type { StreamedResponse } from '../answer/streamed.js';
import type { UpstreamMessage } from '../client/node-client.js';
import { logContext } from '../context/log-context.js';
import { RequestContext } from '../context/request-context.js';
import { addOwnHeaders, rememberSent } from '../headers/response-headers.js';
import type { ForwardMode } from '../headers/upstream-request.js';
import type { FrontEnd } from '../session/front-end.js';
import type { SwitchedExchange } from '../session/peer-exchange.js';
import { upstreamSocket } from '../client/held-upstream.js';
import type { ProxyRoute } from '../session/proxy-route.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { ProxySession } from '../session/session.js';
import { openH2Tunnel } from '../tunnel/h2-tunnel.js';
import { H2Front } from './h2-front.js';
import { logTunnelEnd, tunnelGuardrails } from './tunnel-end.js';
import type { H2Request } from './h2-messages.js';
import { h2ResponseHeaders, headerBytes } from './h2-messages.js';

const WEBSOCKET: ForwardMode = Object.freeze({ upgrade: 'websocket', upgradeValue: 'websocket' });

/** Response fields that only mean something in an HTTP/1.1 upgrade (RFC 8441 5). */
const HTTP1_UPGRADE_ONLY = new Set(['sec-websocket-accept']);

/**
 * The request the upstream gets for an extended CONNECT: GET with the client's path and headers,
 * a fresh Sec-WebSocket-Key, and Upgrade/Connection as an HTTP/1.1 client would send them (so
 * `$http_upgrade` reads "websocket" as for an HTTP/1.1 WebSocket request).
 */
function upgradeContext(rt: ProxyRuntime, socket: TLSSocket, m: H2Request): { ctx: RequestContext; key: string } {
  const key = randomBytes(16).toString('base64');
  const raw: string[] = [];
  for (let i = 0; i < m.rawHeaders.length; i += 2) {
    if (m.rawHeaders[i] === 'sec-websocket-key') continue;
    raw.push(m.rawHeaders[i] as string, m.rawHeaders[i + 1] as string);
  }
  raw.push('sec-websocket-key', key);
  const headers = { ...m.headers, 'sec-websocket-key': key, upgrade: 'websocket', connection: 'upgrade' };
  delete headers['transfer-encoding'];
  const ctx = new RequestContext(rt.connInfo(socket), 'GET', m.path, '2.0', headers, raw, performance.now());
  ctx.upgrade = 'websocket';
  ctx.websocket = true;
  ctx.bytesReceived = headerBytes(m.rawHeaders);
  return { ctx, key };
}

/** RFC 6455 4.1 as the proxy checks it for its own key: a 101 to websocket with the right accept. */
function checkSwitch(key: string, res: UpstreamMessage): ProxyError | null {
  const got = (res.headers.upgrade ?? '').split(',')[0]?.trim().toLowerCase() ?? '';
  if (got !== 'websocket') return new ProxyError('UPSTREAM_UPGRADE_MISMATCH', `asked "websocket", got "${got}"`);
  if (res.headers['sec-websocket-accept'] !== acceptKey(key)) return new ProxyError('UPSTREAM_BAD_ACCEPT');
  return null;
}

/** An extended CONNECT on a client stream. */
export function handleH2WebSocket(rt: ProxyRuntime, socket: TLSSocket, stream: ServerHttp2Stream, m: H2Request): void {
  const { ctx, key } = upgradeContext(rt, socket, m);
  let finished = false;
  const finish = (): void => {
    if (finished) return;
    finished = true;
    ctx.endMs = performance.now();
    rt.finish(ctx);
  };
  stream.once('close', () => {
    if (ctx.tunnelStartMs !== 0) return;
    if (ctx.status === 0) ctx.status = 499;
    finish();
  });
  new ProxySession(rt, ctx, new H2ConnectFront(rt, ctx, socket, stream, m.protocol ?? '', key, finish)).start();
}

/** An RFC 8441 WebSocket: the upstream gets an HTTP/1.1 upgrade with a key of Sluice's own. */
export class H2ConnectFront extends H2Front implements FrontEnd {
  readonly mode: ForwardMode = WEBSOCKET;
  /** The client is answered 200 (RFC 8441 5); add_header and the filters see the 101 they relay. */
  readonly switchedStatus = 200;
  readonly #protocol: string;
  readonly #key: string;
  readonly #finish: () => void;

  constructor(rt: ProxyRuntime, ctx: RequestContext, socket: TLSSocket, stream: ServerHttp2Stream, protocol: string, key: string, finish: () => void) {
    super(rt, ctx, socket, stream);
    this.#protocol = protocol;
    this.#key = key;
    this.#finish = finish;
  }

  route(): RouteDecision | null {
    const { rt, ctx } = this;
    if (this.#protocol.toLowerCase() !== 'websocket') {
      rt.routesFor(this.socket).route(ctx);
      // RFC 8441 4: other protocols are not something this proxy can carry to an HTTP/1.1 upstream.
      rt.errorLog(ctx.settings).log('info', `client sent extended CONNECT for unsupported protocol "${this.#protocol}"${logContext(ctx)}`, ctx.conn.id);
      this.send(errorResponse(501, ctx.settings, ctx, rt.vars));
      return null;
    }
    return this.decide();
  }

  override serveAdmin(_handler: AdminHandler, settings: Settings): undefined {
    // A status location is no WebSocket endpoint.
    this.send(errorResponse(405, settings, this.ctx, this.rt.vars));
    return undefined;
  }

  override sendStreamed(_s: ProxySession, r: StreamedResponse): void {
    // A file is no WebSocket endpoint either (the stream asked for a tunnel, not a body).
    r.body?.destroy();
    this.send(errorResponse(405, this.ctx.settings, this.ctx, this.rt.vars));
  }

  start(s: ProxySession): null {
    const { ctx, stream } = this;
    stream.once('close', () => {
      if (ctx.tunnelStartMs !== 0 || ctx.status !== 0) return;
      s.clientLeft();
    });
    return null;
  }

  checkSwitch(res: UpstreamMessage): ProxyError | null {
    return checkSwitch(this.#key, res);
  }

  tunnel(s: ProxySession, x: SwitchedExchange, peer: Peer): void {
    openTunnel(this.rt, this.ctx, s.route as ProxyRoute, peer, this.stream, x, this.#finish);
  }

  left(): void {
    this.#finish();
  }
}

function openTunnel(
  rt: ProxyRuntime, ctx: RequestContext, route: ProxyRoute, peer: Peer, stream: ServerHttp2Stream,
  switched: SwitchedExchange, finish: () => void,
): void {
  const { head: upstreamHead, release } = switched;
  const upstream = upstreamSocket(switched.socket);
  const flat = switched.headers.filter((_, i, a) => {
    const name = (i % 2 === 0 ? a[i] : a[i - 1]) as string;
    return !HTTP1_UPGRADE_ONLY.has(name.toLowerCase());
  });
  addOwnHeaders(flat, null, serverSignature(route.settings));
  rememberSent(ctx, flat);
  if (stream.destroyed || stream.closed) {
    upstream.destroy();
    release();
    finish();
    return;
  }
  try {
    stream.respond(h2ResponseHeaders(200, flat));
  } catch (err) {
    upstream.destroy();
    release();
    rt.errorLog(route.settings).log('error', `cannot relay upstream response: ${(err as Error).message}${logContext(ctx)}`, ctx.conn.id);
    stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    return;
  }
  ctx.bytesSent += headerBytes(flat);
  ctx.tunnelStartMs = performance.now();
  ctx.tunnelBodyStarts();
  ctx.compactForTunnel(rt.tunnelKeep(ctx.settings));
  const tunnel = openH2Tunnel(stream, upstream, ctx, {
    idleTimeout: route.settings.proxyReadTimeout,
    onEnd: {
      tunnelEnded(t, reason) {
        release();
        rt.tunnelClosed(t);
        logTunnelEnd(rt, route, peer, ctx, t, reason);
        finish();
      },
    },
    // Server bytes that came with the 101 go first.
    upstreamHead,
    guardrails: tunnelGuardrails(route, ctx),
  });
  rt.tunnelOpened(tunnel);
}
