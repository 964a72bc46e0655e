import type { Socket } from 'node:net';
import type { HeldUpstream } from '../client/held-upstream.js';
import type { Readable } from 'node:stream';
import { ProxyError } from '../../core/errors.js';
import type { Peer } from '../../upstream/peer.js';
import { FAILURE_STATUSES, retryAllowed } from './retry-rules.js';
import type { TryOutcome } from './retry-rules.js';
import type { ProxyRoute } from './proxy-route.js';
import type { ProxyRuntime } from './proxy-runtime.js';
import type { RequestContext, UpstreamAttempt } from '../context/request-context.js';
import { upstreamClient } from '../client/registry.js';
import type { Exchange, ExchangeOptions, ExchangeResult, UpstreamMessage } from '../client/upstream-client.js';
import { buildUpstreamHead } from '../headers/upstream-request.js';
import { relayHeaders } from '../headers/response-headers.js';
import { learnSession } from './proxy-route.js';
import { upstreamTlsFor } from '../client/upstream-tls.js';
import type { ForwardMode, UpstreamRequestHead } from '../headers/upstream-request.js';
import { fastcgiExchange } from '../client/fastcgi-client.js';
import type { FastcgiRequest } from '../client/fastcgi-client.js';
import { fastcgiParams } from '../headers/fastcgi-params.js';
import { logContext, upstreamUrl } from '../context/log-context.js';

/**
 * The session a try runs for, asked while the try runs (the session itself: no callbacks are
 * made per try).
 */
export interface TryHost {
  /** What the try asks of the front end (the FrontEnd's fields of these names, front-end.ts). */
  readonly front: {
    /** Judges an upstream 101: null to accept it, else the failure. */
    checkSwitch(res: UpstreamMessage): ProxyError | null;
    /** The status the client sees for an accepted 101 (`$status`): 200 on HTTP/2 (RFC 8441 5). @default 101 */
    readonly switchedStatus?: number;
    /** The request body starts flowing to an upstream (once per try that gets that far). */
    bodyStarted?(): void;
    /** The front end's tunnel can take an upstream leg the native addon ran (FrontEnd's). */
    readonly nativeUpstream?: boolean;
  };
  /** True once the client has gone away (or its body was refused as too large). */
  tryAbandoned(): boolean;
  /** Remembers the exchange in flight, so the client leaving can abort it. */
  exchangeStarted(ex: Exchange): void;
}

export interface PeerExchangeOptions {
  readonly rt: ProxyRuntime;
  readonly ctx: RequestContext;
  readonly route: ProxyRoute;
  readonly peer: Peer;
  readonly attempt: UpstreamAttempt;
  /** Whether another server may still be tried after this one. */
  readonly more: boolean;
  readonly mode: ForwardMode;
  /** A body that streams once (request buffering off), or null. */
  readonly body: Readable | null;
  /** A body read whole: a new stream of it for each connection tried, and its length. */
  readonly replay?: { readonly open: () => Readable; readonly length: number } | null;
  /** The method sent upstream (`proxy_method`, else the client's). */
  readonly method: string;
  readonly host: TryHost;
  readonly onLateError: (err: ProxyError) => void;
}

/** What one try at one server produced: a final outcome, or a live answer for the caller to relay. */
export type PeerExchange =
  | { readonly kind: 'done'; readonly outcome: TryOutcome }
  | ExchangeResponse
  | SwitchedExchange;

/** A response to relay (any status but an accepted 101). */
export interface ExchangeResponse {
  readonly kind: 'response';
  readonly res: UpstreamMessage;
  readonly exchange: Exchange;
  /** Ends the server's open-connection count; idempotent. */
  readonly release: () => void;
  /** What goes to the client ({@link relayHeaders}); `ctx.status` is already the response's. */
  readonly headers: string[];
}

/** An accepted 101: the upstream socket (and bytes that came with the 101) for the tunnel. */
export interface SwitchedExchange {
  readonly kind: 'upgrade';
  readonly res: UpstreamMessage;
  readonly socket: Socket | HeldUpstream;
  readonly head: Buffer;
  readonly release: () => void;
  readonly headers: string[];
}

/** A FastCGI request carries its params instead of an HTTP head. */
const NO_HEAD: UpstreamRequestHead = Object.freeze({ path: '', headers: [] });

/**
 * The params and connection rules of a FastCGI try; what the server writes to FCGI_STDERR goes
 * to the error log at error level, in nginx's words ("FastCGI sent in stderr").
 */
