/**
 * Relaying bodies under nginx's client-side timers: `send_timeout` ({@link SendTimeout},
 * {@link relayBody}) for a response body going to the client, `client_body_timeout`
 * ({@link watchBodyReads}) for a request body coming from it. The same for every front end.
 */
import type { Readable } from 'node:stream';
import { ERROR_CATALOG } from '../../core/errors.js';
import { timerDelay } from '../../core/timers.js';
import type { ErrorLog } from '../../observability/error-log.js';
import { logContext } from '../context/log-context.js';
import type { RequestContext } from '../context/request-context.js';

/** nginx's info line for send_timeout, with the request's context. */
export function logSendTimeout(log: ErrorLog, ctx: RequestContext, upstream: string): void {
  log.log('info', `${ERROR_CATALOG.CLIENT_SEND_TIMEOUT.text}${logContext(ctx, upstream)}`, ctx.conn.id);
}

/** What SendTimeout needs: a stream with Node's idle timer (net.Socket, Http2Stream). */
export interface TimedStream {
  readonly destroyed: boolean;
  setTimeout(ms: number): unknown;
  on(event: 'timeout', listener: () => void): unknown;
  removeListener(event: 'timeout', listener: () => void): unknown;
}

/**
 * `send_timeout` for one response: armed while a write to the client waits for the client to read
 * (the relay is paused on backpressure); every write the socket completes restarts it (the
 * socket's own timer), as nginx re-arms it after each successful write. On expiry `onTimeout`
 * runs once; the caller logs and closes the connection (nginx: "client timed out (110: Connection
 * timed out) while sending to client", at info).
 */
export class SendTimeout {
  readonly #socket: TimedStream;
  readonly #ms: number;
  readonly #onTimeout: () => void;
  #armed = false;
  #fired = false;

  /** `socket`: the client connection, or an HTTP/2 stream (its own timer, restarted by its frames). */
  constructor(socket: TimedStream, ms: number, onTimeout: () => void) {
    this.#socket = socket;
    this.#ms = ms;
    this.#onTimeout = onTimeout;
  }

