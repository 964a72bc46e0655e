/**
 * A WebSocket handshake's upstream exchange run by the native addon (native-legs.ts,
 * native/sluice_upstream.c): the relay's I/O thread connects, writes the head the lean client
 * built and reads the response head; no net.Socket is made. What comes back is judged here with
 * the lean client's parser:
 *
 * - a 101 that switches (llhttp's upgrade): the exchange's `upgrade` result, its connection a
 *   {@link HeldUpstream} (a descriptor and the bytes after the head), which the tunnel hands to the
 *   addon's relay as it is (socket-tunnel.ts), or turns into a net.Socket where the relay cannot
 *   take it;
 * - anything else (another status, a head cut short by the server's close, an oversized or
 *   malformed head): the descriptor becomes a net.Socket and the lean client goes on reading it,
 *   with the bytes read so far first, exactly as if it had read them itself (lean-client.ts
 *   resumeExchange);
 * - a failure: the lean client's error for it (connect refused or timed out, reset, read timeout),
 *   so that proxy_next_upstream, max_fails and the 502/504 pages are the session's as before.
 *
 * Taken only where nothing needs a JavaScript socket (nativeExchange says which cases).
 */
import { Socket, isIP } from 'node:net';
import { constants } from 'node:os';
import { ProxyError, toProxyError } from '../../core/errors.js';
import { nativeLegs, LegEnd } from './native-legs.js';
import type { LegOwner } from './native-legs.js';
import type { Exchange, ExchangeOptions, ExchangeResult, UpstreamMessage } from './upstream-client.js';
import { HeldUpstream, closeFd } from './held-upstream.js';

/** What the lean client lends this exchange (lean-client.ts): its head, its parser, its exchange. */
export interface LeanParts {
  /** The request head, one latin1 string. */
  headText(o: ExchangeOptions): string;
  /** The switching 101 at the start of `read`, with the bytes its head took, or null. */
  switchedResponse(read: Buffer, o: ExchangeOptions, started: number): { res: UpstreamMessage; consumed: number } | null;
  /** The exchange continued by the lean client on `socket`, `read` first (`sent`: the head's bytes, written). */
  resumeExchange(o: ExchangeOptions, socket: Socket, read: Buffer, sent: number, started: number): Exchange;
}

const NOTHING = Buffer.alloc(0);

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** The error Node would have given for this errno (the lean client's errors come from those). */
function errnoError(errno: number): Error {
  const code = ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
  return Object.assign(new Error(code), { code, errno: -errno });
}

/** One exchange on a leg: the leg's report settles it, or hands it to the lean client. */
class NativeLegExchange implements Exchange, LegOwner {
  readonly result: Promise<ExchangeResult>;
  readonly #o: ExchangeOptions;
  readonly #started = performance.now();
  #resolve!: (r: ExchangeResult) => void;
  #id = -1;
  #settled = false;
  /** The lean client's exchange, once the descriptor became a net.Socket. */
  #inner: Exchange | null = null;
  /** The request head's length in bytes (latin1: one a character). */
  #sent = 0;

  readonly #lean: LeanParts;

  constructor(o: ExchangeOptions, lean: LeanParts) {
    this.#o = o;
    this.#lean = lean;
    this.result = new Promise<ExchangeResult>((r) => (this.#resolve = r));
  }

  start(legs: NonNullable<ReturnType<typeof nativeLegs>>, host: string): boolean {
    const o = this.#o;
    const a = o.peer.server.address;
    const head = this.#lean.headText(o);
    this.#sent = head.length;
    this.#id = legs.start(this, {
      family: a.family, host, port: a.port, head,
      connectTimeout: o.connectTimeout, sendTimeout: o.sendTimeout, readTimeout: o.readTimeout, maxHeaderSize: o.maxHeaderSize,
    });
    return this.#id >= 0;
  }

  abort(): void {
    if (this.#inner !== null) {
      this.#inner.abort();
      return;
    }
    if (this.#id >= 0 && !this.#settled) nativeLegs()?.cancel(this.#id);
    // An upgrade not yet tunnelled: the session destroys the connection it was given.
    this.#settle({ kind: 'error', error: new ProxyError('UPSTREAM_RESET'), connected: false, reused: false });
  }

  #settle(r: ExchangeResult): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(r);
  }

  /** @internal (LegOwner) */
  legEnded(kind: LegEnd, errno: number, fd: number, connectMs: number, received: number, bytes: Buffer | null): void {
    const a = this.#o.attempt;
    if (connectMs >= 0) a.connectTime = connectMs;
    // $upstream_bytes_*: as the lean client counts its socket's (the head went in one send).
    a.bytesReceived = received;
    if (kind === LegEnd.Head || kind === LegEnd.ReadFailed || kind === LegEnd.ReadTimeout) a.bytesSent = this.#sent;
    if (kind !== LegEnd.Head) {
      if (kind === LegEnd.Cancelled) return;
      this.#settle({ kind: 'error', error: legError(kind, errno), connected: connectMs >= 0, reused: false });
      return;
    }
    if (this.#settled) {
      // The session gave up while the head was on its way.
      closeFd(fd);
      return;
    }
    const read = bytes ?? NOTHING;
    const o = this.#o;
    const switched = this.#lean.switchedResponse(read, o, this.#started);
    if (switched !== null) {
      const after = switched.consumed < read.length ? read.subarray(switched.consumed) : NOTHING;
      this.#settle({ kind: 'upgrade', res: switched.res, socket: new HeldUpstream(fd, after), head: after });
      return;
    }
    // Anything but a switching 101: the lean client reads on from a net.Socket, these bytes first.
    const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
    const inner = this.#lean.resumeExchange(o, socket, read, this.#sent, this.#started);
    this.#inner = inner;
    void inner.result.then((r) => this.#settle(r));
  }
}

/** The lean client's error for how a leg ended (lean-client.ts onError, onTimeout). */
function legError(kind: LegEnd, errno: number): ProxyError {
  switch (kind) {
    case LegEnd.ConnectTimeout: return new ProxyError('UPSTREAM_CONNECT_TIMEOUT');
    case LegEnd.SendTimeout: return new ProxyError('UPSTREAM_SEND_TIMEOUT');
    case LegEnd.ReadTimeout: return new ProxyError('UPSTREAM_READ_TIMEOUT');
    case LegEnd.ConnectFailed: return toProxyError(errnoError(errno), 'UPSTREAM_CONNECT_FAILED');
    default: return toProxyError(errnoError(errno), 'UPSTREAM_RESET');
  }
}

/**
 * The exchange on the addon's leg, or null where the lean client connects itself: no addon (or
 * `SLUICE_NATIVE_UPSTREAM=off`); an address that is not an IP (a unix socket; names are resolved
 * before a try, but a scoped IPv6 address is left to Node); a body to send. The caller has already
 * ruled out TLS, a kept-alive connection and a front end whose client is not a plain TCP socket
 * (`nativeUpstream`). Nothing else of an upstream connection is configurable in Sluice today
 * (proxy_bind and proxy_socket_keepalive are refused at load, nginx's http proxy sends no PROXY
 * protocol header): a setting that needs a JavaScript socket must be checked here when one is added.
 */
export function nativeExchange(o: ExchangeOptions, lean: LeanParts): Exchange | null {
  if (o.body !== null) return null;
  const a = o.peer.server.address;
  if (a.path !== undefined || isIP(a.host) === 0 || a.host.includes('%')) return null;
  const legs = nativeLegs();
  if (legs === null) return null;
  const ex = new NativeLegExchange(o, lean);
  return ex.start(legs, a.host) ? ex : null;
}
