import type { Socket } from 'node:net';
import { timerDelay } from '../../core/timers.js';
import { FrameCursor } from '../../websocket/frame-cursor.js';
import { encodeClose } from '../../websocket/frame-writer.js';
import type { NativeTunnels } from './native-tunnels.js';
import type { RequestContext } from '../context/request-context.js';

/** What a tunnel reports when both of its sockets are gone. */
export type TunnelEnd = (tunnel: Tunnel, reason: string) => void;

const kTunnel = Symbol('sluice.tunnel');

type TunnelSocket = Socket & { [kTunnel]?: Tunnel };

/** How long a tunnel going away waits for the peers to finish the close handshake. */
export const GOING_AWAY_GRACE_MS = 2000;

/** Where a tunnel may move to the native addon, and who counts it once its sockets are gone. */
export interface TunnelHost {
  /** Tunnels the addon holds: their client sockets have left the registry's socket set. */
  nativeTunnels: number;
}

/** The libuv handle under a plain TCP net.Socket (absent on TLS sockets and HTTP/2 streams). */
interface TcpHandle {
  fd?: number;
  reading?: boolean;
  readStop(): number;
}

function tcpFd(s: Socket): number {
  if ((s as { encrypted?: boolean }).encrypted === true) return -1;
  const fd = (s as unknown as { _handle?: TcpHandle | null })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/** Stops libuv reading the socket, as net.Socket#pause does for its own handles. */
function stopReading(s: Socket): void {
  const h = (s as unknown as { _handle: TcpHandle })._handle;
  if (h.reading !== false) {
    h.reading = false;
    h.readStop();
  }
}

/** Whether nothing of the tunnel is left in Node's buffers, so the descriptors can change hands. */
function quiet(s: Socket): boolean {
  return !s.destroyed && !s.connecting && s.readableLength === 0 && s.writableLength === 0
    && !s.readableEnded && !s.writableEnded && s.readable && s.writable;
}

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
 *
 * Where the native addon is available and both sides are plain TCP, the tunnel hands its two
 * descriptors to it as soon as nothing of it is left in Node's buffers (usually at once): the
 * addon's I/O thread then relays with the same semantics (native/sluice_tunnel.c), the two
 * net.Sockets are closed and freed, and this object keeps only the context, the counters' slot
 * and the end callback. `client`/`upstream` are null from then on.
 */
export class Tunnel {
  client: Socket | null;
  upstream: Socket | null;
  readonly ctx: RequestContext;
  readonly #onEnd: TunnelEnd;
  readonly idleTimeout: number;
  reason = '';
  /**
   * Frame boundaries client->upstream and upstream->client; null for non-WebSocket upgrades, and
   * once the native addon holds the tunnel (it follows them from there).
   */
  up: FrameCursor | null;
  down: FrameCursor | null;
  readonly websocket: boolean;
  /** Set once goingAway() was called: data is relayed only up to the next frame boundary. */
  goingAway = false;
  #closeSentUp = false;
  #closeSentDown = false;
  #awayTimer: NodeJS.Timeout | null = null;
  #clientClosed = false;
  #upstreamClosed = false;
  /** The addon's slot while it holds the sockets, else -1. */
  #slot = -1;
  #native: NativeTunnels | null;
  readonly #host: TunnelHost | null;
  /** Still in TypeScript though the addon could take it: try again once Node's buffers are empty. */
  wantsNative = false;

  /**
   * @param native - the addon to hand the sockets to when it can take them; null keeps the
   *   tunnel in TypeScript. @default null
   */
  constructor(client: Socket, upstream: Socket, ctx: RequestContext, idleTimeout: number, onEnd: TunnelEnd,
    native: NativeTunnels | null = null, host: TunnelHost | null = null) {
    this.client = client;
    this.upstream = upstream;
    this.ctx = ctx;
    this.#onEnd = onEnd;
    this.idleTimeout = idleTimeout;
    this.websocket = ctx.websocket;
    this.up = ctx.websocket ? new FrameCursor() : null;
    this.down = ctx.websocket ? new FrameCursor() : null;
    this.#host = host;
    this.#native = native !== null && tcpFd(client) >= 0 && tcpFd(upstream) >= 0 ? native : null;
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    if (this.#native !== null && this.#handOver()) return;
    (client as TunnelSocket)[kTunnel] = this;
    (upstream as TunnelSocket)[kTunnel] = this;
    // A FIN is passed on, not answered: a socket that is not half-open capable (one made by a
    // keep-alive Agent, say) would end its own write side and cut the other direction short.
    client.allowHalfOpen = true;
    upstream.allowHalfOpen = true;
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
    this.wantsNative = this.#native !== null;
    client.resume();
    upstream.resume();
  }

  /** True while the native addon holds the sockets. */
  get isNative(): boolean {
    return this.#slot >= 0;
  }

  /**
   * Moves the tunnel to the addon when nothing of it is buffered in Node: libuv stops reading,
   * the addon duplicates both descriptors, and the sockets are closed here (the connections stay
   * open through the duplicates). False when it cannot yet (or at all).
   */
  #handOver(): boolean {
    const { client, upstream } = this;
    const native = this.#native;
    if (native === null || client === null || upstream === null || this.goingAway) return false;
    if (!quiet(client) || !quiet(upstream)) return false;
    stopReading(client);
    stopReading(upstream);
    const slot = native.adopt(this, tcpFd(client), tcpFd(upstream), this.idleTimeout, this.up?.state() ?? null, this.down?.state() ?? null);
    if (slot < 0) {
      // The addon is full or out of descriptors: the tunnel stays here, and reads again on resume().
      this.#native = null;
      return false;
    }
    this.#slot = slot;
    this.wantsNative = false;
    this.ctx.countIn(native.counters, slot);
    if (this.#host) this.#host.nativeTunnels++;
    for (const s of [client, upstream]) {
      if ((s as TunnelSocket)[kTunnel] === this) {
        s.removeListener('data', s === client ? clientOnData : upstreamOnData);
        s.removeListener('end', s === client ? clientOnEnd : upstreamOnEnd);
        s.removeListener('drain', s === client ? clientOnDrain : upstreamOnDrain);
        s.removeListener('close', socketOnClose);
        s.removeListener('timeout', socketOnTimeout);
        s.setTimeout(0);
        (s as TunnelSocket)[kTunnel] = undefined;
      }
      // Keeps socketOnError (if any) away: destroying without an error emits none.
      s.destroy();
    }
    this.client = null;
    this.upstream = null;
    this.up = null;
    this.down = null;
    return true;
  }

  /** @internal Tries the hand-over again (after a chunk was relayed or a buffer drained). */
  retryNative(): void {
    if (!this.#handOver() && this.#native === null) this.wantsNative = false;
  }

  /** @internal The addon closed both descriptors. */
  nativeEnded(reason: string): void {
    this.ctx.countIn(null);
    this.#slot = -1;
    this.#clientClosed = true;
    this.#upstreamClosed = true;
    if (this.#host) this.#host.nativeTunnels--;
    if (!this.reason) this.reason = reason;
    if (this.#awayTimer) clearTimeout(this.#awayTimer);
    this.#onEnd(this, this.reason || 'closed');
  }

  /** Closes both sides at once (shutdown, drain). */
  destroy(reason: string): void {
    if (!this.reason) this.reason = reason;
    if (this.#slot >= 0) {
      this.#native?.destroy(this.#slot);
      return;
    }
    this.client?.destroy();
    this.upstream?.destroy();
  }

  /**
   * Ends the tunnel politely (drain after a reload, shutdown): each direction is relayed up to the
   * end of the frame in flight, then gets a close frame with code 1001 (RFC 6455 7.4.1, "going
   * away") — unmasked to the client, masked to the upstream — and both sides a FIN. A direction
   * whose FIN was already passed on (half-close) gets nothing more: its FIN said the last word.
   * Whatever does not finish within GOING_AWAY_GRACE_MS is destroyed. A non-WebSocket tunnel is
   * closed at once.
   */
  goAway(reason: string): void {
    if (this.goingAway) return;
    // A half-close does not end a tunnel, going away does: its reason replaces the FIN's.
    if (!this.reason || this.reason === 'client closed' || this.reason === 'upstream closed') this.reason = reason;
    if (!this.websocket) {
      this.destroy(reason);
      return;
    }
    this.goingAway = true;
    this.wantsNative = false;
    this.#awayTimer = setTimeout(() => this.destroy(reason), GOING_AWAY_GRACE_MS);
    this.#awayTimer.unref();
    if (this.#slot >= 0) {
      this.#native?.goAway(this.#slot, encodeClose(1001, 'going away', true), encodeClose(1001, 'going away'));
      return;
    }
    // A direction already ended (half-close) is done wherever its frame cursor stopped.
    if (this.up?.atBoundary || this.upstream?.writableEnded) this.sendClose(true);
    if (this.down?.atBoundary || this.client?.writableEnded) this.sendClose(false);
  }

  /** @internal While going away: relays a chunk up to the frame boundary, then the close frame. */
  relayUntilBoundary(chunk: Buffer, toUpstream: boolean): void {
    if (toUpstream ? this.#closeSentUp : this.#closeSentDown) return;
    const cursor = (toUpstream ? this.up : this.down) as FrameCursor;
    const target = (toUpstream ? this.upstream : this.client) as Socket;
    const cut = cursor.advanceToBoundary(chunk);
    if (cut === -1) {
      target.write(chunk);
      return;
    }
    if (cut > 0) target.write(chunk.subarray(0, cut));
    this.sendClose(toUpstream);
  }

  /**
   * @internal Ends a direction while going away: with a close frame, unless its receiver was ended
   * already (the source's FIN passed on, or the source gone), where a write would be a write after
   * end, an error that destroys both sides.
   */
  sendClose(toUpstream: boolean): void {
    const client = this.client as Socket;
    const upstream = this.upstream as Socket;
    if (toUpstream) {
      if (this.#closeSentUp) return;
      this.#closeSentUp = true;
      if (!upstream.writableEnded && !upstream.destroyed) upstream.write(encodeClose(1001, 'going away', true));
    } else {
      if (this.#closeSentDown) return;
      this.#closeSentDown = true;
      if (!client.writableEnded && !client.destroyed) client.write(encodeClose(1001, 'going away'));
    }
    if (this.#closeSentUp && this.#closeSentDown) {
      client.end();
      upstream.end();
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
    const other = (socket === this.client ? this.upstream : this.client) as Socket;
    // Going away, once both directions are done and the other side has had its FIN, it is read
    // (its bytes dropped) until it ends too, as in the addon, rather than reset while it may still
    // be finishing what it sends; the going-away timer bounds the wait.
    const draining = this.goingAway && this.#closeSentUp && this.#closeSentDown && other.writableEnded;
    if (draining) other.resume();
    else if (!other.destroyed) {
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
  if (!(t.upstream as Socket).write(chunk)) this.pause();
  else if (t.wantsNative) t.retryNative();
}

function upstreamOnData(this: Socket, chunk: Buffer): void {
  const t = tunnelOf(this);
  t.ctx.bytesSent += chunk.length;
  if (t.goingAway) {
    t.relayUntilBoundary(chunk, false);
    return;
  }
  t.down?.advance(chunk);
  if (!(t.client as Socket).write(chunk)) this.pause();
  else if (t.wantsNative) t.retryNative();
}

function clientOnDrain(this: Socket): void {
  const t = tunnelOf(this);
  (t.upstream as Socket).resume();
  if (t.wantsNative) t.retryNative();
}

function upstreamOnDrain(this: Socket): void {
  const t = tunnelOf(this);
  (t.client as Socket).resume();
  if (t.wantsNative) t.retryNative();
}

function clientOnEnd(this: Socket): void {
  const t = tunnelOf(this);
  if (!t.reason) t.reason = 'client closed';
  (t.upstream as Socket).end();
  // Going away, this direction is done: its FIN stands for its close frame.
  if (t.goingAway) t.sendClose(true);
}

function upstreamOnEnd(this: Socket): void {
  const t = tunnelOf(this);
  if (!t.reason) t.reason = 'upstream closed';
  (t.client as Socket).end();
  if (t.goingAway) t.sendClose(false);
}

function socketOnTimeout(this: Socket): void {
  tunnelOf(this).destroy('idle timeout');
}

function socketOnError(this: Socket, err: Error): void {
  const t = tunnelOf(this);
  if (!t.reason) t.reason = `${this === t.client ? 'client' : 'upstream'} error: ${(err as NodeJS.ErrnoException).code ?? err.message}`;
  // A reset on one side destroys the other: nothing more can be delivered either way.
  (this === t.client ? t.upstream : t.client)?.destroy();
}

function socketOnClose(this: Socket): void {
  tunnelOf(this).closed(this);
}
