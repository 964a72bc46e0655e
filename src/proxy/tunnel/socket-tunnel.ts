import type { Socket } from 'node:net';
import { HeldUpstream } from '../client/held-upstream.js';
import type { RequestContext } from '../context/request-context.js';
import { SocketLeg } from './legs.js';
import { START_CURSOR } from '../../websocket/frame-guard.js';
import type { TunnelGuardrails } from './guardrails.js';
import type { NativeOwner, NativeSession, NativeTunnels, NativeViolation } from './native-tunnels.js';
import { pingRefusal, rateRefusal, sizeRefusal } from './refusals.js';
import { Relay } from './relay.js';
import type { HandOver } from './relay.js';
import { Tunnel, goingAwayFrame, goingAwayFrameToClient } from './tunnel.js';
import type { ProxyTunnel, TunnelEngine, TunnelHost, TunnelOptions } from './tunnel.js';

/** What {@link openSocketTunnel} takes besides the common options. */
export interface SocketTunnelOptions extends TunnelOptions {
  /** The addon to hand the sockets to when it can take them; null keeps the tunnel in TypeScript. @default null */
  native?: NativeTunnels | null;
  /** Counts the tunnels the addon holds (the connection registry). @default null */
  host?: TunnelHost | null;
}

const NOTHING = Buffer.alloc(0);

/**
 * A tunnel between the client's connection and the upstream's (an HTTP/1.1 upgrade). The relay
 * (relay.ts) moves its bytes; where the native addon is available and both sides are plain TCP,
 * the tunnel hands its two descriptors to the addon as soon as nothing of it is left in Node's
 * buffers (usually at once): the addon's I/O thread then relays with the same semantics
 * (native/sluice_tunnel.c), the two net.Sockets are closed and freed, and the tunnel keeps only
 * the context, the counters' slot and the end callback. When nothing crossed with the handshake
 * (the usual case) the addon is asked before any relay is built, with the frame cursors a fresh
 * relay would give it; the relay is built only for a tunnel that stays in TypeScript, for now or
 * for good.
 */
export function openSocketTunnel(client: Socket, connection: Socket | HeldUpstream, ctx: RequestContext, options: SocketTunnelOptions): ProxyTunnel {
  const tunnel = new Tunnel(ctx, options.onEnd);
  const guardrails = options.guardrails ?? null;
  const clientHead = options.clientHead ?? NOTHING;
  const upstreamHead = options.upstreamHead ?? NOTHING;
  const native = options.native ?? null;
  const host = options.host ?? null;
  if (connection instanceof HeldUpstream) {
    // The addon ran the upstream leg and holds its descriptor: the relay takes it as it is, with
    // the server's bytes after its 101; where it cannot, it becomes a net.Socket and the tunnel
    // goes the usual way (`upstreamHead` is those same bytes).
    if (native !== null && moveHeldToAddon(tunnel, client, connection, clientHead, native, host, options.idleTimeout, guardrails)) return tunnel;
  }
  const upstream = connection instanceof HeldUpstream ? connection.toSocket() : connection;
  const nativeFit = native !== null && tcpFd(client) >= 0 && tcpFd(upstream) >= 0;
  const first = nativeFit && clientHead.length === 0 && upstreamHead.length === 0
    ? moveToAddon(tunnel, null, client, upstream, native, host, options.idleTimeout, guardrails)
    : null;
  if (first === 'moved') return tunnel;
  const relay = new Relay(tunnel, new SocketLeg(client, 'client'), new SocketLeg(upstream, 'upstream'), options.idleTimeout, guardrails);
  relay.sendAhead(clientHead, upstreamHead);
  tunnel.run(relay);
  if (!nativeFit) {
    relay.start();
    return tunnel;
  }
  const handOver: HandOver = () => moveToAddon(tunnel, relay, client, upstream, native, host, options.idleTimeout, guardrails);
  // Asked already (nothing has changed since, sendAhead had nothing to send), or now.
  const result = first ?? handOver();
  if (result !== 'moved') relay.start(result === 'not yet' ? handOver : null);
  return tunnel;
}

/**
 * A tunnel whose client has no net.Socket (front/native-client.ts): the relay adopts the client's
 * descriptor as it is (not a duplicate: the caller lets go of it, closing nothing), with the
 * registration of its watch `clientWatch` in the addon's epoll (-1: none), and the upstream
 * socket's, as moveToAddon does when nothing has been relayed yet, or the descriptor of the
 * upstream leg the addon ran (HeldUpstream), as moveHeldToAddon does. Null (nothing changed) when
 * the addon cannot take it: no addon, bytes that came with the 101 (held: only with guardrails),
 * an upstream socket that is not plain TCP or has bytes in Node's buffers, or a full addon.
 */
