/**
 * undici as the upstream client, for MEASUREMENT ONLY (docs/benchmarks.md, "undici as the
 * upstream client"): `SLUICE_UPSTREAM_CLIENT=undici` routes every HTTP upstream exchange through
 * undici's `Client` and its low-level `dispatch()` handler API, so that its CPU per request and
 * per handshake can be compared with the lean client's (lean-client.ts) in the same benchmark
 * run. It is not a supported production setting: undici is a devDependency (not shipped), is
 * loaded with a dynamic import only when asked for, and where it cannot say what nginx says (the
 * list below) the lean client's behaviour is the one Sluice stands by.
 *
 * Shape. An undici `Client` is one connection (pipelining 1 here, as nginx never pipelines to an
 * upstream), so this file keeps, per pool and per key (server address, TLS identity and
 * proxy_buffer_size, which undici fixes per Client), the `keepalive` cache itself: idle Clients
 * with a live connection, handed out last-in first-out, at most `keepalive` per key as the lean
 * client's ConnectionCache; and Clients without a connection (after `Connection: close`, an
 * upgrade or a failure) kept for reuse, as undici's Pool reuses its Clients. An undici `Pool`
 * was not used: it caps connections in use, not idle ones (nginx's `keepalive N`), and it cannot
 * tell which connection a request went out on, which the session needs (a request that failed on
 * a cached connection gets one more try on a new one, as in nginx; bytes sent and received for
 * $upstream_bytes_*). Connections are made by upstream-connect.ts, as for the other clients (TLS
 * settings, SNI, verification, session reuse), through undici's `connect` option.
 *
 * What a proxy needs around undici, and where undici cannot do what nginx does:
 * - undici refuses the hop-by-hop request headers `Connection`, `Keep-Alive`, `Transfer-Encoding`
 *   and `Upgrade` and writes its own: `Connection: close` becomes `reset: true`, `Upgrade: X` the
 *   `upgrade` option (only on an upgrade request; otherwise it cannot be sent at all), and a body
 *   without Content-Length is chunked by undici. undici always writes a `connection:` line
 *   (`keep-alive`, `close` or `upgrade`), where nginx sends none for `proxy_set_header Connection
 *   ""`; writes `host` first and lower-case; adds `content-length: 0` to a POST/PUT/PATCH without
 *   a body; and cannot send `Expect` (an exchange with one fails with 500).
 * - keepalive_requests is counted here (the request that reaches it goes out with `reset: true`):
 *   undici's own `maxRequestsPerClient` lets one request more through than nginx.
 * - keepalive_timeout is undici's `keepAliveTimeout`, and also its `keepAliveMaxTimeout`: undici
 *   honours a server's `Keep-Alive: timeout=N` hint (less 2 s), where nginx ignores it.
 * - A `100 Continue` nobody asked for fails the exchange (undici: "bad response"); nginx and the
 *   lean client skip it (other 1xx are skipped here too). A response head with bare LF line ends,
 *   which nginx reads, is refused by undici's llhttp build. A HEAD closes its connection after
 *   the response. A streamed body that is all there when undici starts goes out with a
 *   Content-Length rather than chunked.
 * - undici 7 throws an AssertionError nobody can catch from its socket 'end' listener when a
 *   close-delimited response body is held back (backpressure) as the FIN arrives
 *   (nodejs/undici#5360, fixed in undici 8, which needs Node 22.19+).
 * - Timeouts are nginx's: the connect timeout in the connector (TLS handshake included); for a
 *   request without a body, undici's `headersTimeout` as the read timeout (its head timer starts
 *   with the write that sends the whole request); for one with a body, timers of this exchange
 *   (the send timeout between two writes of the request, then the read timeout until the head),
 *   as undici's head timer would run during the upload and not fire while a slow client sends;
 *   between body reads undici's per-request `bodyTimeout` (which, as nginx, does not run while
 *   the relay holds the body back). undici's own timers have a resolution of about a second
 *   above one second.
 *
 * The handler is undici's legacy one (onConnect/onHeaders/onData/onComplete/onUpgrade/onError):
 * the Client calls it directly, where a handler of the newer onRequestStart/onResponse* shape is
 * wrapped in an adapter first (UnwrapHandler), so this is the cheapest way in.
 */
