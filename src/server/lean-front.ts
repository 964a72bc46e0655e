/**
 * The lean HTTP/1.1 front end: it reads each connection (plain, or TLS once decrypted) before
 * Node's HTTP server sees it, one request at a time, with llhttp (front/h1-head-parser.ts: Node's
 * parser, flags and limits):
 *
 * - a WebSocket handshake (any request Node would give its `'upgrade'` listener) whose whole head
 *   has arrived goes straight from the parsed head to the upgrade front end (front/h1-upgrade.ts):
 *   no IncomingMessage, no Node parser from the pool, no `'upgrade'` dispatch;
 * - a plain request it fully handles (a complete head in origin form, not CONNECT, no body or
 *   a Content-Length one, no Transfer-Encoding) is answered here: the request front
 *   end of Node's server (front/h1-request.ts, with every nginx rule of keep-alive, lingering
 *   close, time-outs and logging) runs on the parsed head and a LeanResponse
 *   (front/h1-lean-response.ts) that writes to the socket itself. The connection stays here,
 *   with keep-alive (keepalive_timeout's timer is client-timeouts.ts's), and requests the client
 *   pipelined are answered in order, one after the other;
 * - anything else (a head llhttp refuses, one not complete in the bytes that arrived, a chunked
 *   body, an HTTP/2 preface, a forward-proxy request...) is handed to Node's server at
 *   the request boundary with its bytes untouched: they are put back (`unshift`) and Node's own
 *   `'connection'` listener runs, as if it had run on accept; the connection stays Node's from
 *   there, so every refusal of a malformed head is still Node's, with its status.
 *
 * Until the first request, the connection is timed by client_header_timeout here (Node's timer
 * starts at the handover) and closed by a graceful shutdown like an idle one; so is a keep-alive
 * connection between requests.
 *
 * `SLUICE_FRONT=node` turns it off (every connection goes to Node's server from the start); the
 * test runner's `node-front` pass runs the HTTP/1.1 suites that way (scripts/test.mjs).
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { onHttpSocketTimeout } from '../proxy/front/client-timeouts.js';
import { LEAN_PARSER_AVAILABLE, parseRequestHead } from '../proxy/front/h1-head-parser.js';
import type { LeanHead } from '../proxy/front/h1-head-parser.js';
import { LeanBodyRequest } from '../proxy/front/h1-lean-body.js';
import { LeanResponse } from '../proxy/front/h1-lean-response.js';
import type { LeanResponseOwner } from '../proxy/front/h1-lean-response.js';

/** Whether connections go through the lean front end: where this Node has the parser, and unless SLUICE_FRONT=node. */
export function leanFrontEnabled(env: NodeJS.ProcessEnv = process.env): boolean {
  return LEAN_PARSER_AVAILABLE && env['SLUICE_FRONT'] !== 'node';
}

/**
 * What the lean front end did, over the process's life (the test suites check which front end
 * answered): `taken` upgrade requests it read, `plain` plain requests it answered, `handedOver`
 * connections it gave to Node's server (at their first request or a later one).
 */
export const leanFrontCounts = { taken: 0, plain: 0, handedOver: 0 };

type ConnectionListener = (this: Server, socket: Socket) => void;

/** Called for an upgrade request the lean front end read: `head` is what came after the request head. */
export type LeanUpgrade = (req: LeanHead, socket: Socket, head: Buffer) => void;

/** Called for a plain request the lean front end took: `pipelined` when it was read with the one before it. */
export type LeanRequest = (req: LeanHead, res: LeanResponse, pipelined: boolean) => void;

/** Bytes a client may pipeline while a request is answered before reading pauses (Node's server pauses too). */
const PIPELINE_LIMIT = 64 * 1024;

const kConn = Symbol('sluice.leanConnection');

type LeanSocket = Socket & { [kConn]?: LeanConnection | undefined };

/** Node's error for a head that did not arrive within headersTimeout; the server's clientError handler logs and closes. */
function headerTimeoutError(): Error {
  return Object.assign(new Error('Request Timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' });
}

/**
 * The body length of a plain request the lean front end answers itself (0: none), or -1 for one
 * that goes to Node's server: not in origin form (a forward-proxy request, `*`), or with
 * Transfer-Encoding. llhttp has refused a Content-Length that is not one number already. Expect
 * needs nothing of Node's server: its `checkContinue`/`checkExpectation` events go to the same
 * handler as `'request'`, which sends "100 Continue" itself (writeContinue) once the body is wanted.
 */
function leanBodyLength(head: LeanHead): number {
  if ((head.url ?? '').charCodeAt(0) !== 0x2f) return -1;
  const raw = head.rawHeaders;
  let length = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const n = name.length;
    if (n !== 14 && n !== 17) continue;
    const lower = name.toLowerCase();
    if (lower === 'transfer-encoding') return -1;
    if (lower === 'content-length') {
      length = Number(raw[i + 1]);
      if (!Number.isSafeInteger(length) || length < 0) return -1;
    }
  }
  return length;
}

