/**
 * HTTP/2 client connections (`listen ... ssl http2`, `http2 on`): a TLS connection whose ALPN chose
 * h2 becomes a server session here. The session advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC
 * 8441, WebSockets over HTTP/2) and nginx's stream limit; each stream is a request for h2-request.
 * An idle session (no open stream for `keepalive_timeout`) is closed with GOAWAY, as nginx does.
 */
import { performServerHandshake } from 'node:http2';
import type { ServerHttp2Session, ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import { timerDelay } from '../core/timers.js';
import { h2Answer } from '../proxy/front/h2-front.js';
import { handleH2Stream } from '../proxy/front/h2-stream.js';
import { failRequest } from '../proxy/session/guard.js';
import type { ConnectionRegistry } from './connections.js';
import type { Runtime } from './runtime.js';

/** nginx's http2_max_concurrent_streams default. */
export const H2_MAX_CONCURRENT_STREAMS = 128;
/** Per-stream receive window: bounds what one stream may buffer while its upstream is slow. */
export const H2_STREAM_WINDOW = 256 * 1024;
/** Connection receive window. */
export const H2_SESSION_WINDOW = 1024 * 1024;

function noop(): void {}

interface SessionState {
  readonly socket: TLSSocket;
  open: number;
}

/** The HTTP/2 sessions of one listening socket. */
export class Http2Connections {
  readonly #deps: { runtime(): Runtime; readonly registry: ConnectionRegistry };
  readonly #sessions = new Map<ServerHttp2Session, SessionState>();
  #closing = false;

  constructor(deps: { runtime(): Runtime; readonly registry: ConnectionRegistry }) {
    this.#deps = deps;
  }

  /** Starts a session on a TLS connection that negotiated h2 (already registered with the proxy). */
  serve(socket: TLSSocket, listenKey: string): void {
    void listenKey;
    const session = performServerHandshake(socket, {
      settings: {
        enableConnectProtocol: true,
        maxConcurrentStreams: H2_MAX_CONCURRENT_STREAMS,
        initialWindowSize: H2_STREAM_WINDOW,
      },
    });
    const state: SessionState = { socket, open: 0 };
    this.#sessions.set(session, state);
    session.on('error', noop);
    session.once('close', () => {
      this.#sessions.delete(session);
      if (!socket.destroyed) socket.destroy();
    });
    session.once('connect', () => {
      try {
        session.setLocalWindowSize(H2_SESSION_WINDOW);
      } catch {
        // The session went away during its handshake.
      }
    });
    const keepalive = this.#deps.runtime().config.http?.settings.keepaliveTimeout ?? 75_000;
    if (keepalive > 0) {
      session.setTimeout(timerDelay(keepalive), () => {
        if (state.open === 0) session.close();
      });
    } else {
      session.close();
    }
    session.on('stream', (stream: ServerHttp2Stream, _headers: unknown, _flags: number, rawHeaders: string[]) => {
      state.open++;
      stream.once('close', () => void state.open--);
      const rt = this.#deps.runtime();
      try {
        handleH2Stream(rt, socket, stream, rawHeaders);
      } catch (err) {
        failRequest(rt, null, h2Answer(stream), err);
      }
    });
    if (this.#closing) session.close();
  }

  /** Graceful: GOAWAY to every session; streams in flight (tunnels included) finish. */
  close(): void {
    this.#closing = true;
    for (const s of this.#sessions.keys()) if (!s.closed) s.close();
  }

  destroy(): void {
    this.#closing = true;
    for (const s of this.#sessions.keys()) s.destroy();
    this.#sessions.clear();
  }
}