import type { EventEmitter } from 'node:events';
import { IncomingMessage } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { Readable as ReadableType } from 'node:stream';
import type { Client as UndiciClient, Dispatcher } from 'undici';
import type { SockAddr, UpstreamConfig } from '../../config/types.js';
import { ProxyError, toProxyError } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';
import type { PoolConnections, UpstreamPool } from '../../upstream/pool.js';
import { BoundResponse } from './bound-response.js';
import { connectUpstream, connectionKey } from './upstream-connect.js';
import { TlsSessions, tlsSetupFailure, upstreamTlsFailure } from './upstream-tls.js';
import type { UpstreamTlsRequest } from './upstream-tls.js';
import type { Exchange, ExchangeOptions, ExchangeResult, UpstreamClient } from './upstream-client.js';

type UndiciModule = typeof import('undici');

/** The version line this client was written against (package.json pins the devDependency). */
const UNDICI_HINT = 'npm install --save-dev undici@7';

let undici: UndiciModule | null = null;
let loading: Promise<UndiciModule> | null = null;

/**
 * Loads undici once. Rejects with a startup error that says what to do when it is not installed
 * (it is a devDependency: `npm ci --omit=dev` leaves it out).
 */
function loadUndici(): Promise<UndiciModule> {
  loading ??= import('undici').then(
    (m) => {
      undici = m;
      return m;
    },
    (err: unknown) => {
      const code = (err as { code?: string } | null)?.code;
      const why = code === 'ERR_MODULE_NOT_FOUND' ? 'the undici package is not installed' : `undici could not be loaded (${(err as Error).message})`;
      throw new Error(`SLUICE_UPSTREAM_CLIENT=undici: ${why}; it is a measurement-only client (docs/benchmarks.md): ${UNDICI_HINT}, or unset SLUICE_UPSTREAM_CLIENT`, { cause: err });
    },
  );
  return loading;
}

/** Node's rule for folding raw header lines (duplicates joined, Set-Cookie an array), as IncomingMessage uses it. */
type AddHeaderLine = (this: object, field: string, value: string, dest: IncomingHttpHeaders) => void;
const addHeaderLine = (IncomingMessage.prototype as unknown as { _addHeaderLine?: AddHeaderLine })._addHeaderLine;
const HEADER_RULES = { joinDuplicateHeaders: false };

function foldHeaders(raw: readonly string[]): IncomingHttpHeaders {
  const h: IncomingHttpHeaders = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    if (addHeaderLine !== undefined) {
      addHeaderLine.call(HEADER_RULES, name, value, h);
      continue;
    }
    const lower = name.toLowerCase();
    const had = h[lower];
    if (lower === 'set-cookie') h[lower] = [...(had as string[] | undefined ?? []), value];
    else h[lower] = had === undefined ? value : `${had as string}, ${value}`;
  }
  return h;
}

/**
 * undici's raw headers (Buffers, or strings) as Node's rawHeaders strings. undici leaves a value's
 * trailing whitespace in; Node's parser (and nginx) take it off, as RFC 9110 5.5 says it is not
 * part of the value (a `Sec-WebSocket-Accept` with a trailing space is a right one).
 */
function rawStrings(raw: readonly (Buffer | string)[] | null): string[] {
  const out: string[] = new Array<string>(raw?.length ?? 0);
  if (raw === null) return out;
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] as Buffer | string;
    const text = typeof v === 'string' ? v : v.toString('latin1');
    out[i] = (i & 1) === 1 ? withoutTrailingOws(text) : text;
  }
  return out;
}

function withoutTrailingOws(value: string): string {
  let end = value.length;
  for (let c = value.charCodeAt(end - 1); c === 0x20 || c === 0x09; c = value.charCodeAt(end - 1)) end--;
  return end === value.length ? value : value.slice(0, end);
}

