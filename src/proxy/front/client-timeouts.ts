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
 * - `send_timeout` and `client_body_timeout`: session/body-relay.ts.
 */
import type { Socket } from 'node:net';
import { ProxyError, messageWhile } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';

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
