import type { Duplex } from 'node:stream';

/**
 * Everything a socket receives, kept in arrival order, with a read cursor. Reads hand out views of
 * one growing buffer (amortised doubling), so a 16 MiB transfer costs O(n) copies, not O(n^2).
 * Attach it before bytes can arrive — {@link recorderFor} is called by `rawConnect`, `rawRequest`
 * and `startRawBackend` for you.
 */
export class ByteRecorder {
  #buffer: Buffer = Buffer.alloc(0);
  #length = 0;
  #consumed = 0;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #waiters = new Set<() => void>();

  /** Every byte received so far (a view; it stays valid). */
  get all(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  /** Bytes received but not yet consumed by a read (a view; it stays valid). */
  get pending(): Buffer {
    return this.#buffer.subarray(this.#consumed, this.#length);
  }

  /** The peer sent FIN. */
  get ended(): boolean {
    return this.#ended;
  }

  /** The socket closed (after FIN both ways, a reset or a destroy). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The socket error, if one occurred (ECONNRESET, ...). Recorded, never thrown. */
  get error(): Error | null {
    return this.#error;
  }

  /** Marks the first `n` pending bytes (default: all) as read and returns them. */
  consume(n: number = this.#length - this.#consumed): Buffer {
    const take = Math.min(n, this.#length - this.#consumed);
    const out = this.#buffer.subarray(this.#consumed, this.#consumed + take);
    this.#consumed += take;
    return out;
  }

  /** Resolves at the next arrival, FIN, close or error (whichever comes first). */
  changed(): Promise<void> {
    return new Promise((resolve) => this.#waiters.add(resolve));
  }

  /** @internal */
  append(chunk: Buffer): void {
    const needed = this.#length + chunk.length;
    if (needed > this.#buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.#buffer.length * 2, 4096));
      this.#buffer.copy(grown, 0, 0, this.#length);
      this.#buffer = grown;
    }
    chunk.copy(this.#buffer, this.#length);
    this.#length = needed;
    this.#notify();
  }

  /** @internal */
  markEnded(): void {
    this.#ended = true;
    this.#notify();
  }

  /** @internal */
  markClosed(): void {
    this.#closed = true;
    this.#notify();
  }

  /** @internal */
  markError(error: Error): void {
    this.#error ??= error;
    this.#notify();
  }

  #notify(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const wake of waiters) wake();
  }
}

const recorders = new WeakMap<Duplex, ByteRecorder>();

/**
 * The recorder of `socket` (a net or TLS socket, or any duplex stream such as an HTTP/2 stream),
 * attached on first call (idempotent). Attaching adds `'data'`, `'end'`,
 * `'close'` and `'error'` listeners, so the socket flows and its errors never crash the test
 * process; they are recorded instead. Bytes that arrived before the first call are not seen.
 */
export function recorderFor(socket: Duplex): ByteRecorder {
  let recorder = recorders.get(socket);
  if (recorder !== undefined) return recorder;
  recorder = new ByteRecorder();
  recorders.set(socket, recorder);
  socket.on('data', socketOnData);
  socket.on('end', socketOnEnd);
  socket.on('close', socketOnClose);
  socket.on('error', socketOnError);
  return recorder;
}

function socketOnData(this: Duplex, chunk: Buffer): void {
  recorders.get(this)?.append(chunk);
}

function socketOnEnd(this: Duplex): void {
  recorders.get(this)?.markEnded();
}

function socketOnClose(this: Duplex): void {
  recorders.get(this)?.markClosed();
}

function socketOnError(this: Duplex, error: Error): void {
  recorders.get(this)?.markError(error);
}