/** An upstream response as the relaying code reads it (the UpstreamMessage shape), fed by undici. */
class UndiciResponse extends BoundResponse {
  readonly httpVersion = '1.1';
  #headers: IncomingHttpHeaders | null = null;

  get headers(): IncomingHttpHeaders {
    this.#headers ??= foldHeaders(this.rawHeaders);
    return this.#headers;
  }
}

/**
 * The request body as undici reads it: a stream of our own in front of the client's body, started
 * only when undici first reads it (the connection is up by then, so a connect failure leaves the
 * body untouched for the next server), and destroyed by undici at the end or on failure without
 * taking the client's body (and with it the client's connection) down.
 */
class BodyFeed extends Readable {
  readonly #src: ReadableType;
  readonly #onStart: () => void;
  #started = false;

  constructor(src: ReadableType, onStart: () => void) {
    super();
    this.#src = src;
    this.#onStart = onStart;
  }

  override _read(): void {
    if (this.#started) {
      this.#src.resume();
      return;
    }
    this.#started = true;
    this.#onStart();
    const src = this.#src;
    src.on('data', this.#onData);
    src.once('end', this.#onEnd);
    src.once('error', this.#onError);
  }

  readonly #onData = (chunk: Buffer): void => {
    if (!this.push(chunk)) this.#src.pause();
  };

  readonly #onEnd = (): void => {
    this.#unhook();
    this.push(null);
  };

  readonly #onError = (err: Error): void => {
    this.#unhook();
    this.destroy(err);
  };

  #unhook(): void {
    const src = this.#src;
    src.removeListener('data', this.#onData);
    src.removeListener('end', this.#onEnd);
    src.removeListener('error', this.#onError);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.#started) {
      this.#unhook();
      this.#src.pause();
    }
    cb(err);
  }
}

/** One undici Client (one connection at a time) and the socket it holds now. */
class Conn {
  readonly client: UndiciClient;
  readonly key: string;
  socket: Socket | null = null;
  /** Requests on the current socket, for keepalive_requests. */
  requests = 0;
  /** The exchange the connector makes a connection for. */
  current: UndiciCall | null = null;

  constructor(mod: UndiciModule, origin: string, key: string, conns: UndiciConnections, target: ConnTarget, maxHeaderSize: number) {
    this.key = key;
    const c = conns.config;
    this.client = new mod.Client(origin, {
      connect: (_opts, cb) => connectFor(this, target, conns.sessions, cb as unknown as ConnectCallback),
      pipelining: 1,
      maxHeaderSize,
      // nginx's keepalive_timeout (undici's default applies when the server gives no hint).
      keepAliveTimeout: Math.max(1, Math.trunc(timerDelay(c.keepaliveTimeout))),
      keepAliveMaxTimeout: Math.max(1, Math.trunc(timerDelay(c.keepaliveTimeout))),
      headersTimeout: 0,
      bodyTimeout: 0,
    });
    // undici emits 'error' only when a handler throws; ours do not, but an unheard 'error' would end the process.
    (this.client as unknown as EventEmitter).on('error', noop);
  }

  /** A live connection a request can go out on now. */
  get live(): boolean {
    const s = this.socket;
    return s !== null && !s.destroyed && s.readable && s.writable;
  }
}

type ConnectCallback = (err: Error | null, socket: Socket | null) => void;

interface ConnTarget {
  readonly address: SockAddr;
  readonly tls: UpstreamTlsRequest | null;
}

/**
 * undici's `connect` for one Client: connectUpstream's connection (half-open capable, as a kept
 * connection may carry an upgrade's tunnel later), handed over once it is up (TCP connected, or
 * the TLS handshake done and verified, as nginx counts connect time), under the connect timeout
 * of the exchange that asked for it.
 */
function connectFor(conn: Conn, target: ConnTarget, sessions: TlsSessions, cb: ConnectCallback): void {
  const call = conn.current;
  const s = connectUpstream(target.address, target.tls, conn.key, sessions, true);
  if (s instanceof Error) {
    cb(tlsSetupFailure(s), null);
    return;
  }
  const upEvent = target.tls !== null ? 'secureConnect' : 'connect';
  let timer: NodeJS.Timeout | null = null;
  const done = (err: Error | null): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    s.removeListener(upEvent, onUp);
    s.removeListener('error', onFail);
    if (err !== null) {
      s.on('error', noop);
      s.destroy();
      cb(err, null);
      return;
    }
    conn.socket = s;
    conn.requests = 0;
    s.once('close', () => {
      if (conn.socket === s) conn.socket = null;
    });
    cb(null, s);
  };
  const onUp = (): void => done(null);
  const onFail = (err: Error): void => done(err);
  s.once(upEvent, onUp);
  s.once('error', onFail);
  timer = setTimeout(() => done(new ProxyError('UPSTREAM_CONNECT_TIMEOUT')), timerDelay(call?.connectTimeout ?? 60_000));
}

