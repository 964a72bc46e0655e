/**
 * The two ends of a TypeScript tunnel. A leg is what the relay reads from and writes to: a
 * net.Socket (the client's or the upstream's connection) or the client's HTTP/2 stream (RFC 8441).
 * The relay (relay.ts) holds the rules; a leg says how its kind writes, ends, pauses, fails and
 * times out. Handlers are module-level functions bound through a symbol on the socket or stream,
 * not closures per connection.
 */
import { constants as h2 } from 'node:http2';
import type { ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import { timerDelay } from '../../core/timers.js';
import type { FrameGuard } from '../../websocket/frame-guard.js';

export type Side = 'client' | 'upstream';

/** What a leg reports to the relay that owns it. */
export interface LegEvents {
  /** Bytes read from `leg`. */
  legData(leg: Leg, chunk: Buffer): void;
  /** `leg` can take more (its write buffer drained). */
  legDrained(leg: Leg): void;
  /** `leg`'s peer ended its side: FIN or END_STREAM. */
  legEnded(leg: Leg): void;
  /**
   * `leg` failed (an error, a reset, a close before its end arrived): the other leg is aborted.
   * `reason` (null: none to give) is the tunnel's unless it has one; with `replacesEnd`, it also
   * replaces the end `leg` reported before ("client closed").
   */
  legFailed(leg: Leg, reason: string | null, replacesEnd: boolean): void;
  /** `leg` is closed for good. */
  legClosed(leg: Leg): void;
  /** Nothing moved through `leg` for the idle timeout. */
  legIdle(): void;
}

const kLeg = Symbol('sluice.leg');

type Carrier = { [kLeg]?: Leg };

function legOf(carrier: object): Leg {
  return (carrier as Carrier)[kLeg] as Leg;
}

function noop(): void {}

/** One end of a relay. The fields below the side are the relay's state for the bytes read from it. */
export abstract class Leg {
  readonly side: Side;
  /** The relay, set when it takes the leg. */
  events: LegEvents | null = null;
  /** The leg at the other end. */
  other: Leg = this;
  /** Frame boundaries, limits and session figures of the bytes read from this leg (WebSocket only). */
  guard: FrameGuard | null = null;
  /** The close frame that ends the direction towards this leg's peer, when not 1001 (a guardrail's). */
  closeFrame: Buffer | null = null;
  /** Going away: the direction read from this leg was ended (close frame, or its own end). */
  awayDone = false;
  /** Its end came while messages were held back for websocket_message_rate: passed on after them. */
  endHeld = false;
  /** Its 'close' was seen. */
  closed = false;

  constructor(side: Side) {
    this.side = side;
  }

  /** Writes; false when the receiver is full (wait for legDrained). */
  abstract write(chunk: Buffer): boolean;
  abstract pause(): void;
  abstract resume(): void;
  /** Passes an end on (FIN, END_STREAM), unless gone. */
  abstract end(): void;
  /** Destroyed or closed: nothing more can be written or read. */
  abstract get gone(): boolean;
  /** An end was written (nothing may follow it). */
  abstract get writableEnded(): boolean;
  /** Starts reporting to `events` and flowing. */
  abstract attach(): void;
  /** Stops reporting (the native addon took the sockets over) and lets go of the connection. */
  abstract detach(): void;
  /** Reports legIdle once nothing has been read or written for `ms` (0: never). */
  abstract setIdleTimeout(ms: number): void;
  /** Closes now (the tunnel is destroyed: idle timeout, shutdown). */
  abstract destroy(): void;
  /** Closes now because the other leg failed. */
  abstract abort(): void;
  /** The other leg closed cleanly: writes what is pending, then closes. */
  abstract finish(idleMs: number): void;
}

/** A TCP or TLS connection. */
export class SocketLeg extends Leg {
  readonly socket: Socket;
  /**
   * The other leg is an HTTP/2 stream. RFC 9113 8.5 maps a stream error to a TCP reset and a TCP
   * reset or error to CONNECT_ERROR; a 'close' that came before the FIN is such an error too, as
   * the stream has no way to say "closed, but not cleanly" other than a reset. Between two sockets
   * that close passes on as an end of its own, what was pending delivered first.
   */
  readonly facesStream: boolean;

  /** @param facesStream - see {@link SocketLeg.facesStream}. @default false */
  constructor(socket: Socket, side: Side, facesStream = false) {
    super(side);
    this.socket = socket;
    this.facesStream = facesStream;
    socket.setNoDelay(true);
  }

  write(chunk: Buffer): boolean {
    return this.socket.write(chunk);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  end(): void {
    if (!this.socket.destroyed) this.socket.end();
  }

  get gone(): boolean {
    return this.socket.destroyed;
  }

  get writableEnded(): boolean {
    return this.socket.writableEnded;
  }

  attach(): void {
    const s = this.socket;
    (s as Carrier)[kLeg] = this;
    // A FIN is passed on, not answered: a socket that is not half-open capable (one made by a
    // keep-alive Agent, say) would end its own write side and cut the other direction short.
    s.allowHalfOpen = true;
    s.on('data', legOnData);
    s.on('end', legOnEnd);
    s.on('drain', legOnDrain);
    s.on('error', socketOnError);
    s.on('close', socketOnClose);
    s.on('timeout', legOnTimeout);
  }

  detach(): void {
    const s = this.socket;
    s.removeListener('data', legOnData);
    s.removeListener('end', legOnEnd);
    s.removeListener('drain', legOnDrain);
    s.removeListener('error', socketOnError);
    s.removeListener('close', socketOnClose);
    s.removeListener('timeout', legOnTimeout);
    s.on('error', noop);
    s.setTimeout(0);
    (s as Carrier)[kLeg] = undefined;
    // Destroying without an error emits none: the connection lives on in the addon's duplicate.
    s.destroy();
  }

  setIdleTimeout(ms: number): void {
    if (ms > 0) this.socket.setTimeout(timerDelay(ms));
  }

  destroy(): void {
    this.socket.destroy();
  }

  abort(): void {
    if (this.facesStream) resetSocket(this.socket);
    else this.socket.destroy();
  }

  finish(idleMs: number): void {
    const s = this.socket;
    // A side that will not take the rest within the idle timeout is destroyed.
    this.setIdleTimeout(idleMs);
    if (s.writableEnded) s.destroySoon();
    else s.end(() => s.destroy());
  }
}

/**
 * Passes an error on as a TCP reset. Node can reset a plain TCP socket whose write side is still
 * open (libuv refuses a reset after a shutdown, and the socket would never close); a TLS one (an
 * https upstream) or a half-closed one is destroyed instead.
 */
function resetSocket(socket: Socket): void {
  if (socket.destroyed) return;
  try {
    if ('encrypted' in socket || socket.writableEnded) socket.destroy();
    else socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/**
 * The client's HTTP/2 stream of an RFC 8441 tunnel. Reading it paused holds back WINDOW_UPDATE,
 * so the client's sending stops at its window (flow control as backpressure); a reset of the
 * stream (RST_STREAM with any code but NO_ERROR) is its failure, and it is aborted with
 * CONNECT_ERROR (RFC 9113 8.5).
 */
export class StreamLeg extends Leg {
  readonly stream: ServerHttp2Stream;

  constructor(stream: ServerHttp2Stream) {
    super('client');
    this.stream = stream;
  }

  write(chunk: Buffer): boolean {
    return this.stream.write(chunk);
  }

  pause(): void {
    this.stream.pause();
  }

  resume(): void {
    this.stream.resume();
  }

  end(): void {
    if (!this.gone) this.stream.end();
  }

  get gone(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  get writableEnded(): boolean {
    return this.stream.writableEnded;
  }

  attach(): void {
    const s = this.stream;
    (s as Carrier)[kLeg] = this;
    s.on('data', legOnData);
    s.on('end', legOnEnd);
    s.on('drain', legOnDrain);
    // A reset is reported by 'close' (its rstCode); Node's stream error for it says no more.
    s.on('error', noop);
    s.on('close', streamOnClose);
    s.on('timeout', legOnTimeout);
  }

  detach(): void {
    // The addon takes plain TCP sockets only.
  }

  setIdleTimeout(ms: number): void {
    if (ms > 0) this.stream.setTimeout(timerDelay(ms));
  }

  destroy(): void {
    if (!this.gone) this.stream.close(h2.NGHTTP2_CANCEL);
  }

  abort(): void {
    if (!this.gone) this.stream.close(h2.NGHTTP2_CONNECT_ERROR);
  }

  finish(): void {
    this.end();
  }
}

function legOnData(this: object, chunk: Buffer): void {
  const leg = legOf(this);
  (leg.events as LegEvents).legData(leg, chunk);
}

function legOnDrain(this: object): void {
  const leg = legOf(this);
  (leg.events as LegEvents).legDrained(leg);
}

function legOnEnd(this: object): void {
  const leg = legOf(this);
  (leg.events as LegEvents).legEnded(leg);
}

function legOnTimeout(this: object): void {
  (legOf(this).events as LegEvents).legIdle();
}

function socketOnError(this: Socket, err: NodeJS.ErrnoException): void {
  const leg = legOf(this);
  (leg.events as LegEvents).legFailed(leg, `${leg.side} error: ${err.code ?? err.message}`, false);
}

function socketOnClose(this: Socket, hadError: boolean): void {
  const leg = legOf(this) as SocketLeg;
  // The relay found it closed already when it started.
  if (leg.closed) return;
  const events = leg.events as LegEvents;
  if (!hadError && !this.readableEnded && leg.facesStream) events.legFailed(leg, null, false);
  events.legClosed(leg);
}

function streamOnClose(this: ServerHttp2Stream): void {
  const leg = legOf(this);
  if (leg.closed) return;
  const events = leg.events as LegEvents;
  // A reset says more than the END_STREAM some clients send just before it.
  if (this.rstCode !== h2.NGHTTP2_NO_ERROR) events.legFailed(leg, `client reset (${this.rstCode})`, true);
  events.legClosed(leg);
}
