import { CloseCode } from '../../websocket/close-codes.js';
import { encodeClose } from '../../websocket/frame-writer.js';
import type { TunnelGuardrails } from './guardrails.js';
import type { Refusal } from './refusals.js';
import type { RequestContext } from '../context/request-context.js';

/**
 * An open tunnel, as the rest of the proxy sees it (the connection registry, reload drains,
 * shutdown, statistics): whatever moves its bytes — the TypeScript relay over a socket pair or
 * over an HTTP/2 stream and a socket, or the native addon — it has a request context whose byte
 * figures are live, ends politely or at once, and says why it ended.
 */
export interface ProxyTunnel {
  /** The request that opened it; `bytesSent`/`bytesReceived` count the tunnelled bytes as they move. */
  readonly ctx: RequestContext;
  /**
   * Why it ended, or is ending ('client closed', 'upstream error: ECONNRESET', 'idle timeout',
   * 'shutdown', ...); '' while nothing has happened yet.
   */
  readonly reason: string;
  /** True while the native addon holds its sockets. */
  readonly isNative: boolean;
  /** The error-log line of a guardrail that closed it (websocket_max_message_size...), or null. */
  readonly refusal: TunnelRefusal | null;
  /** True once it is going away (goAway, or a guardrail ending it): its client is about to leave. */
  readonly goingAway: boolean;
  /**
   * Ends it politely (drain after a reload, shutdown): a WebSocket tunnel relays each direction up
   * to the end of the frame in flight, then sends a close frame 1001 (RFC 6455 7.4.1, "going
   * away") and ends it; whatever is not done within GOING_AWAY_GRACE_MS is destroyed. Any other
   * upgraded connection is destroyed at once. Idempotent.
   *
   * @param code - the close code the client gets (websocket_rebalance sends 1012); the upstream
   *   gets 1001 whatever it is. @default 1001
   */
  goAway(reason: string, code?: number): void;
  /** Closes both sides now. Idempotent. */
  destroy(reason: string): void;
}

/** The error-log line of a guardrail that closed a tunnel, and its level. */
export interface TunnelRefusal {
  readonly level: 'info' | 'error';
  readonly line: string;
}

/**
 * Who a tunnel reports to, once, when both of its sides are gone: an object (the front end's
 * session end) rather than a callback, so that an open tunnel keeps one object instead of a
 * closure and the scope it captured.
 */
export interface TunnelEnd {
  tunnelEnded(tunnel: ProxyTunnel, reason: string): void;
}

/** How long a tunnel going away waits for the peers to finish the close handshake. */
export const GOING_AWAY_GRACE_MS = 2000;

/**
 * The close frame a tunnel going away sends each way (RFC 6455 7.4.1, 1001 "going away"): masked
 * to the upstream, as a client's frames are, and unmasked to the client (RFC 6455 5.1). Whichever
 * engine moves the bytes, the relay or the addon, sends these.
 */
export function goingAwayFrame(toUpstream: boolean): Buffer {
  return encodeClose(CloseCode.GOING_AWAY, 'going away', toUpstream);
}

/**
 * The close frame a tunnel going away sends the client: 1001, or the code it was asked to send
 * (websocket_rebalance: 1012 Service Restart, which tells the client to reconnect).
 */
export function goingAwayFrameToClient(code: number): Buffer {
  return code === CloseCode.GOING_AWAY ? goingAwayFrame(false) : encodeClose(code, 'rebalancing', false);
}

/** What both tunnel factories take (openSocketTunnel, openH2Tunnel). */
export interface TunnelOptions {
  /** proxy_read_timeout: ms with no byte either way before both sides close; 0 never. */
  idleTimeout: number;
  /** Called once when both sides are gone. */
  onEnd: TunnelEnd;
  /**
   * Client bytes that came after the request head and were held back until the upgrade was
   * accepted; they go upstream first. @default none
   */
  clientHead?: Buffer;
  /** Server bytes that came in the packet of the 101; they go to the client first. @default none */
  upstreamHead?: Buffer;
  /**
   * The guardrails of a WebSocket tunnel (websocket_max_frame_size, websocket_max_message_size,
   * pings, message rate), both directions, as its route built them; null: none. Whichever engine
   * moves the bytes applies them (the addon in C). @default null
   */
  guardrails?: TunnelGuardrails | null;
}

