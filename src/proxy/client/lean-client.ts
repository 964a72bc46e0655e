/**
 * Sluice's own HTTP/1.1 client, in place of `http.request` and its Agent, for plain-TCP and TLS
 * upstreams alike: the request head is written in one piece, exactly as built (no header Node
 * would add), the response is parsed by llhttp (Node's own parser, the one `http` uses, through
 * `_http_common`), and keep-alive connections live in one {@link ConnectionCache} per pool, keyed
 * by server and TLS identity. A proxied request costs about half the CPU it did through
 * ClientRequest, Agent and IncomingMessage (docs/benchmarks.md, "HTTP floor"). Where Node's
 * parser cannot be loaded, registry.ts serves every upstream with `http.request` (node-client.ts).
 *
 * The exchange's contract is {@link UpstreamClient}'s (upstream-client.ts).
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { IncomingMessage } from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable as ReadableType } from 'node:stream';
import { ProxyError, toProxyError } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';
import { ConnectionCache, idleSocketEvent, routeIdleEvents } from '../../upstream/connection-cache.js';
import { armSocketTimer, dropSocketTimers, touchSocketTimer } from '../../upstream/socket-timer.js';
import type { PoolConnections, UpstreamPool } from '../../upstream/pool.js';
import { BARE_LF_FLAGS } from '../front/bare-lf.js';
import { BoundResponse } from './bound-response.js';
import type { BodySource } from './bound-response.js';
import { connectUpstream, connectionKey } from './upstream-connect.js';
import { nativeExchange } from './native-exchange.js';
import type { LeanParts } from './native-exchange.js';
import { TlsSessions, tlsSetupFailure, upstreamTlsFailure } from './upstream-tls.js';
import type { Exchange, ExchangeOptions, ExchangeResult, UpstreamClient } from './upstream-client.js';

interface HttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  finish(): number | (Error & { code?: string }) | undefined;
  /** Deletes the C++ parser, which otherwise stays alive through a global handle. */
  close(): void;
  [key: number]: unknown;
  [kCall]?: ParserSink | null;
}

/** What the parser's callbacks reach: an exchange, or a 101 being judged (switchedResponse). */
interface ParserSink {
  moreHeaders(headers: string[]): void;
  head(major: number, minor: number, headers: string[] | undefined, status: number, message: string, upgrade: boolean, keepAlive: boolean): number;
  body(chunk: Buffer): void;
  messageComplete(): void;
}

interface HttpParserClass {
  new (): HttpParser;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
  readonly kLenientNone: number;
}

/** Node's own way of folding raw header lines into a headers object (duplicates joined, Set-Cookie an array). */
type AddHeaderLine = (this: object, field: string, value: string, dest: IncomingHttpHeaders) => void;

/** The Node internals the lean client stands on, checked together once at load. */
interface LeanInternals {
  readonly HTTPParser: HttpParserClass;
  readonly addHeaderLine: AddHeaderLine;
}

const kCall = Symbol('sluice.call');
const kParser = Symbol('sluice.parser');

/**
 * `_http_common`'s HTTPParser (llhttp) and IncomingMessage's `_addHeaderLine` are internal to
 * Node: every piece this client calls is checked here, together, once at load; if any is missing
 * or changed shape in this Node, the lean client is not offered at all and every request goes
 * through `http.request` (node-client.ts) from the start, rather than failing in the middle of
 * one. `common` and `messageProto` stand in for Node's in tests.
 */
