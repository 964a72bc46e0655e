/**
 * The FastCGI client (ngx_http_fastcgi_module's side of the protocol): one responder request per
 * exchange, behind the same {@link UpstreamClient} contract as the HTTP clients, so the session's
 * attempt loop, retries, buffering, error pages and logs serve `fastcgi_pass` unchanged.
 *
 * FCGI_BEGIN_REQUEST (FCGI_KEEP_CONN with `fastcgi_keep_conn on`), the params, then the body as
 * FCGI_STDIN records with backpressure under the send timeout; the response is FCGI_STDOUT (a
 * CGI head, then the body), FCGI_STDERR (logged as nginx logs it) and FCGI_END_REQUEST, which
 * ends the body. The CGI head's `Status:` gives the status; without it, a `Location:` means 302
 * and anything else 200 (ngx_http_fastcgi_process_header).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { STATUS_CODES } from 'node:http';
import { ProxyError, toProxyError } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';
import type { ConnectionCache } from '../../upstream/connection-cache.js';
import type { UpstreamPool } from '../../upstream/pool.js';
import { BoundResponse } from './bound-response.js';
import { LeanConnections } from './lean-client.js';
import { connectUpstream, connectionKey } from './upstream-connect.js';
import type { Exchange, ExchangeOptions, ExchangeResult } from './upstream-client.js';
import {
  FCGI_END_REQUEST, FCGI_PARAMS, FCGI_STDERR, FCGI_STDIN, FCGI_STDOUT, RecordReader, beginRequest, endOfStream,
  encodeParams, streamRecords,
} from './fastcgi-records.js';
import type { RecordSink } from './fastcgi-records.js';

/** What a FastCGI exchange needs beyond the HTTP ones' options. */
export interface FastcgiRequest {
  /** The params in the order they go (fastcgi_param lines, then the client's headers as HTTP_*). */
  readonly params: readonly (readonly [string, string])[];
  readonly keepConn: boolean;
  /** A line the server wrote to FCGI_STDERR; `inHead`: before the response head was complete. */
  readonly onStderr: (text: string, inHead: boolean) => void;
}

/** The response as the relaying code reads it (the fields of IncomingMessage it uses). */
export class FastcgiResponse extends BoundResponse {
  readonly headers: IncomingHttpHeaders;

  constructor(call: FastcgiCall, status: number, message: string, rawHeaders: string[], highWaterMark: number) {
    super(call, status, message, rawHeaders, highWaterMark);
    this.headers = headersObject(rawHeaders);
  }
}

/** Node's folding of repeated headers: Set-Cookie an array, others joined with ", ". */
function headersObject(raw: readonly string[]): IncomingHttpHeaders {
  const h: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const lower = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    const prev = h[lower];
    if (lower === 'set-cookie') h[lower] = prev === undefined ? [value] : [...(prev as string[]), value];
    else h[lower] = prev === undefined ? value : `${prev as string}, ${value}`;
  }
  return h as IncomingHttpHeaders;
}

/** The end of a CGI head: an empty line, with CRLF or bare LF line ends (nginx accepts both). */
const HEAD_END = /\r?\n\r?\n/;
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+)[ \t]*:[ \t]*(.*?)[ \t]*$/;

type Head = { status: number; message: string; raw: string[] } | ProxyError;

/** A CGI response head (RFC 3875 6.2) in nginx's reading: `Status:` hidden later, its code the status. */
function parseHead(text: string): Head {
  const raw: string[] = [];
  let status: string | null = null;
  let location = false;
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue;
    const m = HEADER_LINE.exec(line);
    if (m === null) return new ProxyError('UPSTREAM_INVALID_RESPONSE');
    const name = m[1] as string;
    const value = m[2] as string;
    const lower = name.toLowerCase();
    if (lower === 'status') status = value;
    else if (lower === 'location') location = true;
    raw.push(name, value);
  }
  if (status !== null) {
    const code = /^(\d{3})(?:\s+(.*))?$/.exec(status);
    if (code === null) return new ProxyError('UPSTREAM_INVALID_RESPONSE', `invalid status "${status}"`);
    const n = Number(code[1]);
    return { status: n, message: code[2] ?? STATUS_CODES[n] ?? '', raw };
  }
  // ngx_http_fastcgi_process_header: a Location without a Status is a redirect.
  if (location) return { status: 302, message: 'Moved Temporarily', raw };
  return { status: 200, message: 'OK', raw };
}