/** Clients kept without a connection, per key, for reuse (undici's Pool keeps its Clients too). */
const SPARE_MAX = 64;

/** What the undici client keeps for one pool: Clients by key, and TLS sessions. */
class UndiciConnections implements PoolConnections {
  readonly sessions = new TlsSessions();
  readonly config: UpstreamConfig;
  readonly #live = new Map<string, Conn[]>();
  readonly #spare = new Map<string, Conn[]>();
  #closed = false;

  constructor(pool: UpstreamPool) {
    this.config = pool.config;
  }

  /** A Client for `key`: one with an idle live connection first (last in, first out), else one without. */
  take(key: string): Conn | null {
    const live = this.#live.get(key);
    if (live !== undefined) {
      for (let c = live.pop(); c !== undefined; c = live.pop()) {
        if (c.live) {
          if (live.length === 0) this.#live.delete(key);
          return c;
        }
        this.#keepSpare(c);
      }
      this.#live.delete(key);
    }
    const spare = this.#spare.get(key);
    const c = spare?.pop() ?? null;
    if (spare?.length === 0) this.#spare.delete(key);
    return c;
  }

  /** The exchange on `c` is over: keep the Client (with its connection while `keepalive` allows), or close it. */
  put(c: Conn, reusable: boolean): void {
    if (c.client.destroyed || c.client.closed || this.#closed) {
      void c.client.destroy().catch(noop);
      return;
    }
    if (reusable && c.live && this.config.keepalive > 0) {
      let list = this.#live.get(c.key);
      if (list === undefined) {
        list = [];
        this.#live.set(c.key, list);
      }
      if (list.length < this.config.keepalive) {
        list.push(c);
        return;
      }
    }
    c.socket?.destroy();
    this.#keepSpare(c);
  }

  #keepSpare(c: Conn): void {
    let list = this.#spare.get(c.key);
    if (list === undefined) {
      list = [];
      this.#spare.set(c.key, list);
    }
    if (list.length < SPARE_MAX) list.push(c);
    else void c.client.destroy().catch(noop);
  }

  closeIdle(): void {
    for (const list of this.#live.values()) for (const c of list) void c.client.destroy().catch(noop);
    for (const list of this.#spare.values()) for (const c of list) void c.client.destroy().catch(noop);
    this.#live.clear();
    this.#spare.clear();
  }

  close(): void {
    this.#closed = true;
    this.closeIdle();
  }
}

function undiciConnections(pool: UpstreamPool): UndiciConnections {
  return new UndiciConnections(pool);
}

/** "Connection: close" (or a list with the close token). */
function hasClose(value: string): boolean {
  return /(?:^|,)\s*close\s*(?:,|$)/i.test(value);
}

/** The request head as undici takes it: hop-by-hop headers turned into its options. */
interface UndiciHead {
  readonly headers: string[];
  readonly reset: boolean;
  readonly upgrade: string | null;
}

function undiciHead(o: ExchangeOptions): UndiciHead {
  const flat = o.head.headers;
  const headers: string[] = [];
  let reset = false;
  let upgrade: string | null = null;
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const value = flat[i + 1] as string;
    switch (name.length) {
      case 7:
        if (name.toLowerCase() === 'upgrade') {
          if (o.upgrade) upgrade = value;
          continue;
        }
        break;
      case 10: {
        const lower = name.toLowerCase();
        if (lower === 'connection') {
          if (hasClose(value)) reset = true;
          continue;
        }
        if (lower === 'keep-alive') continue;
        break;
      }
      case 17:
        if (name.toLowerCase() === 'transfer-encoding') continue;
        break;
    }
    headers.push(name, value);
  }
  return { headers, reset, upgrade };
}