function fastcgiRequest(o: PeerExchangeOptions): FastcgiRequest {
  const { ctx, route, rt, peer } = o;
  return {
    params: fastcgiParams(ctx, route, rt.vars),
    keepConn: route.settings.fastcgi.keepConn,
    onStderr: (text, inHead) => {
      const phase = inHead ? 'reading response header from upstream' : 'reading upstream';
      rt.errorLog(route.settings).log('error', `FastCGI sent in stderr: "${text}" while ${phase}${logContext(ctx, upstreamUrl(route, peer, ctx))}`, ctx.conn.id);
    },
  };
}

function failedWith(error: ProxyError, sent: boolean, countFailure: boolean, retryable: boolean): PeerExchange {
  return { kind: 'done', outcome: { ok: false, error, sent, countFailure, retryable } };
}

/**
 * What tells the front end that the request body starts flowing to an upstream (once per try that
 * gets that far). Made here, not in a PeerTry method: a closure made there would keep the try (its
 * request, its session) alive with `release`, which a tunnel keeps for its whole life
 * (docs/benchmarks.md, "Idle memory").
 */
function bodyStartNotice(front: TryHost['front']): (() => void) | undefined {
  return front.bodyStarted === undefined ? undefined : (): void => front.bodyStarted?.();
}

/**
 * Holds the server's open-connection count until the returned function is called (idempotent). Its
 * own scope, for the same reason: a tunnel keeps it.
 */
function holdPeer(peer: Peer): () => void {
  peer.state.active++;
  let released = false;
  return (): void => {
    if (!released) {
      released = true;
      peer.state.active--;
    }
  };
}

function noRelease(): void {}

/**
 * One try at one server, shared by plain requests and upgrades: the server's open-connection count
 * is held from here until the caller's `release` (for a tunnel, its whole life); a cached
 * keepalive connection the server had already closed gets one more try on a fresh connection
 * (nginx does the same); failures, 101s that must not be relayed and `proxy_next_upstream http_*`
 * statuses become outcomes for the attempt loop.
 *
 * An object the attempt loop drives, not an async function of its own, so that the loop's await
 * on the exchange is the only one per try (docs/benchmarks.md, "Per-request work, sixth pass"):
 *
 *     let x = t.failed;
 *     while (x === null) x = t.settle(await t.begin());
 */
export class PeerTry {
  readonly #o: PeerExchangeOptions;
  /** The try ended before an exchange began (its upstream head could not be made), else null. */
  readonly failed: PeerExchange | null = null;
  readonly #head: UpstreamRequestHead = NO_HEAD;
  readonly #fastcgi: FastcgiRequest | null;
  readonly #onBodyStart: (() => void) | undefined;
  readonly #release: () => void = noRelease;
  #ex: Exchange | null = null;
  #staleRetried = false;