export function adoptClientDescriptor(
  clientFd: number, clientWatch: number, upstream: Socket | HeldUpstream, ctx: RequestContext, options: SocketTunnelOptions,
): ProxyTunnel | null {
  const native = options.native ?? null;
  if (native === null) return null;
  const tunnel = new Tunnel(ctx, options.onEnd);
  const guardrails = options.guardrails ?? null;
  const host = options.host ?? null;
  if (upstream instanceof HeldUpstream) {
    return adoptHeld(tunnel, clientFd, upstream, native, host, options.idleTimeout, guardrails, clientWatch) ? tunnel : null;
  }
  if ((options.upstreamHead?.length ?? 0) > 0 || tcpFd(upstream) < 0 || !quiet(upstream)) return null;
  upstream.setNoDelay(true);
  stopReading(upstream);
  const cursor = ctx.websocket ? START_CURSOR : null;
  if (!runInAddon(tunnel, native, host, guardrails, clientFd, tcpFd(upstream), options.idleTimeout, cursor, cursor, false, null, clientWatch)) {
    startReading(upstream);
    return null;
  }
  letGo(upstream);
  return tunnel;
}

/**
 * The addon adopts the two descriptors (the client's as a duplicate unless `clientWatch` is a
 * number, an accepted descriptor taken as it is with its watch's registration; the upstream's too
 * unless `ownUpstream`, the leg's, taken as it is, with `toClient` passed on first) and the tunnel
 * runs on its engine; false when the addon is full or out of descriptors (nothing changed).
 */
function runInAddon(
  tunnel: Tunnel, native: NativeTunnels, host: TunnelHost | null, guardrails: TunnelGuardrails | null, clientFd: number, upstreamFd: number,
  idleTimeout: number, up: readonly number[] | null, down: readonly number[] | null, ownUpstream = false, toClient: Buffer | null = null,
  clientWatch: number | null = null,
): boolean {
  const engine = new NativeEngine(tunnel, native, host, guardrails);
  const slot = native.adopt(engine, clientFd, upstreamFd, idleTimeout, up, down, guardrails?.native ?? null, ownUpstream, toClient, clientWatch);
  if (slot < 0) return false;
  engine.slot = slot;
  tunnel.ctx.countIn(native.counters, slot);
  if (host) host.nativeTunnels++;
  tunnel.run(engine);
  return true;
}

/** The libuv handle under a plain TCP net.Socket (absent on TLS sockets and HTTP/2 streams). */
interface TcpHandle {
  fd?: number;
  reading?: boolean;
  readStart(): number;
  readStop(): number;
}

function handleOf(s: Socket): TcpHandle {
  return (s as unknown as { _handle: TcpHandle })._handle;
}