  /** A write did not fit: the client has this long to read before the connection closes. */
  blocked(): void {
    if (this.#armed || this.#fired || this.#ms <= 0) return;
    this.#armed = true;
    this.#socket.on('timeout', this.#fire);
    this.#socket.setTimeout(timerDelay(this.#ms));
  }

  /** The client caught up (drain), or the response is over. */
  flowing(): void {
    if (!this.#armed) return;
    this.#armed = false;
    this.#socket.removeListener('timeout', this.#fire);
    if (!this.#socket.destroyed) this.#socket.setTimeout(0);
  }

  readonly #fire = (): void => {
    if (!this.#armed) return;
    this.flowing();
    this.#fired = true;
    this.#onTimeout();
  };
}

/** Where a response body goes: a ServerResponse, a client socket, an HTTP/2 stream. */
export interface RelayTarget {
  readonly destroyed: boolean;
  write(chunk: Buffer): boolean;
  on(event: 'drain', listener: () => void): unknown;
  once(event: 'finish' | 'close', listener: () => void): unknown;
}

/**
 * Relays an upstream response body to the client with backpressure under send_timeout (`timed`
 * is the client connection or HTTP/2 stream whose timer counts). The caller ends `out` when `up`
 * ends; `onChunk` sees every chunk (byte counters). `unpaused`: the body is read whole whatever
 * the client does (a buffered body that fits proxy_buffers, response-spool.ts fitsBuffers): a
 * full client buffer arms send_timeout but does not pause `up`. The timer and the listeners
 * that drive it are made at the first write that does not fit: most bodies never need them.
 */
export function relayBody(up: Readable, out: RelayTarget, timed: TimedStream, ms: number, onTimeout: () => void, onChunk: (chunk: Buffer) => void, unpaused = false): void {
  let sending: SendTimeout | null = null;
  up.on('data', (chunk: Buffer) => {
    onChunk(chunk);
    if (out.destroyed) return;
    if (!out.write(chunk)) {
      if (!unpaused) up.pause();
      sending ??= backpressure(up, out, new SendTimeout(timed, ms, onTimeout));
      sending.blocked();
    }
  });
}

/** The client's side of a relay that filled its buffer: send_timeout runs until it drains, and stops with the response. */
function backpressure(up: Readable, out: RelayTarget, sending: SendTimeout): SendTimeout {
  out.on('drain', () => {
    sending.flowing();
    up.resume();
  });
  // On 'finish' (before an HTTP/1 keep-alive timer starts on 'close'), and on 'close' for an abort.
  const stop = (): void => sending.flowing();
  out.once('finish', stop);
  out.once('close', stop);
  return sending;
}

/**
 * `client_body_timeout` for a request body that is streamed upstream: the longest wait between two
 * reads while Sluice wants to read (the body flows); while the upstream side holds the body back
 * (paused for backpressure, or not connected yet) the client is not timed, as nginx sets the
 * timer only when it waits to read. Returns a function that stops watching.
 */
export function watchBodyReads(body: Readable, ms: number, onTimeout: () => void): () => void {
  if (ms <= 0 || body.readableEnded) return noop;
  let timer: NodeJS.Timeout | null = null;
  let counting = false;
  const disarm = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
  };
  const onData = (): void => {
    if (timer !== null) timer.refresh();
  };
  const fire = (): void => {
    timer = null;
    stop();
    onTimeout();
  };
  const arm = (): void => {
    // Listening to 'data' only once the body flows: a listener added before would start the flow.
    if (!counting) {
      counting = true;
      body.on('data', onData);
    }
    if (timer === null) timer = setTimeout(fire, timerDelay(ms));
  };
  const stop = (): void => {
    disarm();
    body.removeListener('resume', arm);
    body.removeListener('pause', disarm);
    body.removeListener('data', onData);
    body.removeListener('end', stop);
    body.removeListener('close', stop);
  };
  body.on('resume', arm);
  body.on('pause', disarm);
  body.once('end', stop);
  body.once('close', stop);
  if (body.readableFlowing === true) arm();
  return stop;
}

/**
 * `client_max_body_size` for a body that streams without a declared length (chunked, HTTP/2):
 * counts what is read and calls `onTooLarge(before, chunk)` once with the figures nginx logs
 * ("...: 1048000+4096 bytes"). Counting starts when the body flows, as for watchBodyReads.
 */
export function watchBodySize(body: Readable, limit: number, onTooLarge: (received: number, chunk: number) => void): void {
  let received = 0;
  const onData = (chunk: Buffer): void => {
    if (received + chunk.length > limit) {
      body.removeListener('data', onData);
      onTooLarge(received, chunk.length);
      return;
    }
    received += chunk.length;
  };
  if (body.readableFlowing === true) body.on('data', onData);
  else body.once('resume', () => body.on('data', onData));
}

function noop(): void {}

/** What {@link PacedTarget} writes to: a RelayTarget that can be ended. */
interface EndableTarget extends RelayTarget {
  end(): unknown;
}

/**
 * `limit_rate` / `limit_rate_after` for one response: the body goes to `out` at most `rate`
 * bytes per second once `after` bytes went out, by nginx's rule (ngx_http_write_filter: allowed =
 * rate x (whole seconds since the response started + 1) - (sent - after)), so the first second's
 * worth leaves at once. Bytes over the allowance wait in a timer, and `write` answers false
 * meanwhile, so the relay pauses its upstream as for a slow client (backpressure, nothing kept
 * beyond the chunk in hand). `end` waits for what is queued.
 */
export class PacedTarget implements EndableTarget {
  readonly #out: EndableTarget;
  readonly #rate: number;
  readonly #after: number;
  readonly #started = performance.now();
  readonly #drainListeners: (() => void)[] = [];
  #queue: Buffer[] = [];
  #sent = 0;
  #timer: NodeJS.Timeout | null = null;
  #waitingDrain = false;
  #ending = false;
  #owesDrain = false;

  constructor(out: EndableTarget, rate: number, after: number) {
    this.#out = out;
    this.#rate = rate;
    this.#after = after;
    out.on('drain', this.#drained);
    out.once('close', () => {
      if (this.#timer !== null) clearTimeout(this.#timer);
      this.#queue = [];
    });
  }

  get destroyed(): boolean {
    return this.#out.destroyed;
  }

  write(chunk: Buffer): boolean {
    this.#queue.push(chunk);
    this.#pump();
    const clear = this.#queue.length === 0 && !this.#waitingDrain;
    if (!clear) this.#owesDrain = true;
    return clear;
  }

  end(): void {
    this.#ending = true;
    this.#pump();
  }

  on(_event: 'drain', listener: () => void): this {
    this.#drainListeners.push(listener);
    return this;
  }

  once(event: 'finish' | 'close', listener: () => void): this {
    this.#out.once(event, listener);
    return this;
  }

  /** Bytes that may go out now. */
  #allowance(): number {
    if (this.#sent < this.#after) return this.#after - this.#sent + this.#byRate(0);
    return this.#byRate(this.#sent - this.#after);
  }

  #byRate(pacedSent: number): number {
    const seconds = Math.floor((performance.now() - this.#started) / 1000);
    return this.#rate * (seconds + 1) - pacedSent;
  }

  readonly #pump = (): void => {
    this.#timer = null;
    while (this.#queue.length > 0 && !this.#waitingDrain) {
      if (this.#out.destroyed) {
        this.#queue = [];
        return;
      }
      const allowed = this.#allowance();
      if (allowed <= 0) {
        // Until the next whole second since the start, when the allowance grows by `rate`.
        const elapsed = performance.now() - this.#started;
        this.#timer = setTimeout(this.#pump, Math.max(1, 1000 - (elapsed % 1000)));
        return;
      }
      let chunk = this.#queue[0] as Buffer;
      if (chunk.length > allowed) {
        this.#queue[0] = chunk.subarray(allowed);
        chunk = chunk.subarray(0, allowed);
      } else {
        this.#queue.shift();
      }
      this.#sent += chunk.length;
      if (!this.#out.write(chunk)) this.#waitingDrain = true;
    }
    if (this.#queue.length > 0 || this.#waitingDrain) return;
    if (this.#ending) {
      this.#ending = false;
      if (!this.#out.destroyed) this.#out.end();
    } else if (this.#owesDrain) {
      this.#owesDrain = false;
      for (const l of this.#drainListeners) l();
    }
  };

  readonly #drained = (): void => {
    if (!this.#waitingDrain) return;
    this.#waitingDrain = false;
    this.#pump();
  };
}