export function loadInternals(
  common: unknown = requireCommon(),
  messageProto: unknown = IncomingMessage.prototype,
): LeanInternals | null {
  const P = (common as { HTTPParser?: Partial<HttpParserClass> } | null)?.HTTPParser;
  const addHeaderLine = (messageProto as { _addHeaderLine?: unknown } | null)?._addHeaderLine;
  if (typeof P !== 'function' || typeof addHeaderLine !== 'function') return null;
  for (const k of ['RESPONSE', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete', 'kLenientNone'] as const) {
    if (typeof P[k] !== 'number') return null;
  }
  const proto = (P as { prototype?: Record<string, unknown> }).prototype ?? {};
  for (const m of ['initialize', 'execute', 'finish', 'close']) if (typeof proto[m] !== 'function') return null;
  return { HTTPParser: P as HttpParserClass, addHeaderLine: addHeaderLine as AddHeaderLine };
}

function requireCommon(): unknown {
  try {
    return createRequire(import.meta.url)('_http_common');
  } catch {
    return null;
  }
}

const internals = loadInternals();

const HEADER_RULES = { joinDuplicateHeaders: false };

/**
 * An upstream response as the relaying code reads it: what it uses of IncomingMessage
 * (status, headers, rawHeaders, complete, 'aborted', a Readable body with backpressure).
 */
export class UpstreamResponse extends BoundResponse {
  readonly httpVersion: string;
  #headers: IncomingHttpHeaders | null = null;

  constructor(source: BodySource, status: number, message: string, version: string, rawHeaders: string[], highWaterMark: number) {
    super(source, status, message, rawHeaders, highWaterMark);
    this.httpVersion = version;
  }

  /** Lower-case names, built on first use with Node's rules for repeated headers. */
  get headers(): IncomingHttpHeaders {
    if (this.#headers === null) {
      const h: IncomingHttpHeaders = {};
      const raw = this.rawHeaders;
      const add = (internals as LeanInternals).addHeaderLine;
      for (let i = 0; i < raw.length; i += 2) add.call(HEADER_RULES, raw[i] as string, raw[i + 1] as string, h);
      this.#headers = h;
    }
    return this.#headers;
  }
}

function parserOnHeaders(this: HttpParser, headers: string[]): void {
  this[kCall]?.moreHeaders(headers);
}

function parserOnHeadersComplete(
  this: HttpParser, major: number, minor: number, headers: string[] | undefined, _method: unknown, _url: unknown,
  status: number, message: string, upgrade: boolean, keepAlive: boolean,
): number {
  const call = this[kCall];
  return call ? call.head(major, minor, headers, status, message, upgrade, keepAlive) : 1;
}

function parserOnBody(this: HttpParser, chunk: Buffer): void {
  this[kCall]?.body(chunk);
}

function parserOnMessageComplete(this: HttpParser): void {
  this[kCall]?.messageComplete();
}

function newParser(P: HttpParserClass): HttpParser {
  const parser = new P();
  parser[P.kOnHeaders] = parserOnHeaders;
  parser[P.kOnHeadersComplete] = parserOnHeadersComplete;
  parser[P.kOnBody] = parserOnBody;
  parser[P.kOnMessageComplete] = parserOnMessageComplete;
  return parser;
}

function parserFor(socket: Socket, P: HttpParserClass): HttpParser {
  const s = socket as Socket & { [kParser]?: HttpParser };
  let parser = s[kParser];
  if (parser === undefined) {
    parser = newParser(P);
    s[kParser] = parser;
    s.on('close', parserSocketOnClose);
  }
  return parser;
}

/**
 * The socket is done with HTTP (it closed, or a 101 handed it to a tunnel): the parser is
 * deleted. Until then the C++ parser is held by a global handle and holds, as its async
 * resource, the socket, so a parser left to the garbage collector would keep every upstream
 * connection's objects alive for good. Deleted on the next
 * turn, as Node's own http does, because this may run inside the parser's own callback.
 */
function dropParser(socket: Socket): void {
  const s = socket as Socket & { [kParser]?: HttpParser };
  const parser = s[kParser];
  if (parser === undefined) return;
  s[kParser] = undefined;
  s.removeListener('close', parserSocketOnClose);
  parser[kCall] = null;
  setImmediate(closeParser, parser);
}

function parserSocketOnClose(this: Socket): void {
  dropParser(this);
}

function closeParser(parser: HttpParser): void {
  parser.close();
}

/** "Connection: close" (or any list with the close token) among the headers sent. */
function sendsClose(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string;
    if (name.length === 10 && name.toLowerCase() === 'connection' && /(?:^|,)\s*close\s*(?:,|$)/i.test(headers[i + 1] as string)) return true;
  }
  return false;
}