export function tcpFd(s: Socket): number {
  if ((s as { encrypted?: boolean }).encrypted === true) return -1;
  const fd = (s as unknown as { _handle?: TcpHandle | null })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

/** Stops libuv reading the socket, as net.Socket#pause does for its own handles. */
function stopReading(s: Socket): void {
  const h = handleOf(s);
  if (h.reading !== false) {
    h.reading = false;
    h.readStop();
  }
}

/** Undoes stopReading (the addon could not take the sockets after all). */
function startReading(s: Socket): void {
  const h = handleOf(s);
  if (h.reading !== true) {
    h.reading = true;
    h.readStart();
  }
}

/** Whether nothing of the tunnel is left in Node's buffers, so the descriptors can change hands. */
function quiet(s: Socket): boolean {
  return !s.destroyed && !s.connecting && s.readableLength === 0 && s.writableLength === 0
    && !s.readableEnded && !s.writableEnded && s.readable && s.writable;
}

/**
 * Moves the tunnel to the addon when nothing of it is buffered in Node: libuv stops reading, the
 * addon duplicates both descriptors, and the sockets are closed here (the connections stay open
 * through the duplicates). `relay` null: none was built yet (nothing has been relayed), so the
 * frame cursors are at their start.
 */
function moveToAddon(
  tunnel: Tunnel, relay: Relay | null, client: Socket, upstream: Socket, native: NativeTunnels, host: TunnelHost | null, idleTimeout: number,
  guardrails: TunnelGuardrails | null,
): 'moved' | 'not yet' | 'never' {
  if (tunnel.goingAway) return 'never';
  if (!quiet(client) || !quiet(upstream) || (relay !== null && !relay.canHandOver)) return 'not yet';
  if (relay === null) {
    // What a relay's legs would have made sure of: the addon writes on these same sockets.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
  }
  stopReading(client);
  stopReading(upstream);
  const websocket = tunnel.ctx.websocket;
  const up = relay !== null ? relay.cursorState('client') : websocket ? START_CURSOR : null;
  const down = relay !== null ? relay.cursorState('upstream') : websocket ? START_CURSOR : null;
  if (!runInAddon(tunnel, native, host, guardrails, tcpFd(client), tcpFd(upstream), idleTimeout, up, down)) {
    // The addon is full or out of descriptors: the tunnel stays in TypeScript.
    startReading(client);
    startReading(upstream);
    return 'never';
  }
  if (relay !== null) relay.detach();
  else {
    letGo(client);
    letGo(upstream);
  }
  return 'moved';
}

/**
 * Hands the client socket and the upstream leg's descriptor to the addon before anything was
 * relayed: the client's bytes sent after its head (none, usually) and guardrails with server bytes
 * to pass on first (the addon's guarded path reads every byte itself) keep the tunnel in
 * TypeScript. False: the caller makes a net.Socket of the descriptor.
 */
function moveHeldToAddon(
  tunnel: Tunnel, client: Socket, held: HeldUpstream, clientHead: Buffer, native: NativeTunnels, host: TunnelHost | null, idleTimeout: number,
  guardrails: TunnelGuardrails | null,
): boolean {
  if (clientHead.length > 0) return false;
  const clientFd = tcpFd(client);
  if (clientFd < 0 || !quiet(client)) return false;
  client.setNoDelay(true);
  stopReading(client);
  if (!adoptHeld(tunnel, clientFd, held, native, host, idleTimeout, guardrails)) {
    startReading(client);
    return false;
  }
  letGo(client);
  return true;
}

/**
 * The relay adopts a client descriptor (a duplicate, or as it is with `clientWatch` as runInAddon
 * takes it) with the upstream leg's descriptor as it is and the server's bytes after its 101 to
 * pass on first; false when it cannot (going away, those bytes with guardrails, whose guarded path
 * reads every byte itself, a full addon).
 */
function adoptHeld(
  tunnel: Tunnel, clientFd: number, held: HeldUpstream, native: NativeTunnels, host: TunnelHost | null, idleTimeout: number,
  guardrails: TunnelGuardrails | null, clientWatch: number | null = null,
): boolean {
  if (tunnel.goingAway || (held.after.length > 0 && guardrails !== null)) return false;
  const cursor = tunnel.ctx.websocket ? START_CURSOR : null;
  const toClient = held.after.length > 0 ? held.after : null;
  if (!runInAddon(tunnel, native, host, guardrails, clientFd, held.fd, idleTimeout, cursor, cursor, true, toClient, clientWatch)) return false;
  held.givenAway();
  return true;
}

/**
 * A socket the addon took before a relay had it: closed here as a relay's leg lets go of it
 * (legs.ts SocketLeg#detach), the connection living on in the addon's duplicate.
 */
function letGo(s: Socket): void {
  s.on('error', noop);
  s.setTimeout(0);
  // Destroying without an error emits none.
  s.destroy();
}

function noop(): void {}

/** A tunnel while the addon holds its descriptors. */
class NativeEngine implements TunnelEngine, NativeOwner {
  readonly isNative = true;
  slot = -1;
  readonly #tunnel: Tunnel;
  readonly #native: NativeTunnels;
  readonly #host: TunnelHost | null;
  readonly #guardrails: TunnelGuardrails | null;

  constructor(tunnel: Tunnel, native: NativeTunnels, host: TunnelHost | null, guardrails: TunnelGuardrails | null) {
    this.#tunnel = tunnel;
    this.#native = native;
    this.#host = host;
    this.#guardrails = guardrails;
  }

  /** The addon saw a guardrail broken and sent the close frames: the tunnel logs, counts and times it as the relay's. */
  nativeRefused(violation: NativeViolation, side: 'client' | 'upstream', size: number, session: NativeSession): void {
    const g = this.#guardrails;
    if (g === null) return;
    const ctx = this.#tunnel.ctx;
    // A close frame that came before the refusal was the session's first.
    if (ctx.websocketClose === null && session.closeSide !== null) ctx.websocketClose = { code: session.closeCode, side: session.closeSide };
    if (violation === 'ping' && g.pings !== null) this.#tunnel.refuse(pingRefusal(side, g.pings));
    else if (violation === 'rate' && g.rate !== null) this.#tunnel.refuse(rateRefusal(side, g.rate));
    else if (violation === 'frame' || violation === 'message') this.#tunnel.refuse(sizeRefusal(side, violation, size, g.limits));
  }

  goAway(code: number): void {
    this.#native.goAway(this.slot, goingAwayFrame(true), goingAwayFrameToClient(code));
  }

  destroy(): void {
    this.#native.destroy(this.slot);
  }

  /** The addon closed both descriptors. */
  nativeEnded(reason: string, session: NativeSession): void {
    const ctx = this.#tunnel.ctx;
    ctx.countIn(null);
    // On top of what the relay counted before the addon took the tunnel.
    ctx.websocketMessagesIn += session.messagesIn;
    ctx.websocketMessagesOut += session.messagesOut;
    if (ctx.websocketClose === null && session.closeSide !== null) ctx.websocketClose = { code: session.closeCode, side: session.closeSide };
    if (this.#host) {
      this.#host.nativeTunnels--;
      this.#host.released?.();
    }
    this.#tunnel.ended(reason);
  }
}
