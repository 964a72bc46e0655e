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
 *   and makes Node send `Keep-Alive: timeout=N`, which nginx sends only when asked. The timer is
 *   the connection's own, made once and refreshed at each idle time (upstream/socket-timer.ts),
 *   not `socket.setTimeout`, which makes a new Timeout and a bound function at every request. It
 *   is not restarted by reads: nginx stops the keep-alive timer at the first byte of the next
 *   head, and a timer that fires once bytes came does nothing ({@link onHttpSocketTimeout}).
 * - `send_timeout` and `client_body_timeout`: session/body-relay.ts.
 */
import type { Socket } from 'node:net';
import { ProxyError, messageWhile } from '../../core/errors.js';
import { LINGERING_DEFAULTS } from '../../config/defaults.js';
import type { Settings } from '../../config/types.js';
import { timerDelay } from '../../core/timers.js';
import { armSocketTimer } from '../../upstream/socket-timer.js';

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
    armSocketTimer(socket, 0);
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
  armSocketTimer(socket, timerDelay(keepaliveMs));
}

/**
 * The connection stops being an HTTP connection (an upgrade's tunnel, a socket handed on): its
 * keep-alive timer is disarmed, so that it cannot fire into the tunnel's own 'timeout' listener.
 */
export function keepAliveOff(socket: Socket): void {
  const st = states.get(socket);
  if (st === undefined || !st.idle) return;
  st.idle = false;
  armSocketTimer(socket, 0);
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

/** `lingering_close`, `lingering_time`, `lingering_timeout` (ngx_http_core_module). */
export type LingerSettings = Pick<Settings, 'lingeringClose' | 'lingeringTime' | 'lingeringTimeout'>;

/** nginx's defaults, for connections ended before a server is known (a refused head, a 503). */
const LINGER_DEFAULTS: LingerSettings = LINGERING_DEFAULTS;

/**
 * nginx's lingering close for a connection Sluice ends (its FIN is sent): what the client still
 * sends is read and thrown away until it closes its side, until `lingering_timeout` passes with
 * nothing read, or for `lingering_time` at most; then the socket is destroyed. Closing at once
 * while the client still sends (an upload answered with 413, say) makes the kernel reset the
 * connection, and the client may lose the answer before it reads it. `lingering_close off`
 * destroys the socket once the answer is flushed. Node's HTTP sockets allow half-open
 * connections, so without a bound a client that never closes would hold its slot for good.
 */
export function lingeringClose(socket: Socket, settings: LingerSettings | null = null): void {
  if (socket.destroyed) return;
  const s = settings ?? LINGER_DEFAULTS;
  if (s.lingeringClose === 'off') {
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
    return;
  }
  // A raw socket (after an upgrade request, or refused at accept) is read here; on Node's HTTP
  // server the parser goes on reading (and drops the request body) by itself.
  if (socket.readableFlowing !== true) socket.resume();
  let mark = socket.bytesRead;
  const idle = setInterval(() => {
    if (socket.bytesRead === mark) socket.destroy();
    mark = socket.bytesRead;
  }, timerDelay(s.lingeringTimeout));
  const total = setTimeout(destroySocket, timerDelay(s.lingeringTime), socket);
  socket.once('end', () => socket.destroy());
  socket.once('close', () => {
    clearInterval(idle);
    clearTimeout(total);
  });
}

/**
 * `reset_timedout_connection on`: the connection is reset (RST, SO_LINGER 0 in nginx) so that its
 * unsent data is dropped at once instead of waiting in the kernel for a client that does not
 * read. A TLS socket has no TCP handle of its own in Node: it is closed as usual.
 */
export function resetConnection(socket: Socket): void {
  if (socket.destroyed) return;
  if ('encrypted' in socket) {
    socket.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

function destroySocket(socket: Socket): void {
  socket.destroy();
}

/**
 * What {@link lingeringDestroySoon} reads: the connection's request in flight (its settings are
 * known once it is routed), or what the last one left once its response closed.
 */
interface LingerHook {
  settings: (() => LingerSettings | null) | null;
  bodyLeft: (() => boolean) | null;
  lastSettings: LingerSettings | null;
  lastBodyLeft: boolean;
}

const lingerHooks = new WeakMap<Socket, LingerHook>();

/**
 * Node's HTTP server ends a connection whose response does not keep it with `destroySoon()`:
 * replaced here, once per connection, by nginx's rule (ngx_http_finalize_connection): `lingering_close
 * always` lingers, `on` lingers while the request body is not read to its end, `off` never. Each
 * request sets the connection's hook and {@link lingerRequestDone} lets go of it once its response
 * is closed: a long-lived socket holding a request's closures kept every request's objects alive
 * through young-generation GCs (most of the plain-HTTP CPU regression measured after 413d699).
 */
export function lingerOnClose(socket: Socket, settings: () => LingerSettings | null, bodyLeft: () => boolean): void {
  const hook = lingerHooks.get(socket);
  if (hook !== undefined) {
    hook.settings = settings;
    hook.bodyLeft = bodyLeft;
    return;
  }
  lingerHooks.set(socket, { settings, bodyLeft, lastSettings: null, lastBodyLeft: false });
  socket.destroySoon = lingeringDestroySoon;
}

/**
 * A request's response is closed: the hook keeps its settings (a config object) and whether its
 * body was left unread, not the request. Node calls destroySoon for a response that ends the
 * connection before this (resOnFinish), so only a later end reads what is kept. `bodyLeft` is
 * the one the request gave {@link lingerOnClose}: a pipelined request behind it that has taken
 * the hook keeps it.
 */
export function lingerRequestDone(socket: Socket, bodyLeft: () => boolean): void {
  const hook = lingerHooks.get(socket);
  if (hook === undefined || hook.settings === null || hook.bodyLeft !== bodyLeft) return;
  hook.lastSettings = hook.settings();
  hook.lastBodyLeft = hook.bodyLeft();
  hook.settings = null;
  hook.bodyLeft = null;
}

function lingeringDestroySoon(this: Socket): void {
  const hook = lingerHooks.get(this) as LingerHook;
  const s = (hook.settings !== null ? hook.settings() : hook.lastSettings) ?? LINGER_DEFAULTS;
  const bodyLeft = hook.bodyLeft !== null ? hook.bodyLeft() : hook.lastBodyLeft;
  if (this.writable) this.end();
  if (s.lingeringClose === 'always' || (s.lingeringClose === 'on' && bodyLeft)) lingeringClose(this, s);
  else lingeringClose(this, { ...s, lingeringClose: 'off' });
}
