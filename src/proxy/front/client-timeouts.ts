/**
 * nginx's timeouts on the client side of an HTTP/1 connection, in nginx's meaning:
 *
 * - `client_header_timeout`: Node's `headersTimeout` has nginx's semantics (counted from the
 *   connection for the first request and from the first byte of a keep-alive request's head, until
 *   the head is complete), but Node looks for expired heads every 30 s; the proxy server checks
 *   every {@link HEADER_CHECK_INTERVAL_MS} instead. On expiry the connection closes without an
 *   answer and the error log says so at info ({@link headerTimeoutLog}).
 * - `keepalive_timeout`: an idle connection (no request in flight and no byte of the next one)
 *   closes after the keepalive_timeout of the location that served the last request, silently.
 *   Node's own keep-alive timer stays off: it adds a second, restarts on every byte of a slow head
 *   and makes Node send `Keep-Alive: timeout=N`, which nginx sends only when asked.
 * - `send_timeout` ({@link SendTimeout}) and `client_body_timeout` ({@link watchBodyReads}).
 */
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import { ERROR_CATALOG, ProxyError, messageWhile } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';
import type { ErrorLog } from '../../observability/error-log.js';
import { logContext } from '../context/log-context.js';
import type { RequestContext } from '../context/request-context.js';

/** How often expired request heads are looked for: client_header_timeout is precise to this. */
export const HEADER_CHECK_INTERVAL_MS = 500;

/** An HTTP/1 connection's keep-alive state. */
interface KeepAliveState {
  /** Requests read and not answered yet (pipelining). */
  inFlight: number;
  /** The keep-alive timer runs: no request in flight. */
  idle: boolean;
  /** socket.bytesRead when the connection went idle: more means a new head is arriving. */
  idleMark: number;
}

const states = new WeakMap<Socket, KeepAliveState>();

/** A request head has been read on this connection: it is not idle any more. */
export function requestStarted(socket: Socket): void {
  let st = states.get(socket);
  if (st === undefined) {
    st = { inFlight: 0, idle: false, idleMark: 0 };
    states.set(socket, st);
  }
  st.inFlight++;
  if (st.idle) {
    st.idle = false;
    socket.setTimeout(0);
  }
}

/**
 * A response on this connection is over (sent or abandoned). When none is left in flight and the
 * connection stays open, it waits `keepaliveMs` for the next request (nginx's
 * ngx_http_set_keepalive, with the timeout of the location that answered).
 */
export function requestEnded(socket: Socket, keepaliveMs: number): void {
  const st = states.get(socket);
  if (st === undefined) return;
  st.inFlight--;
  if (st.inFlight > 0 || socket.destroyed || !socket.writable || keepaliveMs <= 0) return;
  st.idle = true;
  st.idleMark = socket.bytesRead;
  socket.setTimeout(timerDelay(keepaliveMs));
}

/**
 * The HTTP server's 'timeout' event (the socket's timer fired while Node's HTTP parser owns it).
 * An idle keep-alive connection closes quietly (nginx logs nothing); one whose next head has begun
 * is left to client_header_timeout, as nginx stops the keep-alive timer at the first byte. A
 * listener here also keeps Node from destroying the socket on a timeout it does not own.
 */
export function onHttpSocketTimeout(socket: Socket): void {
  const st = states.get(socket);
  if (st !== undefined && st.idle && socket.bytesRead === st.idleMark) socket.destroy();
}

/**
 * nginx's info line for a request head that did not arrive within client_header_timeout: "while
 * waiting for request" when not a byte came, else "while reading client request headers".
 */
export function headerTimeoutLog(socket: Socket, readMark: number): string {
  const err = new ProxyError('CLIENT_HEADER_TIMEOUT');
  return socket.bytesRead > readMark ? err.message : messageWhile(err, 'waiting for request');
}

/** nginx's info line for send_timeout, with the request's context. */
export function logSendTimeout(log: ErrorLog, ctx: RequestContext, upstream: string): void {
  log.log('info', `${ERROR_CATALOG.CLIENT_SEND_TIMEOUT.text}${logContext(ctx, upstream)}`, ctx.conn.id);
}

/** What SendTimeout needs: a stream with Node's idle timer (net.Socket, Http2Stream). */
export interface TimedStream {
  readonly destroyed: boolean;
  setTimeout(ms: number): unknown;
  on(event: 'timeout', listener: () => void): unknown;
  removeListener(event: 'timeout', listener: () => void): unknown;
}

/** nginx's lingering_timeout: how long a connection Sluice has ended waits for the client's FIN. */
export const LINGERING_TIMEOUT_MS = 5_000;

