import type { Socket } from 'node:net';
import { timerDelay } from '../core/timers.js';
import { FrameCursor } from '../websocket/frame-cursor.js';
import { encodeClose } from '../websocket/frame-writer.js';
import type { RequestContext } from './request-context.js';

/** What a tunnel reports when both of its sockets are gone. */
export type TunnelEnd = (tunnel: Tunnel, reason: string) => void;

const kTunnel = Symbol('sluice.tunnel');

type TunnelSocket = Socket & { [kTunnel]?: Tunnel };

/** How long a tunnel going away waits for the peers to finish the close handshake. */
export const GOING_AWAY_GRACE_MS = 2000;

/**
 * An established upgraded connection: a transparent byte pipe between the client and the
 * upstream. Bytes are counted and relayed as they come, each direction paused while the other
 * side's buffer is full (backpressure) and resumed on its 'drain'. A FIN is passed on while the
 * other direction keeps flowing (half-close); a reset or error on one side destroys the other.
 * The tunnel closes when no byte has moved either way for `idleTimeout` ms. Handlers are
 * module-level functions bound through a symbol on the socket, not closures per connection.
 *
 * A WebSocket tunnel also follows frame boundaries each way (headers only), so that on drain or
 * shutdown it can end each direction with a close 1001 frame of its own between two frames.
 */
export class Tunnel {
  readonly client: Socket;
  readonly upstream: Socket;
  readonly ctx: RequestContext;
  readonly #onEnd: TunnelEnd;
  readonly idleTimeout: number;
  reason = '';
  /** Frame boundaries client->upstream and upstream->client; null for non-WebSocket upgrades. */
  readonly up: FrameCursor | null;
  readonly down: FrameCursor | null;
  /** Set once goingAway() was called: data is relayed only up to the next frame boundary. */
  goingAway = false;
  #closeSentUp = false;
  #closeSentDown = false;
  #awayTimer: NodeJS.Timeout | null = null;
  #clientClosed = false;
  #upstreamClosed = false;

  constructor(client: Socket, upstream: Socket, ctx: RequestContext, idleTimeout: number, onEnd: TunnelEnd) {
    this.client = client;
    this.upstream = upstream;
    this.ctx = ctx;
    this.#onEnd = onEnd;
    this.idleTimeout = idleTimeout;
    this.up = ctx.websocket ? new FrameCursor() : null;
    this.down = ctx.websocket ? new FrameCursor() : null;
    (client as TunnelSocket)[kTunnel] = this;
    (upstream as TunnelSocket)[kTunnel] = this;
    // A FIN is passed on, not answered: a socket that is not half-open capable (one made by a
    // keep-alive Agent, say) would end its own write side and cut the other direction short.
    client.allowHalfOpen = true;
    upstream.allowHalfOpen = true;
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    client.on('data', clientOnData);
    client.on('end', clientOnEnd);
    client.on('drain', clientOnDrain);
    client.on('error', socketOnError);
    client.on('close', socketOnClose);
    client.on('timeout', socketOnTimeout);
    upstream.on('data', upstreamOnData);
    upstream.on('end', upstreamOnEnd);
    upstream.on('drain', upstreamOnDrain);
    upstream.on('error', socketOnError);
    upstream.on('close', socketOnClose);
    upstream.on('timeout', socketOnTimeout);
    // Reads and writes both reset a socket's timer, and every tunnelled byte is read from one
    // socket and written to the other, so the client socket's timer measures idleness both ways.
    if (idleTimeout > 0) client.setTimeout(timerDelay(idleTimeout));
    if (client.destroyed) this.closed(client);
    if (upstream.destroyed) this.closed(upstream);
    client.resume();
    upstream.resume();
  }

  /** Closes both sides at once (shutdown, drain). */
  destroy(reason: string): void {
    if (!this.reason) this.reason = reason;
    this.client.destroy();
    this.upstream.destroy();
  }

  /**
   * Ends the tunnel politely (drain after a reload, shutdown): each direction is relayed up to the
   * end of the frame in flight, then gets a close frame with code 1001 (RFC 6455 7.4.1, "going
   * away") — unmasked to the client, masked to the upstream — and both sides a FIN. Whatever does
   * not finish within GOING_AWAY_GRACE_MS is destroyed. A non-WebSocket tunnel is closed at once.
   */
  goAway(reason: string): void {
    if (this.goingAway) return;
    if (!this.reason) this.reason = reason;
    if (!this.up || !this.down) {
      this.destroy(reason);
      return;
    }
    this.goingAway = true;
    this.#awayTimer = setTimeout(() => this.destroy(reason), GOING_AWAY_GRACE_MS);
    this.#awayTimer.unref();
    if (this.up.atBoundary) this.sendClose(true);
    if (this.down.atBoundary) this.sendClose(false);
  }

