/**
 * The response of a plain request the lean front end took (server/lean-front.ts): the part of
 * Node's ServerResponse that Sluice's HTTP/1.1 request front end uses (h1-request.ts, the local
 * answers of answer/respond.ts, the status pages of admin/serve.ts, the body relays of
 * session/), with Node's own rules for the head (_http_outgoing.js `_storeHeader`), written
 * straight to the socket:
 *
 * - `Date` added unless given; `Connection: keep-alive` on a response that keeps the connection
 *   (with `Keep-Alive: timeout=N` when h1-request.ts asks for it), else `Connection: close`; a
 *   `Connection` header given decides by itself;
 * - framing: a given Content-Length is kept; without one, a keep-alive HTTP/1.1 response is sent
 *   chunked, and any other ends with the connection (close-delimited); HEAD, 204, 304 and 1xx
 *   have no body (what is written for them is dropped, as Node does); a client that waited for
 *   "100 Continue" and got a final answer instead is not kept (Node's rule);
 * - header names and values checked as Node checks them (writeHead throws the same errors);
 * - the head goes out with the first body bytes in one write (corked: a writev), a local answer
 *   and a small relayed body in one.
 *
 * When the response is over ('finish', then 'close'), the connection goes on with its next
 * request, or ends with `socket.destroySoon()` (nginx's lingering close, client-timeouts.ts)
 * when the response ends it. The socket closing first closes the response ('close' without
 * 'finish': the client left).
 */
import { EventEmitter } from 'node:events';
import { validateHeaderName, validateHeaderValue } from 'node:http';
import type { Socket } from 'node:net';
import { httpDate } from '../answer/http-date.js';
import type { LeanHead } from './h1-head-parser.js';

const RE_CONN_CLOSE = /(?:^|\W)close(?:$|\W)/i;
const RE_TE_CHUNKED = /(?:^|\W)chunked(?:$|\W)/i;
const RE_CONTINUE = /(?:^|\W)100-continue(?:$|\W)/i;
/** A status line's reason phrase as Node checks it (checkInvalidHeaderChar). */
const INVALID_CHAR = /[^\t\x20-\x7e\x80-\xff]/;
const LAST_CHUNK = '0\r\n\r\n';
const CRLF = '\r\n';

/** What the response tells its connection (server/lean-front.ts). */
export interface LeanResponseOwner {
  /** The response is over and sent: `last` when it ends the connection (destroySoon was called). */
  responseDone(res: LeanResponse, last: boolean): void;
}

function invalidChar(what: string): Error {
  return Object.assign(new TypeError(`Invalid character in ${what}`), { code: 'ERR_INVALID_CHAR' });
}

export class LeanResponse extends EventEmitter {
  readonly socket: Socket;
  readonly req: LeanHead;
  /** May the connection stay open after this response (set by the front end before writeHead). */
  shouldKeepAlive: boolean;
  /** A body of unknown length is sent chunked (false: it ends with the connection). */
  useChunkedEncodingByDefault: boolean;
  /** `Keep-Alive: timeout=N` (ms), as Node's ServerResponse field of that name. */
  _keepAliveTimeout = 0;
  statusCode = 200;
  headersSent = false;
  writableEnded = false;
  writableFinished = false;
  destroyed = false;
  readonly #owner: LeanResponseOwner;
  #hasBody: boolean;
  #chunked = false;
  #last = false;
  /** The head, until it goes out with the first body bytes (or at the end). */
  #head: string | null = null;
  #closed = false;
  /** An HTTP/1.1 client waits for "100 Continue" (Node's `_expect_continue`), and whether it was sent. */
  readonly #expectContinue: boolean;
  #sent100 = false;
  /** Writes handed to the socket and not flushed yet. */
  #pending = 0;

  constructor(req: LeanHead, owner: LeanResponseOwner) {
    super();
    this.socket = req.socket;
    this.req = req;
    this.#owner = owner;
    this.#hasBody = req.method !== 'HEAD';
    this.shouldKeepAlive = req.keepAlive;
    // Node's ServerResponse: an HTTP/1.0 client gets chunks only if it said it takes them.
    this.useChunkedEncodingByDefault = req.httpVersionMajor === 1 && req.httpVersionMinor >= 1 ? true : RE_TE_CHUNKED.test(String(req.headers.te ?? ''));
    this.#expectContinue = req.httpVersionMajor === 1 && req.httpVersionMinor === 1 && req.headers.expect !== undefined && RE_CONTINUE.test(req.headers.expect);
  }

  get writableNeedDrain(): boolean {
    return this.socket.writableNeedDrain;
  }