const CRLF = '\r\n';
const LAST_CHUNK = '0\r\n\r\n';
const EMPTY = Buffer.alloc(0);

/**
 * What the lean client keeps for one pool: the keep-alive cache (with `keepalive`) and TLS
 * sessions. The FastCGI client keeps one of its own per pool (another factory, another instance).
 */
export class LeanConnections implements PoolConnections {
  readonly cache: ConnectionCache | null;
  readonly sessions = new TlsSessions();

  constructor(pool: UpstreamPool) {
    const c = pool.config;
    this.cache = c.keepalive > 0 ? new ConnectionCache(c.keepalive, c.keepaliveTimeout, c.keepaliveRequests) : null;
  }

  closeIdle(): void {
    this.cache?.closeIdle();
  }

  close(): void {
    this.cache?.close();
  }
}

function leanConnections(pool: UpstreamPool): LeanConnections {
  return new LeanConnections(pool);
}

/** One request/response exchange on one upstream connection. */
class UpstreamCall implements Exchange {
  readonly result: Promise<ExchangeResult>;
  readonly #o: ExchangeOptions;
  readonly #cache: ConnectionCache | null;
  readonly #key: string;
  readonly #tls: boolean;
  readonly #started: number;
  #resolve!: (r: ExchangeResult) => void;
  #socket: Socket;
  #parser: HttpParser | null = null;
  #res: UpstreamResponse | null = null;
  /** Header lines the parser gave before the head was complete (a head of many lines); made on first use. */
  #pendingHeaders: string[] | null = null;
  #settled = false;
  #connected = false;
  #reused = false;
  #requestDone = false;
  #responseDone = false;
  #upgrading = false;
  #keepAlive = false;
  /** This connection may serve another request after this one. */
  #reusable: boolean;
  /** Listeners are off and the socket is no longer this exchange's (cached, handed over or closed). */
  #released = false;
  #heads = 0;
  #chunked = false;
  /** Reading is paused because the response body is not being consumed (backpressure). */
  #heldBack = false;
  #connectTimer: NodeJS.Timeout | null = null;
  /** The request body's listeners, while it is being sent. */
  #bodyListeners: { readonly data: (chunk: Buffer) => void; readonly end: () => void; readonly drain: () => void } | null = null;
  #bytesRead = 0;
  #bytesWritten = 0;