  constructor(o: PeerExchangeOptions) {
    this.#o = o;
    const { route } = o;
    this.#onBodyStart = bodyStartNotice(o.host.front);
    this.#fastcgi = route.pass.scheme === 'fastcgi' ? fastcgiRequest(o) : null;
    try {
      if (this.#fastcgi === null) this.#head = buildUpstreamHead(o.ctx, route, o.rt.vars, o.mode, o.replay?.length ?? null);
    } catch (err) {
      if (!(err instanceof ProxyError)) throw err;
      this.failed = failedWith(err, false, false, false);
      return;
    }
    this.#release = holdPeer(o.peer);
  }

  /** Starts an exchange with the server; its result goes to {@link settle}. */
  begin(): Promise<ExchangeResult> {
    const o = this.#o;
    const { route, host } = o;
    const tls = upstreamTlsFor(route, o.ctx, o.rt.vars);
    const options: ExchangeOptions = {
      peer: o.peer, pool: route.pool, method: o.method, head: this.#head, body: o.replay?.open() ?? o.body, upgrade: o.mode.upgrade !== null,
      nativeUpstream: host.front.nativeUpstream === true && route.settings.nativeTunnels !== 'off',
      tls,
      connectTimeout: route.settings.proxyConnectTimeout,
      sendTimeout: route.settings.proxySendTimeout,
      readTimeout: route.settings.proxyReadTimeout,
      maxHeaderSize: route.settings.proxyBufferSize,
      attempt: o.attempt,
      onLateError: o.onLateError,
      onBodyStart: this.#onBodyStart,
    };
    const ex = this.#fastcgi !== null ? fastcgiExchange(options, this.#fastcgi) : upstreamClient.exchange(options);
    this.#ex = ex;
    host.exchangeStarted(ex);
    if (host.tryAbandoned()) ex.abort();
    return ex.result;
  }

  /**
   * What the exchange's result comes to: the try's end, or null to {@link begin} once more (a
   * kept-alive connection the server had closed, once, with no streamed body).
   */
  settle(r: ExchangeResult): PeerExchange | null {
    const o = this.#o;
    const { ctx, route, host } = o;
    const { front } = host;
    const release = this.#release;
    const ex = this.#ex as Exchange;
    const stale = r.kind === 'error' && r.reused && r.error.code === 'UPSTREAM_RESET' && o.body === null;
    if (stale && !this.#staleRetried && !host.tryAbandoned()) {
      this.#staleRetried = true;
      return null;
    }
    if (host.tryAbandoned()) {
      if (r.kind === 'response' && !r.res.destroyed && !r.res.readableEnded) {
        // proxy_ignore_client_abort: the upstream's answer is read to its end and dropped.
        r.res.once('end', release);
        r.res.once('close', release);
        r.res.resume();
      } else {
        release();
      }
      if (r.kind === 'upgrade') r.socket.destroy();
      return failedWith(new ProxyError('CLIENT_CLOSED'), true, false, false);
    }
    if (r.kind === 'error') {
      release();
      return failedWith(r.error, r.connected, true, o.more && retryAllowed(route, ctx, r.error.retry, r.connected));
    }
    if (r.kind === 'upgrade') {
      const invalid = front.checkSwitch(r.res);
      if (invalid === null) {
        // The status the client sees for an accepted 101 (`$status`): 200 on HTTP/2 (RFC 8441 5).
        const headers = relayed(o, r.res, 101, front.switchedStatus ?? 101);
        if (headers instanceof ProxyError) {
          r.socket.destroy();
          release();
          return failedWith(headers, true, false, false);
        }
        return { kind: 'upgrade', res: r.res, socket: r.socket, head: r.head, release, headers };
      }
      r.socket.destroy();
      release();
      return failedWith(invalid, true, true, o.more && retryAllowed(route, ctx, invalid.retry, true));
    }
    const status = r.res.statusCode ?? 502;
    if (status === 101) {
      // Node reports a 101 without an Upgrade header as an ordinary response; relayed, it would
      // tell the client a switch happened with no tunnel behind it (RFC 9110 7.8).
      r.res.resume();
      ex.abort();
      release();
      const error = o.mode.upgrade === null
        ? new ProxyError('UPSTREAM_UNREQUESTED_UPGRADE')
        : new ProxyError('UPSTREAM_UPGRADE_MISMATCH', `asked "${o.mode.upgrade}", got none`);
      return failedWith(error, true, true, o.more && retryAllowed(route, ctx, error.retry, true));
    }
    if (route.retryStatuses.has(status) && o.more && retryAllowed(route, ctx, `http_${status}`, true)) {
      r.res.resume();
      ex.abort();
      release();
      return failedWith(new ProxyError('UPSTREAM_INVALID_RESPONSE', `status ${status}`), true, FAILURE_STATUSES.has(status), true);
    }
    // An error page's target answers with the error's status (nginx's err_status), which the
    // header filters (add_header) see.
    const shown = ctx.errStatus === 0 ? status : ctx.errStatus;
    const headers = relayed(o, r.res, shown, shown);
    if (headers instanceof ProxyError) {
      r.res.resume();
      ex.abort();
      release();
      return failedWith(headers, true, false, false);
    }
    return { kind: 'response', res: r.res, exchange: ex, release, headers };
  }
}

/**
 * The response headers for the client, or the failure when an add_header or proxy_redirect value
 * cannot be sent. `ctx.status` is set first: add_header values may read `$status`.
 */
function relayed(o: PeerExchangeOptions, res: UpstreamMessage, status: number, clientStatus: number): string[] | ProxyError {
  o.ctx.upstreamHeaders = res.headers;
  o.ctx.status = clientStatus;
  // sticky learn: learnt at the response head (nginx Plus's `header`; a 101 has nothing after it).
  learnSession(o.route, o.ctx, o.rt.vars, o.rt.stickySessions, o.peer.addr);
  try {
    return relayHeaders(o.ctx, o.route, o.rt.vars, status, res.rawHeaders, o.peer);
  } catch (err) {
    if (err instanceof ProxyError) return err;
    throw err;
  }
}