  /** Node's writeHead with a flat header list (the only form Sluice uses): the head is kept until the first write. */
  writeHead(status: number, reason: string | readonly string[] | undefined, list?: readonly string[]): this {
    if (this.headersSent) throw Object.assign(new Error('Cannot write headers after they are sent to the client'), { code: 'ERR_HTTP_HEADERS_SENT' });
    const headers = typeof reason === 'string' || reason === undefined ? (list ?? []) : reason;
    const phrase = typeof reason === 'string' ? reason : '';
    if (INVALID_CHAR.test(phrase)) throw invalidChar('statusMessage');
    this.statusCode = status;
    if (status === 204 || status === 304 || (status >= 100 && status <= 199)) this.#hasBody = false;
    // Node: a client that waits for "100 Continue" and gets a final answer instead may send the
    // body anyway; the connection is not kept.
    if (this.#expectContinue && !this.#sent100) this.shouldKeepAlive = false;
    let head = `HTTP/1.1 ${status} ${phrase}\r\n`;
    let connection = false;
    let contLen = false;
    let te = false;
    let date = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string;
      const value = headers[i + 1] as string;
      validateHeaderName(name);
      validateHeaderValue(name, value);
      head += `${name}: ${value}\r\n`;
      const n = name.length;
      if (n !== 4 && n !== 10 && n !== 14 && n !== 17) continue;
      switch (name.toLowerCase()) {
        case 'connection':
          connection = true;
          if (RE_CONN_CLOSE.test(value)) this.#last = true;
          else this.shouldKeepAlive = true;
          break;
        case 'content-length':
          contLen = true;
          break;
        case 'transfer-encoding':
          te = true;
          if (RE_TE_CHUNKED.test(value)) this.#chunked = true;
          break;
        case 'date':
          date = true;
          break;
      }
    }
    if (!date) head += `Date: ${httpDate()}\r\n`;
    if (!connection) {
      if (this.shouldKeepAlive && (contLen || this.useChunkedEncodingByDefault)) {
        head += 'Connection: keep-alive\r\n';
        if (this._keepAliveTimeout > 0) head += `Keep-Alive: timeout=${Math.floor(this._keepAliveTimeout / 1000)}\r\n`;
      } else {
        this.#last = true;
        head += 'Connection: close\r\n';
      }
    }
    if (!contLen && !te) {
      if (!this.#hasBody) this.#chunked = false;
      else if (!this.useChunkedEncodingByDefault) this.#last = true;
      else {
        head += 'Transfer-Encoding: chunked\r\n';
        this.#chunked = true;
      }
    }
    this.#head = head + CRLF;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer | string): boolean {
    if (this.writableEnded || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(this.statusCode, 'OK', []);
    if (!this.#hasBody || chunk.length === 0) {
      if (this.#head !== null) this.#send(this.#takeHead());
      return !this.socket.writableNeedDrain;
    }
    return this.#body(chunk);
  }

  end(chunk?: Buffer | string): this {
    if (this.writableEnded || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(this.statusCode, 'OK', []);
    const socket = this.socket;
    // One writev for what is left: the head if still kept, the last body bytes, the last chunk.
    socket.cork();
    if (chunk !== undefined && chunk.length > 0 && this.#hasBody) this.#body(chunk);
    const tail = this.#chunked ? LAST_CHUNK : '';
    const head = this.#head === null ? '' : this.#takeHead();
    if (head !== '' || tail !== '') this.#send(head + tail);
    socket.uncork();
    this.writableEnded = true;
    // Finished once every write is flushed (the last write's callback, or at once if they were).
    if (this.#pending === 0) process.nextTick(this.#finish);
    return this;
  }

  /** "100 Continue" before the body is read (Node's ServerResponse.writeContinue; h1-request.ts sends it as nginx does). */
  writeContinue(): void {
    if (this.headersSent || this.destroyed) return;
    this.#sent100 = true;
    this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
  }

  /** Node's OutgoingMessage.destroy: the connection goes (its 'close' closes this response). */
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.socket.destroy();
    }
    return this;
  }

  /** @internal the connection closed before this response was over. */
  socketClosed(): void {
    this.destroyed = true;
    this.#close();
  }

  /** @internal the socket drained: the relays writing this response go on. */
  drained(): void {
    if (!this.writableFinished && !this.destroyed) this.emit('drain');
  }

  #takeHead(): string {
    const head = this.#head as string;
    this.#head = null;
    return head;
  }

  /** Body bytes, framed: with the head when it is still kept (corked: one writev). */
  #body(chunk: Buffer | string): boolean {
    const socket = this.socket;
    socket.cork();
    const head = this.#head === null ? '' : this.#takeHead();
    if (this.#chunked) {
      this.#send(`${head}${Buffer.byteLength(chunk).toString(16)}\r\n`);
      this.#send(chunk, 'utf8');
      this.#send(CRLF);
    } else {
      if (head !== '') this.#send(head);
      this.#send(chunk, 'utf8');
    }
    socket.uncork();
    return !socket.writableNeedDrain;
  }

  /** A write whose flush is counted; strings are head bytes (latin1, as Node writes a head) unless a body's (UTF-8, as Node's `write`). */
  #send(data: Buffer | string, encoding: BufferEncoding = 'latin1'): void {
    this.#pending++;
    if (typeof data === 'string') this.socket.write(data, encoding, this.#written);
    else this.socket.write(data, this.#written);
  }

  readonly #written = (err?: Error | null): void => {
    this.#pending--;
    if (err == null && this.#pending === 0 && this.writableEnded) this.#finish();
  };

  readonly #finish = (): void => {
    if (this.destroyed || this.writableFinished) return;
    this.writableFinished = true;
    this.emit('finish');
    const last = this.#last;
    // As Node's server (resOnFinish): a response that ends the connection ends it now.
    if (last) this.socket.destroySoon();
    this.#close();
    this.#owner.responseDone(this, last);
  };

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.emit('close');
  }
}
