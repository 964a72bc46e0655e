import { request } from 'node:http';
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ProxyError, toProxyError } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';
import type { Peer } from '../../upstream/peer.js';
import type { UpstreamPool } from '../../upstream/pool.js';
import type { UpstreamAttempt } from '../context/request-context.js';
import type { UpstreamRequestHead } from '../headers/upstream-request.js';
import { transportOptions, upstreamTlsFailure } from './upstream-tls.js';
import type { UpstreamTlsRequest } from './upstream-tls.js';

/**
 * An upstream response as the relaying code reads it: Node's IncomingMessage (http.request) or
 * Sluice's UpstreamResponse (client/lean-client.ts) — status, headers, a Readable body, 'aborted'.
 */
export type UpstreamMessage = Readable & {
  readonly statusCode?: number | undefined;
  readonly statusMessage?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly complete: boolean;
};

export type ExchangeResult =
  | { readonly kind: 'response'; readonly res: UpstreamMessage }
  | { readonly kind: 'upgrade'; readonly res: UpstreamMessage; readonly socket: Socket; readonly head: Buffer }
  /** `reused`: the request went out on a cached keepalive connection rather than a new one. */
  | { readonly kind: 'error'; readonly error: ProxyError; readonly connected: boolean; readonly reused: boolean };

/**
 * The head's headers on a ClientRequest, in order (a repeated name goes out as repeated lines at
 * its first place). When the rules left no Connection header (`proxy_set_header Connection ""`)
 * nginx sends none: removeHeader keeps Node from adding its own "keep-alive" or "close", so this
 * client sends the bytes the lean one does. (Headers given to request() as an array are written
 * at once, too early for removeHeader.)
 */
function setHeaders(req: ClientRequest, flat: readonly string[]): void {
  const seen = new Map<string, { name: string; values: string[] }>();
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const lower = name.toLowerCase();
    const entry = seen.get(lower);
    if (entry === undefined) seen.set(lower, { name, values: [flat[i + 1] as string] });
    else entry.values.push(flat[i + 1] as string);
  }
  for (const { name, values } of seen.values()) req.setHeader(name, values.length === 1 ? values[0] as string : values);
  if (!seen.has('connection')) req.removeHeader('connection');
}

/** Requests sent on each cached upstream connection, for `keepalive_requests`. */
const requestsOnSocket = new WeakMap<Socket, number>();

export interface ExchangeOptions {
  readonly peer: Peer;
  readonly pool: UpstreamPool;
  readonly method: string;
  readonly head: UpstreamRequestHead;
  /** The client's request body, piped only once the connection is up (so a connect failure can retry). */
  readonly body: Readable | null;
  /** Asking for an upgrade: the socket is opened half-open capable for the tunnel. */
  readonly upgrade: boolean;
  /** For `proxy_pass https://`: the TLS settings and name of this request. */
  readonly tls?: UpstreamTlsRequest | null;
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
  readonly attempt: UpstreamAttempt;
  /** Failures after the result was delivered (a response body cut short). */
  readonly onLateError: (err: ProxyError) => void;
  /** Called when the request body starts flowing upstream. */
  readonly onBodyStart?: () => void;
}

export interface Exchange {
  readonly result: Promise<ExchangeResult>;
  abort(): void;
}

/**
 * One HTTP/1.1 exchange with one upstream server: connect under the connect timeout, send the
 * head and stream the body under the send timeout, wait for the response head under the read
 * timeout. Never throws; every failure is a ProxyError value in the result.
 */