function joined(a: Buffer | null, b: Buffer): Buffer {
  return a === null ? b : Buffer.concat([a, b]);
}

/** One connection read by the lean front end, between its requests. */
class LeanConnection implements LeanResponseOwner {
  readonly front: LeanFront;
  readonly socket: Socket;
  /** Bytes read and not parsed yet (the next request, pipelined or arriving). */
  buf: Buffer | null = null;
  /** The response of the request in flight. */
  res: LeanResponse | null = null;
  /** The body of the request being read, until its last byte (it may outlive the response: then it is read and dropped). */
  body: LeanBodyRequest | null = null;
  /** Requests taken on this connection. */
  served = 0;
  /** The connection is ending (a response ended it, or the client did): nothing more is read as a request. */
  closing = false;

  constructor(front: LeanFront, socket: Socket) {
    this.front = front;
    this.socket = socket;
  }

  responseDone(_res: LeanResponse, last: boolean): void {
    this.res = null;
    if (last) this.closing = true;
    if (this.closing) return;
    if (this.socket.isPaused()) this.socket.resume();
    // A body not read to its end is read now and dropped (Node's server `_dump`s it, nginx
    // discards it): the next request starts after it.
    if (this.body !== null) this.body.resume();
    else if (this.buf !== null) this.front.next(this, true);
  }
}

/** The lean front end of one Node HTTP server (one bind). */
export class LeanFront {
  readonly #server: Server;
  readonly #nodeListener: ConnectionListener;
  readonly #handedOver: (socket: Socket) => void;
  readonly #onUpgrade: LeanUpgrade;
  readonly #onRequest: LeanRequest;
  /** Connections read here (waiting for a request, or answering one). */
  readonly #conns = new Set<LeanConnection>();

  /**
   * Takes `server`'s connections: Node's own `'connection'` listener (registered by the Server
   * constructor, the one listener a new server has) is removed and called for the connections
   * handed over, followed by `handedOver`. Null where the server does not have that shape.
   */
  static take(server: Server, handedOver: (socket: Socket) => void, onUpgrade: LeanUpgrade, onRequest: LeanRequest): LeanFront | null {
    const listeners = server.listeners('connection');
    if (listeners.length !== 1 || typeof listeners[0] !== 'function') return null;
    const nodeListener = listeners[0] as ConnectionListener;
    server.removeListener('connection', nodeListener);
    const front = new LeanFront(server, nodeListener, handedOver, onUpgrade, onRequest);
    server.on('connection', (socket: Socket) => front.accept(socket));
    return front;
  }

  private constructor(server: Server, nodeListener: ConnectionListener, handedOver: (socket: Socket) => void, onUpgrade: LeanUpgrade, onRequest: LeanRequest) {
    this.#server = server;
    this.#nodeListener = nodeListener;
    this.#handedOver = handedOver;
    this.#onUpgrade = onUpgrade;
    this.#onRequest = onRequest;
  }

  accept(socket: Socket): void {
    const conn = new LeanConnection(this, socket);
    (socket as LeanSocket)[kConn] = conn;
    this.#conns.add(conn);
    socket.on('error', leanOnError);
    socket.on('close', leanOnClose);
    socket.on('end', leanOnEnd);
    socket.on('data', leanOnData);
    socket.on('drain', leanOnDrain);
    socket.on('timeout', leanOnTimeout);
    const timeout = this.#server.headersTimeout;
    if (timeout > 0) socket.setTimeout(timeout);
  }

  /**
   * Graceful shutdown: a connection waiting for its first request or between two requests is
   * idle (Node's closeIdleConnections closes its own); one answering a request is left to finish.
   */
  closeIdle(): void {
    for (const c of this.#conns) if (c.res === null) c.socket.destroy();
  }

  /** @internal bytes arrived: parsed now, or kept while a request is answered. */
  data(conn: LeanConnection, chunk: Buffer): void {
    if (conn.closing) return;
    if (conn.body !== null) {
      this.#feed(conn, chunk);
      if (conn.body !== null || conn.buf === null) return;
    } else {
      conn.buf = joined(conn.buf, chunk);
    }
    if (conn.res === null) this.next(conn, false);
    else if (conn.buf.length >= PIPELINE_LIMIT) conn.socket.pause();
  }

  /** Body bytes for the request being read; what comes after its last byte is the next request. */
  #feed(conn: LeanConnection, chunk: Buffer): void {
    const body = conn.body as LeanBodyRequest;
    const take = Math.min(body.left, chunk.length);
    const more = body.feed(take === chunk.length ? chunk : chunk.subarray(0, take));
    if (body.left === 0) conn.body = null;
    if (take < chunk.length) conn.buf = joined(conn.buf, chunk.subarray(take));
    if (!more) conn.socket.pause();
  }