/** FastCGI connections kept per pool, apart from the HTTP client's (a factory of their own). */
function fastcgiConnections(pool: UpstreamPool): LeanConnections {
  return new LeanConnections(pool);
}

/** One FastCGI request on one connection. */
class FastcgiCall implements Exchange, RecordSink {
  readonly result: Promise<ExchangeResult>;
  readonly #o: ExchangeOptions;
  readonly #f: FastcgiRequest;
  readonly #cache: ConnectionCache | null;
  readonly #key: string;
  readonly #started = performance.now();
  readonly #reader = new RecordReader(this);
  #resolve!: (r: ExchangeResult) => void;
  #socket: Socket;
  #res: FastcgiResponse | null = null;
  #head: Buffer[] = [];
  #headSize = 0;
  #settled = false;
  #connected = false;
  #reused: boolean;
  #requestDone = false;
  #released = false;
  #heldBack = false;
  #connectTimer: NodeJS.Timeout | null = null;
  #bytesRead = 0;
  #bytesWritten = 0;

  constructor(o: ExchangeOptions, f: FastcgiRequest, cache: ConnectionCache | null, key: string, socket: Socket, cached: boolean) {
    this.#o = o;
    this.#f = f;
    this.result = new Promise<ExchangeResult>((r) => (this.#resolve = r));
    this.#cache = f.keepConn ? cache : null;
    this.#key = key;
    this.#socket = socket;
    this.#reused = cached;
    if (this.#cache !== null && !this.#cache.countRequest(socket)) this.#cache = null;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', this.#onError);
    socket.on('close', this.#onClose);
    socket.on('timeout', this.#onTimeout);
    if (cached) {
      socket.resume();
      this.#onConnected();
    } else {
      this.#connectTimer = setTimeout(this.#onConnectTimeout, timerDelay(o.connectTimeout));
      socket.once('connect', this.#onConnected);
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
      if (this.#requestDone) this.#socket.setTimeout(timerDelay(this.#o.readTimeout));
    }
    this.#socket.resume();
  }

  /** @internal RecordSink */
  record(type: number, requestId: number, content: Buffer): void {
    // Records of another request id are not this exchange's (nginx ignores them too).
    if (requestId !== 1) return;
    switch (type) {
      case FCGI_STDOUT:
        if (content.length > 0) this.#stdout(content);
        return;
      case FCGI_STDERR:
        if (content.length > 0) this.#stderr(content);
        return;
      case FCGI_END_REQUEST:
        this.#endRequest();
        return;
      default:
        // nginx: "upstream sent invalid FastCGI record type: %d".
        this.#protocolError(`invalid FastCGI record type: ${type}`);
    }
  }

  /** @internal RecordSink */
  invalid(reason: string): void {
    this.#protocolError(reason);
  }

  #protocolError(reason: string): void {
    this.#reader.stop();
    this.#fail(new ProxyError('UPSTREAM_INVALID_RESPONSE', reason));
  }

  #stdout(content: Buffer): void {
    if (this.#res !== null) {
      this.#body(content);
      return;
    }
    this.#head.push(content);
    this.#headSize += content.length;
    const all = this.#head.length === 1 ? content : Buffer.concat(this.#head);
    this.#head = [all];
    const text = all.toString('latin1');
    const m = HEAD_END.exec(text);
    if (m === null) {
      if (this.#headSize > this.#o.maxHeaderSize) this.#protocolFailure(new ProxyError('UPSTREAM_HEADER_TOO_BIG'));
      return;
    }
    const end = m.index + m[0].length;
    if (end > this.#o.maxHeaderSize) {
      this.#protocolFailure(new ProxyError('UPSTREAM_HEADER_TOO_BIG'));
      return;
    }
    const head = parseHead(text.slice(0, m.index));
    if (head instanceof ProxyError) {
      this.#protocolFailure(head);
      return;
    }
    this.#head = [];
    const o = this.#o;
    const res = new FastcgiResponse(this, head.status, head.message, head.raw, this.#socket.readableHighWaterMark);
    this.#res = res;
    o.attempt.status = head.status;
    o.attempt.headerTime = performance.now() - this.#started;
    this.#settle({ kind: 'response', res });
    if (end < all.length && o.method !== 'HEAD') this.#body(all.subarray(end));
  }

  #protocolFailure(err: ProxyError): void {
    this.#reader.stop();
    this.#fail(err);
  }

  #body(chunk: Buffer): void {
    const res = this.#res as FastcgiResponse;
    if (this.#o.method === 'HEAD' || res.destroyed) return;
    if (!res.push(chunk)) {
      // A client slower than the server: reading stops until the body drains (send_timeout's
      // business, not the read timeout's).
      this.#socket.pause();
      this.#heldBack = true;
      if (this.#requestDone) this.#socket.setTimeout(0);
    }
  }

  /** nginx logs each FCGI_STDERR record at error level, its trailing line ends and spaces trimmed. */
  #stderr(content: Buffer): void {
    const text = content.toString('latin1').replace(/[\r\n\s]+$/, '');
    if (text !== '') this.#f.onStderr(text, this.#res === null);
  }

  #endRequest(): void {
    this.#reader.stop();
    if (this.#res === null) {
      // nginx: "upstream prematurely closed FastCGI stdout" (no complete head came).
      this.#fail(new ProxyError('UPSTREAM_RESET', 'FastCGI stdout closed before a complete head'));
      return;
    }
    this.#finish();
  }

  #settle(r: ExchangeResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(r);
  }

  readonly #onConnectTimeout = (): void => {
    this.#connectTimer = null;
    this.#fail(new ProxyError('UPSTREAM_CONNECT_TIMEOUT'));
  };

  readonly #onConnected = (): void => {
    const o = this.#o;
    const s = this.#socket;
    this.#connected = true;
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    o.attempt.connectTime = performance.now() - this.#started;
    this.#bytesRead = s.bytesRead;
    this.#bytesWritten = s.bytesWritten;
    s.setTimeout(timerDelay(o.sendTimeout));
    const params = encodeParams(this.#f.params);
    s.cork();
    s.write(beginRequest(this.#f.keepConn));
    for (const b of streamRecords(FCGI_PARAMS, params)) s.write(b);
    s.write(endOfStream(FCGI_PARAMS));
    process.nextTick(uncork, s);
    if (o.body === null) this.#bodySent();
    else this.#sendBody(o.body);
  };

  #sendBody(body: Readable): void {
    this.#o.onBodyStart?.();
    body.on('data', this.#onBodyData);
    body.once('end', this.#onBodyEnd);
    this.#socket.on('drain', this.#onDrain);
  }

  readonly #onBodyData = (chunk: Buffer): void => {
    if (this.#released || chunk.length === 0) return;
    const s = this.#socket;
    let ok = true;
    for (const b of streamRecords(FCGI_STDIN, chunk)) ok = s.write(b);
    if (!ok) this.#o.body?.pause();
  };

  readonly #onBodyEnd = (): void => {
    if (this.#released) return;
    this.#unhookBody();
    this.#bodySent();
  };

  readonly #onDrain = (): void => {
    this.#o.body?.resume();
  };

  #unhookBody(): void {
    const body = this.#o.body;
    if (body === null) return;
    body.removeListener('data', this.#onBodyData);
    body.removeListener('end', this.#onBodyEnd);
    this.#socket.removeListener('drain', this.#onDrain);
  }

  /** The empty FCGI_STDIN record ends the request; from here the read timeout counts. */
  #bodySent(): void {
    this.#socket.write(endOfStream(FCGI_STDIN));
    this.#requestDone = true;
    if (this.#released) return;
    this.#socket.setTimeout(this.#heldBack ? 0 : timerDelay(this.#o.readTimeout));
  }

  readonly #onData = (chunk: Buffer): void => {
    if (this.#released) return;
    this.#reader.push(chunk);
  };

  readonly #onEnd = (): void => {
    if (this.#released) return;
    // The server closed before FCGI_END_REQUEST: the response (or its body) is cut short.
    this.#fail(new ProxyError('UPSTREAM_RESET'));
  };

  readonly #onError = (err: Error): void => {
    if (this.#released) return;
    this.#fail(toProxyError(err, this.#connected ? 'UPSTREAM_RESET' : 'UPSTREAM_CONNECT_FAILED'));
  };

  readonly #onClose = (): void => {
    if (this.#released) return;
    this.#fail(new ProxyError('UPSTREAM_RESET'));
  };

  readonly #onTimeout = (): void => {
    if (this.#released) return;
    const code = !this.#connected ? 'UPSTREAM_CONNECT_TIMEOUT' : this.#requestDone ? 'UPSTREAM_READ_TIMEOUT' : 'UPSTREAM_SEND_TIMEOUT';
    this.#fail(new ProxyError(code));
  };

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

  #close(): void {
    this.#release();
    this.#socket.destroy();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#reader.stop();
    if (this.#connectTimer) clearTimeout(this.#connectTimer);
    this.#connectTimer = null;
    const s = this.#socket;
    s.removeListener('data', this.#onData);
    s.removeListener('end', this.#onEnd);
    s.removeListener('error', this.#onError);
    s.removeListener('close', this.#onClose);
    s.removeListener('timeout', this.#onTimeout);
    s.removeListener('connect', this.#onConnected);
    s.setTimeout(0);
    const a = this.#o.attempt;
    a.bytesSent = s.bytesWritten - this.#bytesWritten;
    a.bytesReceived = s.bytesRead - this.#bytesRead;
  }

  /**
   * FCGI_END_REQUEST: the body ends, and with FCGI_KEEP_CONN the connection goes back to the
   * cache, when the request went out whole and nothing of another record is pending.
   */
  #finish(): void {
    const res = this.#res as FastcgiResponse;
    const reusable = this.#requestDone && this.#cache !== null && !this.#reader.midRecord;
    if (!this.#requestDone) this.#unhookBody();
    const s = this.#socket;
    this.#release();
    res.complete = true;
    res.detach();
    res.push(null);
    s.on('error', noop);
    if (reusable && this.#cache?.put(this.#key, s)) {
      s.removeListener('error', noop);
      return;
    }
    s.destroy();
  }
}

function uncork(s: Socket): void {
  s.uncork();
}

function noop(): void {}

/** The FastCGI exchange for `o`: a cached connection (fastcgi_keep_conn with keepalive) or a new one. */
export function fastcgiExchange(o: ExchangeOptions, f: FastcgiRequest): Exchange {
  const { cache, sessions } = o.pool.connectionsOf(fastcgiConnections);
  const key = connectionKey(o.peer.server.address, null);
  const cached = f.keepConn ? cache?.take(key) ?? null : null;
  if (cached !== null) return new FastcgiCall(o, f, cache, key, cached, true);
  const socket = connectUpstream(o.peer.server.address, null, key, sessions, false) as Socket;
  return new FastcgiCall(o, f, cache, key, socket, false);
}
