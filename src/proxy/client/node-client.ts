/**
 * The fallback upstream client: Node's `http.request`, where the Node internals the lean client
 * stands on are missing (or `SLUICE_UPSTREAM_CLIENT=node`). Connections are made the lean
 * client's way (upstream-connect.ts: TLS settings, SNI, verification, session reuse), and with
 * `keepalive` kept by one Agent per pool, made on first use and keyed like the lean client's
 * cache (server and TLS identity), so one kind of keep-alive pool is ever in use.
 */
import { Agent, request } from 'node:http';
import type { ClientRequest, ClientRequestArgs, IncomingMessage, RequestOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SockAddr, UpstreamConfig } from '../../config/types.js';
import { ProxyError, toProxyError } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';
import type { PoolConnections, UpstreamPool } from '../../upstream/pool.js';
import { connectUpstream, connectionKey } from './upstream-connect.js';
import { TlsSessions, tlsSetupFailure, upstreamTlsFailure } from './upstream-tls.js';
import type { UpstreamTlsRequest } from './upstream-tls.js';
import type { Exchange, ExchangeOptions, ExchangeResult, UpstreamClient } from './upstream-client.js';

// The contract's types, for importers that predate upstream-client.ts.
export type { Exchange, ExchangeOptions, ExchangeResult, UpstreamMessage } from './upstream-client.js';

/**
 * The head's headers on a ClientRequest, in order, so that this client sends the bytes the lean one
 * does. Node adds headers of its own where the head has none, and removeHeader is what stops it:
 * when the rules left no Connection header (`proxy_set_header Connection ""`) nginx sends none,
 * where Node would add "keep-alive" or "close"; a request without a body has neither
 * Content-Length nor Transfer-Encoding, where Node would add "Content-Length: 0" to a POST.
 * (Headers given to request() as an array are written at once, too early for removeHeader.)
 * The one difference left: a name repeated with other names between goes out as repeated lines
 * at its first place (Node keeps one entry per name); RFC 9110 5.3 gives meaning only to the
 * order among one name's lines, which is kept.
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
  if (!seen.has('content-length') && !seen.has('transfer-encoding')) {
    req.removeHeader('content-length');
    req.removeHeader('transfer-encoding');
  }
}

/** Requests sent on each cached upstream connection, for `keepalive_requests`. */
const requestsOnSocket = new WeakMap<Socket, number>();

/** Where a new connection goes, as http.request hands it on to the agent's createConnection. */
interface UpstreamTarget {
  readonly address: SockAddr;
  readonly tls: UpstreamTlsRequest | null;
  readonly key: string;
  readonly sessions: TlsSessions;
}

type TargetArgs = ClientRequestArgs & { readonly upstreamTarget: UpstreamTarget };

/**
 * A connection from connectUpstream, or its failure through `oncreate` (http.request then emits
 * 'error'), worded as the lean client words it.
 */
function created(s: Socket | Error, oncreate: ((err: Error | null, socket: Duplex) => void) | undefined): Socket | undefined {
  if (!(s instanceof Error)) return s;
  oncreate?.(tlsSetupFailure(s), undefined as unknown as Duplex);
  return undefined;
}

/**
 * With `keepalive`: an Agent whose connections are connectUpstream's, grouped by connectionKey,
 * so that it serves `http://` and `https://` requests to the pool, each from its own connections.
 * Its connections are not half-open capable (Node's client would reuse a half-closed one).
 */
class UpstreamAgent extends Agent {
  override getName(o?: ClientRequestArgs): string {
    return (o as TargetArgs).upstreamTarget.key;
  }

  override createConnection(o: ClientRequestArgs, oncreate?: (err: Error | null, socket: Duplex) => void): Duplex | undefined {
    const t = (o as TargetArgs).upstreamTarget;
    return created(connectUpstream(t.address, t.tls, t.key, t.sessions, false), oncreate);
  }
}

/** What the http.request client keeps for one pool: its agent (with `keepalive`, made on first use) and TLS sessions. */
class NodeConnections implements PoolConnections {
  readonly sessions = new TlsSessions();
  readonly #config: UpstreamConfig;
  #agent: UpstreamAgent | null = null;
  #closed = false;

  constructor(pool: UpstreamPool) {
    this.#config = pool.config;
  }

  /** The keep-alive agent, or null without `keepalive` (a connection per request). */
  agent(): UpstreamAgent | null {
    const c = this.#config;
    if (c.keepalive <= 0 || this.#closed) return null;
    this.#agent ??= new UpstreamAgent({ keepAlive: true, maxFreeSockets: c.keepalive, timeout: c.keepaliveTimeout, scheduling: 'lifo' });
    return this.#agent;
  }

  closeIdle(): void {
    for (const list of Object.values(this.#agent?.freeSockets ?? {})) for (const socket of list ?? []) socket.destroy();
  }

  close(): void {
    this.#closed = true;
    this.#agent?.destroy();
  }
}

function nodeConnections(pool: UpstreamPool): NodeConnections {
  return new NodeConnections(pool);
}

/**
 * One HTTP/1.1 exchange with one upstream server: connect under the connect timeout, send the
 * head and stream the body under the send timeout, wait for the response head under the read
 * timeout. Never throws; every failure is a ProxyError value in the result.
 */
function exchange(o: ExchangeOptions): Exchange {
  const { address } = o.peer.server;
  const conns = o.pool.connectionsOf(nodeConnections);
  const agent = conns.agent();
  const tls = o.tls ?? null;
  const target: UpstreamTarget = { address, tls, key: connectionKey(address, tls), sessions: conns.sessions };
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
  const options: RequestOptions = {
    ...(address.path !== undefined ? { socketPath: address.path } : { host: address.host, port: address.port, family: address.family }),
    method: o.method,
    path: o.head.path,
    setHost: false,
    maxHeaderSize: o.maxHeaderSize,
  };
  // Without an agent every request has a connection of its own, half-open capable for an upgrade.
  const req = request(agent !== null
    ? { ...options, agent, upstreamTarget: target } as TargetArgs
    : { ...options, createConnection: (_: ClientRequestArgs, oncreate) => created(connectUpstream(address, tls, target.key, target.sessions, o.upgrade), oncreate) });
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
    if (agent !== null) {
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

/** `http.request` as the upstream client. */
export const nodeClient: UpstreamClient = { name: 'node', exchange };
