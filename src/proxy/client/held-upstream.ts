/**
 * A 101's upstream connection that is a descriptor, not a net.Socket: the native addon ran the
 * handshake's upstream leg (native-exchange.ts). The tunnel hands it to the addon's relay as it is
 * (socket-tunnel.ts), or makes a net.Socket of it where the relay cannot take it.
 */
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';

/** A 101's upstream connection while the addon's descriptor is not a net.Socket. */
export class HeldUpstream {
  #fd: number;
  /** What the server sent after its 101's head (its first frames), for the client. */
  readonly after: Buffer;

  constructor(fd: number, after: Buffer) {
    this.#fd = fd;
    this.after = after;
  }

  /** The descriptor, -1 once it was given away or closed. */
  get fd(): number {
    return this.#fd;
  }

  /** Closes the connection (a 101 refused, a client gone). */
  destroy(): void {
    const fd = this.#fd;
    this.#fd = -1;
    if (fd >= 0) closeFd(fd);
  }

  /** The relay took the descriptor. */
  givenAway(): void {
    this.#fd = -1;
  }

  /** The connection as a net.Socket, for a tunnel that stays in TypeScript (`after` is not in it). */
  toSocket(): Socket {
    const fd = this.#fd;
    this.#fd = -1;
    return new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
  }
}

/** An upgrade's upstream connection as a net.Socket (the front ends that never get a held one). */
export function upstreamSocket(u: Socket | HeldUpstream): Socket {
  return u instanceof HeldUpstream ? u.toSocket() : u;
}

/** Closes a descriptor this process owns without a net.Socket. */
export function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed: nothing to release
  }
}