  /** @internal the next request of a connection with no request in flight: taken here, or the connection to Node's server. */
  next(conn: LeanConnection, pipelined: boolean): void {
    const socket = conn.socket;
    const bytes = conn.buf as Buffer;
    const head = parseRequestHead(bytes, socket, (this.#server as Server & { maxHeaderSize?: number }).maxHeaderSize ?? 0);
    const length = head === null || head.upgrade ? 0 : leanBodyLength(head);
    if (head === null || length < 0) {
      this.#handOver(conn);
      return;
    }
    conn.buf = head.headLength === bytes.length ? null : bytes.subarray(head.headLength);
    if (head.upgrade) {
      leanFrontCounts.taken++;
      this.#release(conn);
      // As Node's server leaves an upgraded socket: not flowing, until the front end reads it.
      (socket as { readableFlowing: boolean | null }).readableFlowing = null;
      this.#onUpgrade(head, socket, conn.buf ?? EMPTY);
      return;
    }
    leanFrontCounts.plain++;
    // client_header_timeout ran until the first request; a later one stops keepalive_timeout's timer itself.
    if (conn.served++ === 0) socket.setTimeout(0);
    let req: LeanHead = head;
    if (length > 0) {
      const body = new LeanBodyRequest(head, length);
      req = body;
      conn.body = body;
      const after = conn.buf;
      conn.buf = null;
      if (after !== null) this.#feed(conn, after);
    }
    const res = new LeanResponse(req, conn);
    conn.res = res;
    this.#onRequest(req, res, pipelined);
  }

  /** @internal the socket's timer: client_header_timeout before the first request, keepalive_timeout after one. */
  timedOut(conn: LeanConnection): void {
    const socket = conn.socket;
    if (conn.served > 0 || conn.res !== null) {
      onHttpSocketTimeout(socket);
      return;
    }
    // As Node's server reports it (its clientError).
    this.#release(conn);
    this.#server.emit('clientError', headerTimeoutError(), socket);
  }

  /** @internal */
  gone(conn: LeanConnection): void {
    this.#conns.delete(conn);
    const res = conn.res;
    conn.res = null;
    conn.body?.abort();
    res?.socketClosed();
    this.#release(conn);
  }

  /**
   * @internal The client ended its side: the server's sockets are half-open (Node's HTTP server
   * allows it), so this side ends too, as Node's server does; a request in flight is abandoned
   * (Node's server aborts it: its response cannot go out any more).
   */
  ended(conn: LeanConnection): void {
    conn.closing = true;
    const res = conn.res;
    if (res === null) this.#release(conn);
    conn.body?.abort();
    conn.socket.end();
    if (res !== null && !res.writableEnded) res.socketClosed();
  }

  /** @internal */
  drained(conn: LeanConnection): void {
    conn.res?.drained();
  }

  #handOver(conn: LeanConnection): void {
    const socket = conn.socket;
    const bytes = conn.buf;
    conn.buf = null;
    this.#release(conn);
    leanFrontCounts.handedOver++;
    socket.pause();
    if (bytes !== null) socket.unshift(bytes);
    this.#nodeListener.call(this.#server, socket);
    this.#handedOver(socket);
    socket.resume();
  }

  #release(conn: LeanConnection): void {
    const socket = conn.socket as LeanSocket;
    if (socket[kConn] !== conn) return;
    socket[kConn] = undefined;
    this.#conns.delete(conn);
    socket.removeListener('data', leanOnData);
    socket.removeListener('close', leanOnClose);
    socket.removeListener('end', leanOnEnd);
    socket.removeListener('error', leanOnError);
    socket.removeListener('drain', leanOnDrain);
    socket.removeListener('timeout', leanOnTimeout);
    socket.setTimeout(0);
  }
}

const EMPTY = Buffer.alloc(0);

function leanOnData(this: LeanSocket, chunk: Buffer): void {
  const conn = this[kConn];
  if (conn !== undefined) conn.front.data(conn, chunk);
}

function leanOnTimeout(this: LeanSocket): void {
  const conn = this[kConn];
  if (conn !== undefined) conn.front.timedOut(conn);
}

function leanOnEnd(this: LeanSocket): void {
  const conn = this[kConn];
  if (conn !== undefined) conn.front.ended(conn);
}

function leanOnClose(this: LeanSocket): void {
  const conn = this[kConn];
  if (conn !== undefined) conn.front.gone(conn);
}

function leanOnDrain(this: LeanSocket): void {
  const conn = this[kConn];
  if (conn !== undefined) conn.front.drained(conn);
}

function leanOnError(this: Socket): void {
  // A reset: nothing to answer; 'close' follows (and closes a response in flight).
  this.destroy();
}