  /**
   * `socket`: a new connection, or with `cached` one from the keep-alive cache, or with `resumed`
   * one the native addon's leg connected, wrote the head on and read from (native-exchange.ts).
   */
  constructor(
    o: ExchangeOptions, P: HttpParserClass, cache: ConnectionCache | null, key: string, socket: Socket, cached: boolean,
    resumed: Resumed | null = null,
  ) {
    this.#o = o;
    this.#started = resumed?.started ?? performance.now();
    this.result = new Promise<ExchangeResult>((r) => (this.#resolve = r));
    this.#key = key;
    this.#cache = cache;
    this.#tls = o.tls != null;
    this.#reusable = cache !== null && !o.upgrade && !sendsClose(o.head.headers);
    this.#socket = socket;
    this.#reused = cached;
    if (cache !== null && !cache.countRequest(socket)) this.#reusable = false;
    const s = socket as CallSocket;
    s[kCall] = this;
    if (s[kRouted] !== true) routeSocket(s, true);
    this.#parser = parserFor(s, P);
    // nginx reads an upstream head with bare-LF line ends (bare-lf.ts says which flags, and why).
    // The async resource is the connection, as Node's server gives its parser: the exchange as
    // resource stayed reachable from the pooled connection after its response, and with it the
    // whole request (session, context, client response) until the connection's next request, so
    // every request's objects survived young-generation GCs.
    this.#parser.initialize(P.RESPONSE, s, o.maxHeaderSize, BARE_LF_FLAGS);
    this.#parser[kCall] = this;
    if (resumed !== null) {
      this.#resumed(resumed);
    } else if (cached) {
      s.resume();
      this.onConnected();
    } else {
      // The connect timeout covers the TLS handshake too (nginx arms proxy_connect_timeout for it).
      this.#connectTimer = setTimeout(callOnConnectTimeout, timerDelay(o.connectTimeout), this);
      s.once(this.#tls ? 'secureConnect' : 'connect', callOnConnected);
    }
  }

  abort(): void {
    this.#unhookBody();
    if (!this.#released) this.#close();
    if (!this.#settled) this.#settle({ kind: 'error', error: new ProxyError('UPSTREAM_RESET'), connected: this.#connected, reused: this.#reused });
    const res = this.#res;
    if (res !== null && !res.complete && !res.destroyed) res.destroy();
  }

  /** @internal */
  resumeBody(): void {
    if (this.#released) return;
    if (this.#heldBack) {
      this.#heldBack = false;
      if (this.#requestDone) armSocketTimer(this.#socket, timerDelay(this.#o.readTimeout));
    }
    this.#socket.resume();
  }

  /** @internal headers beyond the parser's first batch */
  moreHeaders(headers: string[]): void {
    const pending = (this.#pendingHeaders ??= []);
    for (const h of headers) pending.push(h);
  }

  /** @internal */
  head(major: number, minor: number, headers: string[] | undefined, status: number, message: string, upgrade: boolean, keepAlive: boolean): number {
    let raw = headers;
    if (raw === undefined) {
      raw = this.#pendingHeaders ?? [];
      this.#pendingHeaders = null;
    }
    // 1xx other than 101: informational, the real response follows (Node's client skips them too).
    if (status >= 100 && status < 200 && status !== 101) return 1;
    if (++this.#heads > 1) {
      // A second response to one request: the connection is out of step; never reuse it.
      this.#reusable = false;
      return 1;
    }
    // One "1.1" for every response, not a new string each (the context may keep it for a tunnel's life).
    const version = major === 1 && minor === 1 ? '1.1' : `${major}.${minor}`;
    const res = new UpstreamResponse(this, status, message, version, raw, this.#socket.readableHighWaterMark);
    this.#res = res;
    this.#keepAlive = keepAlive;
    const o = this.#o;
    o.attempt.status = status;
    o.attempt.headerTime = performance.now() - this.#started;
    if (upgrade) {
      this.#upgrading = true;
      return 2;
    }
    this.#settle({ kind: 'response', res });
    return o.method === 'HEAD' ? 1 : 0;
  }

  /** @internal */
  body(chunk: Buffer): void {
    const res = this.#res;
    if (res !== null && !this.#responseDone && !res.destroyed && !res.push(chunk)) {
      // The client is slower than the upstream: reading stops until the body is drained. nginx
      // times a read only while it waits for the upstream (proxy_read_timeout); a client that
      // does not read is send_timeout's business.
      this.#socket.pause();
      this.#heldBack = true;
      if (this.#requestDone) armSocketTimer(this.#socket, 0);
    }
  }

  /** @internal */
  messageComplete(): void {
    if (this.#upgrading || this.#res === null || this.#responseDone) return;
    this.#responseDone = true;
  }

  #settle(r: ExchangeResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(r);
  }

  /** @internal */
  onConnectTimeout(): void {
    this.#connectTimer = null;
    this.#fail(new ProxyError('UPSTREAM_CONNECT_TIMEOUT'));
  }

  /** @internal */
  onConnected(): void {
    const o = this.#o;
    const s = this.#socket;
    this.#connected = true;
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    o.attempt.connectTime = performance.now() - this.#started;
    this.#bytesRead = s.bytesRead;
    this.#bytesWritten = s.bytesWritten;
    const head = this.#headText();
    if (o.body === null) {
      // Without a body the request is sent with this write (#requestSent follows in the same
      // turn): the send timer would be replaced by the read timer before it could fire.
      s.write(head, 'latin1');
      this.#requestSent();
      return;
    }
    armSocketTimer(s, timerDelay(o.sendTimeout));
    s.write(head, 'latin1');
    this.#sendBody(o.body);
  }

  /** The connection came from the addon's leg: the head is sent, `read` is what came back so far. */
  #resumed(r: Resumed): void {
    const s = this.#socket;
    this.#connected = true;
    // The attempt's byte counts include what the leg wrote and read.
    this.#bytesRead = s.bytesRead - r.read.length;
    this.#bytesWritten = s.bytesWritten - r.sent;
    this.#requestSent();
    if (r.read.length > 0) this.onData(r.read);
  }

  /** The request head, in one string for one write. */
  #headText(): string {
    const o = this.#o;
    if (o.body !== null && hasTransferEncoding(o.head.headers)) this.#chunked = true;
    return requestHeadText(o);
  }

  #sendBody(body: ReadableType): void {
    this.#o.onBodyStart?.();
    const listeners = { data: (chunk: Buffer) => this.#onBodyData(chunk), end: () => this.#onBodyEnd(), drain: () => this.#onDrain() };
    this.#bodyListeners = listeners;
    body.on('data', listeners.data);
    body.once('end', listeners.end);
    this.#socket.on('drain', listeners.drain);
  }

  #onBodyData(chunk: Buffer): void {
    if (this.#released || chunk.length === 0) return;
    const s = this.#socket;
    let ok: boolean;
    if (this.#chunked) {
      s.cork();
      s.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
      s.write(chunk);
      ok = s.write(CRLF, 'latin1');
      process.nextTick(uncork, s);
    } else {
      ok = s.write(chunk);
    }
    // proxy_send_timeout is between two writes (Node's socket timer restarted at every write).
    touchSocketTimer(s);
    if (!ok) this.#o.body?.pause();
  }

  #onBodyEnd(): void {
    if (this.#released) return;
    if (this.#chunked) this.#socket.write(LAST_CHUNK, 'latin1');
    this.#unhookBody();
    this.#requestSent();
  }

  #onDrain(): void {
    // What was written went out: the send timeout counts from here (Node's socket timer restarts at a write's end).
    touchSocketTimer(this.#socket);
    this.#o.body?.resume();
  }

  #unhookBody(): void {
    const body = this.#o.body;
    const listeners = this.#bodyListeners;
    if (body === null || listeners === null) return;
    this.#bodyListeners = null;
    body.removeListener('data', listeners.data);
    body.removeListener('end', listeners.end);
    this.#socket.removeListener('drain', listeners.drain);
  }

  #requestSent(): void {
    this.#requestDone = true;
    armSocketTimer(this.#socket, timerDelay(this.#o.readTimeout));
    if (this.#responseDone) this.#finish();
  }

  /** @internal */
  onData(chunk: Buffer): void {
    const parser = this.#parser;
    if (parser === null || this.#released) return;
    // proxy_read_timeout is between two reads (Node's socket timer restarted at every read).
    touchSocketTimer(this.#socket);
    const r = parser.execute(chunk);
    if (typeof r !== 'number') {
      // Garbage after a complete response: the response stands, the connection is out of step.
      if (this.#responseDone) {
        this.#reusable = false;
        this.#finish();
      } else {
        this.#fail(toProxyError(r, 'UPSTREAM_INVALID_RESPONSE'));
      }
      return;
    }
    if (this.#upgrading) {
      this.#handOver(r < chunk.length ? chunk.subarray(r) : EMPTY);
      return;
    }
    if (this.#responseDone) this.#finish();
  }

  /** @internal */
  onEnd(): void {
    // Before the TLS handshake completed, tls.connect turns the FIN into an error ("socket
    // disconnected before secure TLS connection"), which says what happened.
    if (this.#released || !this.#connected) return;
    // A close-delimited body ends here (finish() completes it); anything else cut short is a failure.
    this.#parser?.finish();
    this.#reusable = false;
    if (this.#responseDone) this.#finish();
    else this.#fail(new ProxyError('UPSTREAM_RESET'));
  }

  /** @internal */
  onError(err: Error): void {
    if (this.#released) return;
    if (this.#connected) this.#fail(toProxyError(err, 'UPSTREAM_RESET'));
    else this.#fail((this.#tls ? upstreamTlsFailure(err) : null) ?? toProxyError(err, 'UPSTREAM_CONNECT_FAILED'));
  }

  /** @internal */
  onClose(): void {
    if (this.#released) return;
    this.#fail(new ProxyError('UPSTREAM_RESET'));
  }

  /** @internal */
  onTimeout(): void {
    if (this.#released) return;
    const code = !this.#connected ? 'UPSTREAM_CONNECT_TIMEOUT' : this.#requestDone ? 'UPSTREAM_READ_TIMEOUT' : 'UPSTREAM_SEND_TIMEOUT';
    this.#fail(new ProxyError(code));
  }

  /** Before the answer: the result. After it: a late error for the relaying code, and the body cut short. */
  #fail(error: ProxyError): void {
    if (this.#released) return;
    this.#unhookBody();
    this.#close();
    if (!this.#settled) {
      this.#settle({ kind: 'error', error, connected: this.#connected, reused: this.#reused });
      return;
    }
    const res = this.#res;
    if (res !== null && !res.complete) {
      this.#o.onLateError(error);
      if (!res.destroyed) res.destroy();
    }
  }

  /** Stops listening and closes the connection. */
  #close(): void {
    this.#release();
    this.#socket.destroy();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    const s = this.#socket as CallSocket;
    // The socket's listeners stay (see routeSocket): with no exchange they pass its events to the cache.
    if (s[kCall] === this) s[kCall] = null;
    if (!this.#connected) s.removeListener(this.#tls ? 'secureConnect' : 'connect', callOnConnected);
    armSocketTimer(s, 0);
    if (this.#parser !== null) this.#parser[kCall] = null;
    this.#parser = null;
    const a = this.#o.attempt;
    a.bytesSent = s.bytesWritten - this.#bytesWritten;
    a.bytesReceived = s.bytesRead - this.#bytesRead;
  }

  /** The whole response is in: the body ends, and the connection goes back to the cache or closes. */
  #finish(): void {
    const res = this.#res as UpstreamResponse;
    if (!this.#requestDone) {
      // Answered before the request was all sent: the connection is out of step.
      this.#unhookBody();
      this.#reusable = false;
    }
    const s = this.#socket;
    this.#release();
    res.complete = true;
    res.detach();
    res.push(null);
    if (this.#reusable && this.#keepAlive && this.#cache?.put(this.#key, s)) return;
    s.destroy();
  }

  /** A 101: the socket and what came after the head go to the tunnel. */
  #handOver(head: Buffer): void {
    const res = this.#res as UpstreamResponse;
    const s = this.#socket;
    this.#release();
    res.complete = true;
    res.detach();
    routeSocket(s, false);
    s.on('error', noop);
    s.pause();
    dropParser(s);
    dropSocketTimers(s);
    this.#settle({ kind: 'upgrade', res, socket: s, head });
  }
}

/**
 * The socket's listeners: named module-level functions that reach the exchange through the
 * socket (as the parser's callbacks do through the parser), so that an exchange costs no closures
 * of its own. They are put on once, at the socket's first exchange, and stay for as long as the
 * socket serves HTTP: between exchanges (#release clears the pointer) they pass each event to
 * the keep-alive cache, which drops an idle connection on any event, and take errors of a
 * socket being closed. A 101 takes them off: the tunnel has the socket then.
 */
type CallSocket = Socket & { [kCall]?: UpstreamCall | null; [kRouted]?: boolean };

const kRouted = Symbol('sluice.callListeners');

function routeSocket(s: CallSocket, on: boolean): void {
  s[kRouted] = on;
  routeIdleEvents(s, on);
  if (on) {
    s.on('data', callOnData);
    s.on('end', callOnEnd);
    s.on('error', callOnError);
    s.on('close', callOnClose);
    s.on('timeout', callOnTimeout);
  } else {
    s.removeListener('data', callOnData);
    s.removeListener('end', callOnEnd);
    s.removeListener('error', callOnError);
    s.removeListener('close', callOnClose);
    s.removeListener('timeout', callOnTimeout);
  }
}

function callOnData(this: CallSocket, chunk: Buffer): void {
  const call = this[kCall];
  if (call) call.onData(chunk);
  else idleSocketEvent(this);
}

function callOnEnd(this: CallSocket): void {
  const call = this[kCall];
  if (call) call.onEnd();
  else idleSocketEvent(this);
}

function callOnError(this: CallSocket, err: Error): void {
  const call = this[kCall];
  if (call) call.onError(err);
  else idleSocketEvent(this);
}

function callOnClose(this: CallSocket): void {
  const call = this[kCall];
  if (call) call.onClose();
  else idleSocketEvent(this);
}

function callOnTimeout(this: CallSocket): void {
  const call = this[kCall];
  if (call) call.onTimeout();
  else idleSocketEvent(this);
}

function callOnConnected(this: CallSocket): void {
  this[kCall]?.onConnected();
}

function callOnConnectTimeout(call: UpstreamCall): void {
  call.onConnectTimeout();
}

function uncork(s: Socket): void {
  s.uncork();
}

function noop(): void {}

/** An exchange that failed before it began: these TLS settings cannot make a connection. */
function failedExchange(error: ProxyError): Exchange {
  return { result: Promise.resolve({ kind: 'error', error, connected: false, reused: false }), abort: noop };
}

function leanExchange(o: ExchangeOptions, P: HttpParserClass): Exchange {
  const { cache, sessions } = o.pool.connectionsOf(leanConnections);
  const tls = o.tls ?? null;
  const key = connectionKey(o.peer.server.address, tls);
  const cached = cache?.take(key) ?? null;
  if (cached !== null) return new UpstreamCall(o, P, cache, key, cached, true);
  // A WebSocket handshake from a plain TCP client to a plain TCP server: the addon's I/O thread
  // runs the upstream leg, and no net.Socket is made for it (native-exchange.ts).
  if (tls === null && o.nativeUpstream === true) {
    const ex = nativeExchange(o, LEAN_PARTS);
    if (ex !== null) return ex;
  }
  // Half-open capable always: a keep-alive connection may later carry an upgrade's tunnel, which
  // relays each direction's FIN on its own.
  const socket = connectUpstream(o.peer.server.address, tls, key, sessions, true);
  if (socket instanceof Error) return failedExchange(tlsSetupFailure(socket));
  return new UpstreamCall(o, P, cache, key, socket, false);
}

/** The connection of an exchange the addon's leg began (native-exchange.ts). */
interface Resumed {
  /** The response bytes the leg read. */
  readonly read: Buffer;
  /** The request bytes it wrote. */
  readonly sent: number;
  /** When the exchange began (performance.now()). */
  readonly started: number;
}

/** The request head, in one string for one write. */
export function requestHeadText(o: ExchangeOptions): string {
  const h = o.head.headers;
  let text = `${o.method} ${o.head.path} HTTP/1.1\r\n`;
  // Names and values are safe to write as they are: the client's were checked by Node's parser
  // (or nghttp2), config names at load, and values from variables when they were evaluated
  // (header-value.ts).
  for (let i = 0; i < h.length; i += 2) text += `${h[i] as string}: ${h[i + 1] as string}\r\n`;
  return `${text}\r\n`;
}

function hasTransferEncoding(h: readonly string[]): boolean {
  for (let i = 0; i < h.length; i += 2) {
    const name = h[i] as string;
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return true;
  }
  return false;
}

/**
 * The exchange the addon's leg began, continued on `socket` (its descriptor) by the lean client:
 * `read` (what the leg read) is parsed first, then the socket, exactly as if the client had
 * connected and read them itself. `sent`: the head's length, which the leg wrote.
 */
export function resumeExchange(o: ExchangeOptions, socket: Socket, read: Buffer, sent: number, started: number): Exchange {
  return new UpstreamCall(o, (internals as LeanInternals).HTTPParser, null, '', socket, false, { read, sent, started });
}

/** Judges the head a leg read: a 101 llhttp takes as an upgrade, or not (a null sink for the rest). */
class SwitchProbe implements ParserSink, BodySource {
  res: UpstreamResponse | null = null;
  #pending: string[] | null = null;
  #heads = 0;
  /** The attempt only, not the exchange's options: the parser keeps its last probe until the next handshake. */
  readonly #attempt: ExchangeOptions['attempt'];
  readonly #started: number;

  constructor(o: ExchangeOptions, started: number) {
    this.#attempt = o.attempt;
    this.#started = started;
  }

  moreHeaders(headers: string[]): void {
    const pending = (this.#pending ??= []);
    for (const h of headers) pending.push(h);
  }

  /** As UpstreamCall#head for the first head: only a switching 101 makes a response here. */
  head(major: number, minor: number, headers: string[] | undefined, status: number, message: string, upgrade: boolean): number {
    if (++this.#heads > 1 || status !== 101 || !upgrade) return 1;
    const raw = headers ?? this.#pending ?? [];
    this.#pending = null;
    const version = major === 1 && minor === 1 ? '1.1' : `${major}.${minor}`;
    const res = new UpstreamResponse(this, status, message, version, raw, 16 * 1024);
    res.complete = true;
    res.detach();
    this.res = res;
    const a = this.#attempt;
    a.status = status;
    a.headerTime = performance.now() - this.#started;
    return 2;
  }

  body(): void {}
  messageComplete(): void {}
  resumeBody(): void {}
  abort(): void {}
}

/**
 * The switching 101 at the start of `read` (a response head a leg read), with the bytes its head
 * took, or null: anything else, which the lean client then reads as it always does.
 */
export function switchedResponse(read: Buffer, o: ExchangeOptions, started: number): { res: UpstreamResponse; consumed: number } | null {
  const P = (internals as LeanInternals).HTTPParser;
  // One parser for every handshake, initialized afresh each time: the judging is synchronous and
  // never re-entered, and a parser per handshake is a C++ object to make and delete.
  const parser = (switchParser ??= newParser(P));
  const probe = new SwitchProbe(o, started);
  parser.initialize(P.RESPONSE, probe, o.maxHeaderSize, BARE_LF_FLAGS);
  parser[kCall] = probe;
  const r = parser.execute(read);
  parser[kCall] = null;
  if (typeof r !== 'number' || probe.res === null) return null;
  return { res: probe.res, consumed: r };
}

let switchParser: HttpParser | null = null;

/** What the addon's legs borrow of this client (native-exchange.ts). */
const LEAN_PARTS: LeanParts = { headText: requestHeadText, switchedResponse, resumeExchange };

/** Sluice's own client, or null where Node's internals it stands on are not there. */
export const leanClient: UpstreamClient | null = internals === null ? null : {
  name: 'lean',
  exchange: (o) => leanExchange(o, internals.HTTPParser),
};
