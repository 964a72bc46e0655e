/**
 * The client of a WebSocket handshake the addon accepted and read (src/server/native-accept.ts),
 * before Node ever makes a net.Socket for it: a descriptor and the figures the session reads of
 * a socket (addresses, bytes read and written, `'close'`), which the registry, the router, the
 * request context and the upgrade front end (h1-upgrade.ts) take in place of one.
 *
 * - The session routes, checks limits and header rules, and proxies as for any handshake; while
 *   the upstream answers, the addon watches the descriptor (EPOLLRDHUP/HUP/ERR; the watch started
 *   when the addon handed the connection over): a client that goes away is `'end'` here once the
 *   session reads the client (`resume`), as on a socket, so the session ends with 499 and the
 *   upstream connection is closed.
 * - On an accepted 101 the addon writes the client's 101 head (`send`) and the relay adopts this
 *   descriptor as it is, with the watch's registration in its epoll, and the upstream socket's
 *   (`openTunnel`): no net.Socket, no libuv handle, no stream for the client at any point, and
 *   one descriptor with one epoll registration from accept to the tunnel's end.
 * - Anything else that writes to the client (a local answer: return, deny, a limit's 503, 502/504,
 *   error_page, a non-101 upstream answer; a body to read; a 101 the kernel took only part of)
 *   first turns the descriptor into a net.Socket (`materialize`), which takes the client's place
 *   in the registry and passes its events on to this object's listeners: from there everything is
 *   exactly the upgrade front end's answer on a socket.
 */
import { EventEmitter } from 'node:events';
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { HeldUpstream } from '../client/held-upstream.js';
import type { RequestContext } from '../context/request-context.js';
import { adoptClientDescriptor } from '../tunnel/socket-tunnel.js';
import type { SocketTunnelOptions } from '../tunnel/socket-tunnel.js';
import type { ProxyTunnel } from '../tunnel/tunnel.js';

/** What the addon side offers a native client (src/server/native-accept.ts implements it). */
export interface NativeClientHost {
  /** Calls `gone` once when the client goes away; a watch id, or -1. */
  watch(fd: number, gone: () => void): number;
  /** Calls `gone` once when the client of watch `id` (started by the addon at the hand-over) goes away. */
  claim(id: number, gone: () => void): void;
  /** Ends a watch: the descriptor leaves the addon's epoll. */
  unwatch(id: number): void;
  /** The relay took the watch's registration with the descriptor: nothing is left to end. */
  forget(id: number): void;
  /** Writes what it can of `data` now: the bytes written, or -errno. */
  send(fd: number, data: Buffer): number;
  /** A net.Socket on the descriptor, counted by its server (`preRead` bytes already read). */
  socketFor(fd: number, preRead: number): Socket;
  /** The connection's socket changes (the registry's maps follow it). */
  replaced(from: NativeClient, to: Socket): void;
}

/** Counts over the process's life (the tests check which path answered). */
export const nativeClientCounts = { handshakes: 0, tunnels: 0, materialized: 0 };

/**
 * The socket's events this client passes on once it is one. Not 'data': a listener would make the
 * socket flow before whoever reads it (a body, a tunnel's relay) is there.
 */
const FORWARDED = ['end', 'close', 'error', 'drain', 'timeout'] as const;

export class NativeClient extends EventEmitter {
  readonly fd: number;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly #host: NativeClientHost;
  readonly #read: number;
  #real: Socket | null = null;
  #watch: number;
  #written = 0;
  #closed = false;
  /** The session reads the client (resume): a client gone is `'end'` from then on. */
  #reading = false;
  /** The watch saw the client go away. */
  #left = false;