/**
 * nginx's lingering close for a connection Sluice ends after an answer (its FIN is sent): the
 * client has LINGERING_TIMEOUT_MS to close its side, then the socket is destroyed. Node's HTTP
 * sockets allow half-open connections, so without this a client that never closes would hold its
 * worker_connections slot for good after an error page.
 */
export function lingeringClose(socket: Socket): void {
  if (socket.destroyed) return;
  const timer = setTimeout(destroySocket, LINGERING_TIMEOUT_MS, socket);
  socket.once('close', () => clearTimeout(timer));
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

/**
 * `send_timeout` for one response: armed while a write to the client waits for the client to read
 * (the relay is paused on backpressure); every write the socket completes restarts it (the
 * socket's own timer), as nginx re-arms it after each successful write. On expiry `onTimeout`
 * runs once; the caller logs and closes the connection (nginx: "client timed out (110: Connection
 * timed out) while sending to client", at info).
 */
export class SendTimeout {
  readonly #socket: TimedStream;
  readonly #ms: number;
  readonly #onTimeout: () => void;
  #armed = false;
  #fired = false;

  /** `socket`: the client connection, or an HTTP/2 stream (its own timer, restarted by its frames). */
  constructor(socket: TimedStream, ms: number, onTimeout: () => void) {
    this.#socket = socket;
    this.#ms = ms;
    this.#onTimeout = onTimeout;
  }

  /** A write did not fit: the client has this long to read before the connection closes. */
  blocked(): void {
    if (this.#armed || this.#fired || this.#ms <= 0) return;
    this.#armed = true;
    this.#socket.on('timeout', this.#fire);
    this.#socket.setTimeout(timerDelay(this.#ms));
  }

  /** The client caught up (drain), or the response is over. */
  flowing(): void {
    if (!this.#armed) return;
    this.#armed = false;
    this.#socket.removeListener('timeout', this.#fire);
    if (!this.#socket.destroyed) this.#socket.setTimeout(0);
  }

  readonly #fire = (): void => {
    if (!this.#armed) return;
    this.flowing();
    this.#fired = true;
    this.#onTimeout();
  };
}

/** Where a response body goes: a ServerResponse, a client socket, an HTTP/2 stream. */
export interface RelayTarget {
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  on(event: 'drain', listener: () => void): unknown;
  once(event: 'finish' | 'close', listener: () => void): unknown;
}

/**
 * Relays an upstream response body to the client with backpressure under send_timeout (`timed`
 * is the client connection or HTTP/2 stream whose timer counts). The caller ends `out` when `up`
 * ends; `onChunk` sees every chunk (byte counters).
 */
export function relayBody(up: Readable, out: RelayTarget, timed: TimedStream, ms: number, onTimeout: () => void, onChunk: (chunk: Buffer) => void): void {
  const sending = new SendTimeout(timed, ms, onTimeout);
  up.on('data', (chunk: Buffer) => {
    onChunk(chunk);
    if (out.destroyed) return;
    if (!out.write(chunk)) {
      up.pause();
      sending.blocked();
    }
  });
  out.on('drain', () => {
    sending.flowing();
    up.resume();
  });
  // On 'finish' (before an HTTP/1 keep-alive timer starts on 'close'), and on 'close' for an abort.
  const stop = (): void => sending.flowing();
  out.once('finish', stop);
  out.once('close', stop);
}

/**
 * `client_body_timeout` for a request body that is streamed upstream: the longest wait between two
 * reads while Sluice wants to read (the body flows); while the upstream side holds the body back
 * (paused for backpressure, or not connected yet) the client is not timed, as nginx sets the
 * timer only when it waits to read. Returns a function that stops watching.
 */
export function watchBodyReads(body: Readable, ms: number, onTimeout: () => void): () => void {
  if (ms <= 0 || body.readableEnded) return noop;
  let timer: NodeJS.Timeout | null = null;
  let counting = false;
  const disarm = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  const onData = (): void => {
    if (timer !== null) timer.refresh();
  };
  const fire = (): void => {
    timer = null;
    stop();
    onTimeout();
  };
  const arm = (): void => {
    // Listening to 'data' only once the body flows: a listener added before would start the flow.
    if (!counting) {
      counting = true;
      body.on('data', onData);
    }
    if (timer === null) timer = setTimeout(fire, timerDelay(ms));
  };
  const stop = (): void => {
    disarm();
    body.removeListener('resume', arm);
    body.removeListener('pause', disarm);
    body.removeListener('data', onData);
    body.removeListener('end', stop);
    body.removeListener('close', stop);
  };
  body.on('resume', arm);
  body.on('pause', disarm);
  body.once('end', stop);
  body.once('close', stop);
  if (body.readableFlowing === true) arm();
  return stop;
}

function noop(): void {}