export function exchange(o: ExchangeOptions): Exchange {
  const { address } = o.peer.server;
  const started = performance.now();
  let settled = false;
  let connected = false;
  let reused = false;
  let resolve!: (r: ExchangeResult) => void;
  const result = new Promise<ExchangeResult>((r) => (resolve = r));
  const settle = (r: ExchangeResult): void => {
    if (settled) return;
    settled = true;
    resolve(r);
  };
  const req = request({
    host: address.host,
    port: address.port,
    family: address.family,
    method: o.method,
    path: o.head.path,
    setHost: false,
    ...transportOptions(o.pool, address, o.upgrade, o.tls ?? null),
  });
  setHeaders(req, o.head.headers);
  let connectTimer: NodeJS.Timeout | null = null;

  const onConnected = (socket: Socket): void => {
    connected = true;
    if (connectTimer) clearTimeout(connectTimer);
    connectTimer = null;
    o.attempt.connectTime = performance.now() - started;
    socket.setNoDelay(true);
    req.setTimeout(timerDelay(o.sendTimeout));
    if (o.body) {
      o.onBodyStart?.();
      o.body.pipe(req);
    } else req.end();
  };

  req.on('socket', (socket: Socket) => {
    if (o.pool.agent) {
      // keepalive_requests: the connection serves this many requests, then closes after the last
      // response instead of going back to the cache (nginx closes it the same way).
      const n = (requestsOnSocket.get(socket) ?? 0) + 1;
      requestsOnSocket.set(socket, n);
      if (n >= o.pool.config.keepaliveRequests) req.shouldKeepAlive = false;
    }
    if (socket.connecting) {
      connectTimer = setTimeout(() => req.destroy(new ProxyError('UPSTREAM_CONNECT_TIMEOUT')), timerDelay(o.connectTimeout));
      // Over TLS the connection is up once the handshake is done (nginx's connect time includes it).
      socket.once(o.tls ? 'secureConnect' : 'connect', () => onConnected(socket));
    } else {
      reused = true;
      onConnected(socket);
    }
  });
  req.on('finish', () => {
    if (!settled) req.setTimeout(timerDelay(o.readTimeout));
  });
  req.on('timeout', () => {
    const code = !connected ? 'UPSTREAM_CONNECT_TIMEOUT' : req.writableFinished ? 'UPSTREAM_READ_TIMEOUT' : 'UPSTREAM_SEND_TIMEOUT';
    req.destroy(new ProxyError(code));
  });
  req.on('response', (res: IncomingMessage) => {
    o.attempt.status = res.statusCode ?? 0;
    o.attempt.headerTime = performance.now() - started;
    // A refused upgrade's connection ends with its response, as nginx closes it (the lean client
    // never reuses it either): Node takes `Connection: upgrade` for keep-alive and would leave
    // the socket open for good.
    if (o.upgrade) {
      const socket = req.socket;
      res.once('end', () => socket?.end());
    }
    // While the relay holds the body back (the client is slower), the read timer stops: nginx
    // times a read only while it waits for the upstream; a client that does not read is
    // send_timeout's business.
    // (While the request body is still going out, the send timer stays.)
    res.on('pause', () => {
      if (req.writableFinished) req.setTimeout(0);
    });
    res.on('resume', () => {
      if (req.writableFinished && !res.complete) req.setTimeout(timerDelay(o.readTimeout));
    });
    settle({ kind: 'response', res });
  });
  req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
    o.attempt.status = res.statusCode ?? 0;
    o.attempt.headerTime = performance.now() - started;
    req.setTimeout(0);
    socket.setTimeout(0);
    settle({ kind: 'upgrade', res, socket, head });
  });
  req.on('error', (err: Error) => {
    if (connectTimer) clearTimeout(connectTimer);
    connectTimer = null;
    const e = (o.tls && !connected ? upstreamTlsFailure(err) : null)
      ?? (connected ? toProxyError(err, 'UPSTREAM_RESET') : toProxyError(err, 'UPSTREAM_CONNECT_FAILED'));
    if (settled) o.onLateError(e);
    else settle({ kind: 'error', error: e, connected, reused });
  });
  req.on('close', () => {
    if (connectTimer) clearTimeout(connectTimer);
    const s = req.socket;
    if (s) {
      o.attempt.bytesSent = s.bytesWritten;
      o.attempt.bytesReceived = s.bytesRead;
    }
    // Built only when it is the answer: an Error captures a stack trace, and 'close' ends every exchange.
    if (!settled) settle({ kind: 'error', error: new ProxyError('UPSTREAM_RESET'), connected, reused });
  });
  return {
    result,
    abort: () => {
      if (o.body) o.body.unpipe(req);
      req.destroy();
    },
  };
}