  /** @internal While going away: relays a chunk up to the frame boundary, then the close frame. */
  relayUntilBoundary(chunk: Buffer, toUpstream: boolean): void {
    if (toUpstream ? this.#closeSentUp : this.#closeSentDown) return;
    const cursor = (toUpstream ? this.up : this.down) as FrameCursor;
    const target = toUpstream ? this.upstream : this.client;
    const cut = cursor.advanceToBoundary(chunk);
    if (cut === -1) {
      target.write(chunk);
      return;
    }
    if (cut > 0) target.write(chunk.subarray(0, cut));
    this.sendClose(toUpstream);
  }

  /** @internal */
  sendClose(toUpstream: boolean): void {
    if (toUpstream) {
      if (this.#closeSentUp) return;
      this.#closeSentUp = true;
      if (!this.upstream.destroyed) this.upstream.write(encodeClose(1001, 'going away', true));
    } else {
      if (this.#closeSentDown) return;
      this.#closeSentDown = true;
      if (!this.client.destroyed) this.client.write(encodeClose(1001, 'going away'));
    }
    if (this.#closeSentUp && this.#closeSentDown) {
      this.client.end();
      this.upstream.end();
    }
  }

  /** @internal Called once per socket when it is gone. */
  closed(socket: Socket): void {
    if (socket === this.client) {
      if (this.#clientClosed) return;
      this.#clientClosed = true;
    } else {
      if (this.#upstreamClosed) return;
      this.#upstreamClosed = true;
    }
    const other = socket === this.client ? this.upstream : this.client;
    if (!other.destroyed) {
      // The peer is gone: flush what is pending to the other side, then close it; a side that
      // will not take the rest within the idle timeout is destroyed.
      if (this.idleTimeout > 0) other.setTimeout(timerDelay(this.idleTimeout));
      if (other.writableEnded) other.destroySoon();
      else other.end(() => other.destroy());
    }
    if (this.#clientClosed && this.#upstreamClosed) {
      if (this.#awayTimer) clearTimeout(this.#awayTimer);
      this.#onEnd(this, this.reason || 'closed');
    }
  }
}

function tunnelOf(s: Socket): Tunnel {
  return (s as TunnelSocket)[kTunnel] as Tunnel;
}

function clientOnData(this: Socket, chunk: Buffer): void {
  const t = tunnelOf(this);
  t.ctx.bytesReceived += chunk.length;
  if (t.goingAway) {
    t.relayUntilBoundary(chunk, true);
    return;
  }
  t.up?.advance(chunk);
  if (!t.upstream.write(chunk)) this.pause();
}

function upstreamOnData(this: Socket, chunk: Buffer): void {
  const t = tunnelOf(this);
  t.ctx.bytesSent += chunk.length;
  if (t.goingAway) {
    t.relayUntilBoundary(chunk, false);
    return;
  }
  t.down?.advance(chunk);
  if (!t.client.write(chunk)) this.pause();
}

function clientOnDrain(this: Socket): void {
  tunnelOf(this).upstream.resume();
}

function upstreamOnDrain(this: Socket): void {
  tunnelOf(this).client.resume();
}

function clientOnEnd(this: Socket): void {
  const t = tunnelOf(this);
  if (!t.reason) t.reason = 'client closed';
  t.upstream.end();
}

function upstreamOnEnd(this: Socket): void {
  const t = tunnelOf(this);
  if (!t.reason) t.reason = 'upstream closed';
  t.client.end();
}

function socketOnTimeout(this: Socket): void {
  tunnelOf(this).destroy('idle timeout');
}

function socketOnError(this: Socket, err: Error): void {
  const t = tunnelOf(this);
  if (!t.reason) t.reason = `${this === t.client ? 'client' : 'upstream'} error: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
  // A reset on one side destroys the other: nothing more can be delivered either way.
  (this === t.client ? t.upstream : t.client).destroy();
}

function socketOnClose(this: Socket): void {
  tunnelOf(this).closed(this);
}