const EMPTY = Buffer.alloc(0);

function noop(): void {}

/** undici's failures in nginx's words; `connected`: the request had gone out on a connection. */
function proxyErrorOf(err: Error, connected: boolean, tls: boolean): ProxyError {
  if (err instanceof ProxyError) return err;
  const e = err as Error & { code?: string };
  // undici's llhttp errors carry no code (it looks the number up in a name-to-number table).
  if (e.name === 'HTTPParserError') return new ProxyError('UPSTREAM_INVALID_RESPONSE', undefined, { cause: err });
  switch (e.code) {
    case 'UND_ERR_HEADERS_OVERFLOW':
      return new ProxyError('UPSTREAM_HEADER_TOO_BIG', undefined, { cause: err });
    case 'UND_ERR_BODY_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
      return new ProxyError('UPSTREAM_READ_TIMEOUT', undefined, { cause: err });
    case 'UND_ERR_INVALID_ARG':
    case 'UND_ERR_NOT_SUPPORTED':
      // A head undici will not send (an Expect header, a header value it refuses).
      return new ProxyError('INTERNAL', `undici refused the request: ${e.message}`, { cause: err });
    case 'UND_ERR_SOCKET':
      if (e.message === 'bad upgrade') return new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE', undefined, { cause: err });
      if (e.message === 'bad response') return new ProxyError('UPSTREAM_INVALID_RESPONSE', 'unexpected 1xx', { cause: err });
      return new ProxyError('UPSTREAM_RESET', undefined, { cause: err });
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_ABORTED':
    case 'UND_ERR_INFO':
    case 'UND_ERR_DESTROYED':
    case 'UND_ERR_CLOSED':
      return new ProxyError('UPSTREAM_RESET', undefined, { cause: err });
  }
  if (connected) return toProxyError(err, 'UPSTREAM_RESET');
  return (tls ? upstreamTlsFailure(err) : null) ?? toProxyError(err, 'UPSTREAM_CONNECT_FAILED');
}

type TimerCode = 'UPSTREAM_SEND_TIMEOUT' | 'UPSTREAM_READ_TIMEOUT';

function callTimedOut(call: UndiciCall, code: TimerCode): void {
  call.timedOut(code);
}

/** One exchange: an undici dispatch on one Client, and its handler. */
class UndiciCall implements Exchange {
  readonly result: Promise<ExchangeResult>;
  readonly connectTimeout: number;
  readonly #o: ExchangeOptions;
  readonly #conns: UndiciConnections;
  readonly #conn: Conn;
  readonly #started = performance.now();
  #resolve!: (r: ExchangeResult) => void;
  #settled = false;
  #connected = false;
  #reused: boolean;
  #done = false;
  #aborting = false;
  #reusable: boolean;
  #abortFn: ((err?: Error) => void) | null = null;
  #resume: (() => void) | null = null;
  #res: UndiciResponse | null = null;
  /** The send timer (between writes of the request), then the read timer (until the response head). */
  #timer: NodeJS.Timeout | null = null;
  #socket: Socket | null = null;
  #bytesRead = 0;
  #bytesWritten = 0;