  /** `watch`: the addon's watch on `fd` since the hand-over (-1: none, one starts at `resume`). */
  constructor(
    host: NativeClientHost, fd: number, remoteAddress: string, remotePort: number, localAddress: string, localPort: number, bytesRead: number,
    watch = -1,
  ) {
    super();
    this.#host = host;
    this.fd = fd;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    this.localAddress = localAddress;
    this.localPort = localPort;
    this.#read = bytesRead;
    this.#watch = watch;
    if (watch >= 0) host.claim(watch, () => this.#gone());
  }

  get bytesRead(): number {
    // The socket's own count starts after what the addon read (connections.ts, notePreRead).
    return this.#real !== null ? this.#real.bytesRead + this.#read : this.#read;
  }

  get bytesWritten(): number {
    return this.#real !== null ? this.#real.bytesWritten : this.#written;
  }

  get destroyed(): boolean {
    return this.#real !== null ? this.#real.destroyed : this.#closed;
  }

  get writable(): boolean {
    return this.#real !== null ? this.#real.writable : !this.#closed;
  }

  get materialized(): boolean {
    return this.#real !== null;
  }

  /** The net.Socket this client becomes (made once, on the first write that is not the 101). */
  materialize(): Socket {
    if (this.#real !== null) return this.#real;
    if (this.#closed) {
      // Its descriptor is closed already: a socket that is as destroyed as this client is.
      const dead = new Socket();
      dead.destroy();
      return dead;
    }
    this.#unwatch();
    nativeClientCounts.materialized++;
    const real = this.#host.socketFor(this.fd, this.#read);
    this.#real = real;
    for (const name of FORWARDED) real.on(name, (...args: unknown[]) => this.emit(name, ...args));
    this.#host.replaced(this, real);
    return real;
  }

  /**
   * The session reads the client (the upgrade front end's `resume`): a client that went away is
   * `'end'` from here (on the next tick when it went before). Where the addon could not watch the
   * descriptor at the hand-over, watching starts here.
   */
  resume(): this {
    if (this.#real !== null) this.#real.resume();
    else if (!this.#closed) {
      if (this.#watch < 0) this.#watch = this.#host.watch(this.fd, () => this.#gone());
      if (!this.#reading) {
        this.#reading = true;
        if (this.#left) process.nextTick(() => this.#gone());
      }
    }
    return this;
  }

  pause(): this {
    this.#real?.pause();
    return this;
  }

  isPaused(): boolean {
    return this.#real !== null ? this.#real.isPaused() : true;
  }

  setTimeout(ms: number): this {
    this.#real?.setTimeout(ms);
    return this;
  }

  setNoDelay(on?: boolean): this {
    this.materialize().setNoDelay(on);
    return this;
  }

  setKeepAlive(on?: boolean, delay?: number): this {
    this.materialize().setKeepAlive(on, delay);
    return this;
  }

  write(...args: unknown[]): boolean {
    return (this.materialize().write as (...a: unknown[]) => boolean)(...args);
  }

  end(...args: unknown[]): this {
    (this.materialize().end as (...a: unknown[]) => unknown)(...args);
    return this;
  }

  cork(): void {
    this.materialize().cork();
  }

  uncork(): void {
    this.materialize().uncork();
  }

  resetAndDestroy(): this {
    this.materialize().resetAndDestroy();
    return this;
  }

  destroy(err?: Error): this {
    if (this.#real !== null) {
      this.#real.destroy(err);
      return this;
    }
    this.#release();
    return this;
  }

  /**
   * The accepted 101: `head` goes to the client, then the relay adopts this descriptor (as it is,
   * with its watch's registration) with the upstream's. Null when the tunnel goes on a net.Socket
   * instead (the kernel took part of the head, the client is gone, the addon could not adopt):
   * then the head is written (or failed) already, and `materialize()` is that socket.
   */
  openTunnel(head: Buffer, upstream: Socket | HeldUpstream, ctx: RequestContext, options: SocketTunnelOptions): ProxyTunnel | null {
    const n = this.#host.send(this.fd, head);
    if (n > 0) this.#written += n;
    if (n === head.length) {
      const tunnel = adoptClientDescriptor(this.fd, this.#watch, upstream, ctx, options);
      if (tunnel !== null) {
        nativeClientCounts.tunnels++;
        this.#handedOver();
        return tunnel;
      }
    }
    const real = this.materialize();
    if (n >= 0 && n < head.length) real.write(head.subarray(n));
    return null;
  }

  #gone(): void {
    // The watch stays this client's until #unwatch ends it (the addon frees its slot then).
    if (this.#real !== null || this.#closed) return;
    this.#left = true;
    if (this.#reading) this.emit('end');
  }

  #unwatch(): void {
    if (this.#watch >= 0) this.#host.unwatch(this.#watch);
    this.#watch = -1;
  }

  /**
   * The relay took the descriptor and its watch's registration (adopt() ended the watch): nothing
   * is closed or unwatched here; `'close'` follows, as a socket's does.
   */
  #handedOver(): void {
    this.#closed = true;
    if (this.#watch >= 0) this.#host.forget(this.#watch);
    this.#watch = -1;
    process.nextTick(emitClose, this);
  }

  /** Closes this side's descriptor; `'close'` follows, as a socket's does. */
  #release(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch();
    try {
      closeSync(this.fd);
    } catch {
      // closed already
    }
    process.nextTick(emitClose, this);
  }
}

function emitClose(c: NativeClient): void {
  c.emit('close', false);
}

/** Whether a client socket of the upgrade front end is a native client. */
export function isNativeClient(s: unknown): s is NativeClient {
  return s instanceof NativeClient;
}