/** Where a tunnel may move to the native addon, and who counts it once its sockets are gone. */
export interface TunnelHost {
  /** Tunnels the addon holds: their client sockets have left the registry's socket set. */
  nativeTunnels: number;
  /** A connection it counted is gone (the workers' load table is told: server/native-accept.ts). */
  readonly released?: () => void;
}

/** What moves a tunnel's bytes: the TypeScript relay (relay.ts) or the native addon (socket-tunnel.ts). */
export interface TunnelEngine {
  readonly isNative: boolean;
  /**
   * Each direction up to its next frame boundary, then a close frame and its end (WebSocket only):
   * 1001 to the upstream, `code` to the client.
   */
  goAway(code: number): void;
  /** Both sides now. */
  destroy(): void;
}

/**
 * The one tunnel class: the reason, going away with its grace timer, and the end report, whatever
 * the engine. A socket-pair tunnel may change engines once, from the relay to the addon.
 */
export class Tunnel implements ProxyTunnel {
  readonly ctx: RequestContext;
  reason = '';
  /** The error-log line of a guardrail that ended the tunnel (a message over its limit, a ping unanswered), or null. */
  refusal: TunnelRefusal | null = null;
  #goingAway = false;
  #engine: TunnelEngine | null = null;
  #awayTimer: NodeJS.Timeout | null = null;
  readonly #onEnd: TunnelEnd;

  constructor(ctx: RequestContext, onEnd: TunnelEnd) {
    this.ctx = ctx;
    this.#onEnd = onEnd;
  }

  get isNative(): boolean {
    return this.#engine?.isNative === true;
  }

  /** Set once goAway() was called. */
  get goingAway(): boolean {
    return this.#goingAway;
  }

  /** @internal Puts an engine in charge (the relay, or the addon taking over from it). */
  run(engine: TunnelEngine): void {
    this.#engine = engine;
  }

  goAway(reason: string, code: number = CloseCode.GOING_AWAY): void {
    if (this.#goingAway) return;
    // A half-close does not end a tunnel, going away does: its reason replaces the FIN's.
    if (!this.reason || this.reason === 'client closed' || this.reason === 'upstream closed') this.reason = reason;
    if (!this.ctx.websocket) {
      this.destroy(reason);
      return;
    }
    this.#startAway(reason);
    this.ctx.websocketClose ??= { code, side: 'sluice' };
    this.#engine?.goAway(code);
  }

  /**
   * @internal The engine ends the tunnel with close frames of its own (a guardrail broken): the
   * reason, the error-log line, the code its sender gets, and the grace of going away.
   */
  refuse({ reason, line, code, level }: Refusal): void {
    if (this.#goingAway) return;
    this.reason = reason;
    this.refusal = { level, line };
    this.ctx.websocketClose ??= { code, side: 'sluice' };
    this.#startAway(reason);
  }

  #startAway(reason: string): void {
    this.#goingAway = true;
    this.#awayTimer = setTimeout(() => this.destroy(reason), GOING_AWAY_GRACE_MS);
    this.#awayTimer.unref();
  }

  destroy(reason: string): void {
    if (!this.reason) this.reason = reason;
    this.#engine?.destroy();
  }

  /** @internal The engine is done: both sides are closed. `reason` counts only if none was set. */
  ended(reason = ''): void {
    if (!this.reason) this.reason = reason;
    this.#engine = null;
    if (this.#awayTimer) clearTimeout(this.#awayTimer);
    this.#onEnd.tunnelEnded(this, this.reason || 'closed');
  }
}