  constructor(o: ExchangeOptions, conns: UndiciConnections, conn: Conn) {
    this.#o = o;
    this.#conns = conns;
    this.#conn = conn;
    this.connectTimeout = o.connectTimeout;
    this.result = new Promise<ExchangeResult>((r) => (this.#resolve = r));
    this.#reused = conn.live;
    conn.current = this;
    const head = undiciHead(o);
    const keepalive = conns.config.keepalive > 0;
    // keepalive_requests: the request that reaches it is the connection's last (nginx closes it after the response).
    const last = keepalive && (this.#reused ? conn.requests : 0) + 1 >= conns.config.keepaliveRequests;
    const reset = head.reset || !keepalive || last;
    this.#reusable = !reset && head.upgrade === null;
    const readTimeout = Math.trunc(timerDelay(o.readTimeout));
    const opts: Dispatcher.DispatchOptions = {
      path: o.head.path,
      method: o.method as Dispatcher.HttpMethod,
      headers: head.headers,
      body: o.body === null ? null : new BodyFeed(o.body, () => o.onBodyStart?.()),
      // Without a body the request is sent in the write that starts undici's head timer, which is
      // then nginx's read timeout; with one, this exchange times the send and the wait itself.
      headersTimeout: o.body === null ? readTimeout : 0,
      bodyTimeout: readTimeout,
      ...(head.upgrade !== null ? { upgrade: head.upgrade } : {}),
      ...(reset ? { reset: true } : {}),
    };
    conn.client.dispatch(opts, this as unknown as Dispatcher.DispatchHandler);
  }

  abort(): void {
    this.#aborting = true;
    const fn = this.#abortFn;
    if (fn !== null) fn(new ProxyError('UPSTREAM_RESET'));
    else if (!this.#done) {
      // Not on a connection yet (connecting): the Client goes, with the connection it was making.
      this.#done = true;
      this.#clearTimer();
      void this.#conn.client.destroy(new ProxyError('UPSTREAM_RESET')).catch(noop);
    }
    this.#settle({ kind: 'error', error: new ProxyError('UPSTREAM_RESET'), connected: this.#connected, reused: this.#reused });
    const res = this.#res;
    if (res !== null && !res.complete && !res.destroyed) res.destroy();
  }

  /** @internal the relay wants more of the body */
  resumeBody(): void {
    this.#resume?.();
  }

  #settle(r: ExchangeResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(r);
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #arm(code: TimerCode, ms: number): void {
    this.#clearTimer();
    this.#timer = setTimeout(callTimedOut, timerDelay(ms), this, code);
  }

  /** @internal the send or read timer fired */
  timedOut(code: TimerCode): void {
    this.#timer = null;
    this.#abortFn?.(new ProxyError(code));
  }

  // undici's handler (legacy shape, called directly by the Client).

  onConnect(abort: (err?: Error) => void): void {
    this.#abortFn = abort;
    if (this.#aborting) {
      abort(new ProxyError('UPSTREAM_RESET'));
      return;
    }
    const o = this.#o;
    const conn = this.#conn;
    this.#connected = true;
    conn.requests++;
    o.attempt.connectTime = performance.now() - this.#started;
    const s = conn.socket;
    this.#socket = s;
    if (s !== null) {
      this.#bytesRead = s.bytesRead;
      this.#bytesWritten = s.bytesWritten;
    }
    if (o.body !== null) this.#arm('UPSTREAM_SEND_TIMEOUT', o.sendTimeout);
  }

  onBodySent(): void {
    if (this.#timer !== null) this.#timer.refresh();
  }

  onRequestSent(): void {
    if (this.#res === null && this.#o.body !== null) this.#arm('UPSTREAM_READ_TIMEOUT', this.#o.readTimeout);
    else this.#clearTimer();
  }

  onHeaders(status: number, raw: Buffer[], resume: () => void, statusText: string): boolean {
    // 1xx other than 101: informational, the real response follows.
    if (status < 200) return true;
    this.#clearTimer();
    this.#resume = resume;
    const res = new UndiciResponse(this, status, statusText, rawStrings(raw));
    this.#res = res;
    const o = this.#o;
    o.attempt.status = status;
    o.attempt.headerTime = performance.now() - this.#started;
    this.#settle({ kind: 'response', res });
    return true;
  }

  onData(chunk: Buffer): boolean {
    const res = this.#res;
    if (res === null || res.destroyed) return true;
    // false pauses undici's parser until _read() resumes it; its body timer does not fire meanwhile.
    return res.push(chunk);
  }

  onComplete(): void {
    const res = this.#res;
    this.#finish(true);
    if (res !== null) {
      res.complete = true;
      res.detach();
      res.push(null);
    }
  }

  onUpgrade(status: number, raw: Buffer[] | string[] | null, socket: Socket): void {
    this.#clearTimer();
    const o = this.#o;
    o.attempt.status = status;
    o.attempt.headerTime = performance.now() - this.#started;
    const res = new UndiciResponse(this, status, '', rawStrings(raw));
    res.complete = true;
    res.detach();
    this.#res = res;
    // undici put what came after the head back into the socket's buffer: the tunnel is given it as `head`.
    const head = socket.readableLength > 0 ? (socket.read() as Buffer | null) ?? EMPTY : EMPTY;
    socket.on('error', noop);
    socket.pause();
    this.#finish(false);
    // The connection is the tunnel's now, no longer the Client's.
    if (this.#conn.socket === socket) this.#conn.socket = null;
    this.#settle({ kind: 'upgrade', res, socket, head });
  }

  onError(err: Error): void {
    this.#clearTimer();
    const error = proxyErrorOf(err, this.#connected, this.#o.tls != null);
    this.#finish(false);
    if (!this.#settled) {
      this.#settle({ kind: 'error', error, connected: this.#connected, reused: this.#reused });
      return;
    }
    const res = this.#res;
    if (res !== null && !res.complete) {
      if (!this.#aborting) this.#o.onLateError(error);
      if (!res.destroyed) res.destroy();
    }
  }

  /** The exchange is over: bytes counted, the Client back to the pool (after undici has decided the connection's fate). */
  #finish(ok: boolean): void {
    if (this.#done) return;
    this.#done = true;
    this.#clearTimer();
    const s = this.#socket;
    if (s !== null) {
      const a = this.#o.attempt;
      a.bytesSent = s.bytesWritten - this.#bytesWritten;
      a.bytesReceived = s.bytesRead - this.#bytesRead;
    }
    const conn = this.#conn;
    conn.current = null;
    // undici closes a connection it will not reuse right after this callback returns.
    queueMicrotask(() => this.#conns.put(conn, ok && this.#reusable));
  }
}

/** An exchange that could not start (undici not loaded). */
function failedExchange(error: ProxyError): Exchange {
  return { result: Promise.resolve({ kind: 'error', error, connected: false, reused: false }), abort: noop };
}

function originOf(address: SockAddr): string {
  if (address.path !== undefined) return 'http://localhost';
  const host = address.host.includes(':') ? `[${address.host}]` : address.host;
  return `http://${host}:${address.port}`;
}

function undiciExchange(o: ExchangeOptions, mod: UndiciModule): Exchange {
  const conns = o.pool.connectionsOf(undiciConnections);
  const tls = o.tls ?? null;
  const address = o.peer.server.address;
  const key = `${connectionKey(address, tls)}|${o.maxHeaderSize}`;
  const conn = conns.take(key) ?? new Conn(mod, originOf(address), key, conns, { address, tls }, o.maxHeaderSize);
  return new UndiciCall(o, conns, conn);
}

/** Waits for undici to load (the server awaits `ready()` before it listens, so this is a fallback). */
function deferredExchange(o: ExchangeOptions): Exchange {
  let inner: Exchange | null = null;
  let aborted = false;
  const result = loadUndici().then(
    (mod) => {
      inner = undiciExchange(o, mod);
      if (aborted) inner.abort();
      return inner.result;
    },
    (err: unknown) => failedExchange(new ProxyError('INTERNAL', (err as Error).message)).result,
  );
  return {
    result,
    abort: () => {
      aborted = true;
      inner?.abort();
    },
  };
}

/** undici as the upstream client (measurement only; see the header). */
export const undiciClient: UpstreamClient = {
  name: 'undici',
  exchange: (o) => (undici !== null ? undiciExchange(o, undici) : deferredExchange(o)),
  ready: async () => {
    await loadUndici();
  },
};
