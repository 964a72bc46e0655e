/**
 * What a proxy session needs from the protocol a request arrived on. Each front end (an HTTP/1.1
 * request on Node's server, an HTTP/1.1 upgrade on the raw socket Node hands over, an HTTP/2
 * request, an HTTP/2 extended CONNECT) implements it in front/; the session (session.ts) does the
 * rest the same way for all of them: routing decisions, local answers, the attempt loop, retries,
 * and the mapping of every failure to a status, a log line and the access log.
 */
import type { Readable } from 'node:stream';
import type { AdminHandler, Settings } from '../../config/types.js';
import type { ProxyError } from '../../core/errors.js';
import type { Peer } from '../../upstream/peer.js';
import type { LocalResponse } from '../answer/respond.js';
import type { UpstreamMessage } from '../client/upstream-client.js';
import type { StreamedResponse } from '../answer/streamed.js';
import type { UpstreamAttempt } from '../context/request-context.js';
import type { ForwardMode } from '../headers/upstream-request.js';
import type { RouteDecision } from '../../routing/router.js';
import type { FrontEndAnswer } from './guard.js';
import type { ExchangeResponse, SwitchedExchange } from './peer-exchange.js';
import type { ProxyRoute } from './proxy-route.js';
import type { ErrorLog } from '../../observability/error-log.js';
import type { TimedStream, RelayTarget } from './body-relay.js';
import type { BodyFilter, Subrequest } from '../filters/ssi/filter.js';

/** What a front end may ask of its session (session.ts implements it). */
export interface ProxySession {
  /** The location's proxy settings, once proxying has started. */
  readonly route: ProxyRoute | null;
  /** The error log of the request's location. */
  readonly log: ErrorLog;
  /** The client went away: the try in flight is cancelled and the session ends with 499. */
  clientLeft(): void;
  /** client_body_timeout expired: the request is closed, logged as 408. */
  bodyTimedOut(): void;
  /**
   * Streams the body of a relayed response under send_timeout, after the front end sent its head,
   * through the body filters (SSI, compression) chosen for that head, if any.
   */
  relayBody(x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt, out: RelayOut, timed: TimedStream, noBody: boolean, onChunk: (chunk: Buffer) => void, encoder?: BodyFilter | null): void;
  /** The not_modified filter on a relayed response the cache takes part in: the status to send, 0 when a 412 answered instead. */
  notModifiedStatus(x: ExchangeResponse): number;
  /** The range filter on a relayed response the cache takes part in: the status to send, 0 when a 416 answered instead. */
  rangeStatus(x: ExchangeResponse, status: number, filtered: boolean): number;
  /**
   * Streams the body of a response Sluice makes itself (a file) to `out` under send_timeout,
   * after the front end sent its head; the body is destroyed (its file closed) if `out` closes first.
   */
  streamBody(body: Readable, out: RelayOut, timed: TimedStream, onChunk: (chunk: Buffer) => void): void;
  /** Runs a subrequest of this request (SSI's `include`) through the server's locations. */
  readonly subrequest: Subrequest;
}

/** Where a response body goes (a ServerResponse, a client socket, an HTTP/2 stream). */
export interface RelayOut extends RelayTarget {
  end(): unknown;
}

export interface FrontEnd extends FrontEndAnswer {
  /**
   * The protocol's own checks, then the router's decision; null when the front end has answered
   * already (a malformed head, say).
   */
  route(): RouteDecision | null;
  /** A status location (`stub_status`, `sluice_metrics`...); the promise when it waits for figures. */
  serveAdmin(handler: AdminHandler, settings: Settings): Promise<void> | undefined;
  /** What goes upstream: an upgrade to forward, or an ordinary request. */
  readonly mode: ForwardMode;
  /**
   * Called once before the first try: watches the client (it calls `s.clientLeft()` when it goes)
   * and returns the request body to stream upstream, null for none, or false when the front end
   * answered instead (a body it cannot take).
   */
  start(s: ProxySession, route: ProxyRoute): Readable | null | false;
  /** Judges an upstream 101: null to accept it, else the failure (ordinary requests refuse every one). */
  checkSwitch(res: UpstreamMessage): ProxyError | null;
  /** The status the client sees for an accepted 101 (`$status`). @default 101 */
  readonly switchedStatus?: number;
  /** The request body started flowing to an upstream. */
  bodyStarted?(): void;
  /**
   * A WebSocket handshake whose client is a plain TCP socket: its tunnel can take an upstream
   * connection the native addon made (native-exchange.ts), so the upstream leg may run there.
   */
  readonly nativeUpstream?: boolean;
  /** The tries are over, whichever way: stop what only waiting for the upstream needed. */
  triesOver?(): void;
  /** Sends a response whose body streams (a file, a listing): head, then the body via `s.streamBody`. */
  sendStreamed(s: ProxySession, r: StreamedResponse): void;
  /** Relays an upstream response (not an accepted 101): head, then body under send_timeout. */
  relay(s: ProxySession, x: ExchangeResponse, peer: Peer, attempt: UpstreamAttempt): void;
  /** Opens the tunnel for an accepted 101. Front ends that never ask for an upgrade never get one. */
  tunnel(s: ProxySession, x: SwitchedExchange, peer: Peer): void;
  /** The session gave up because the client left (499): end what is left of the request. */
  left?(): void;
}

/** For the front ends of ordinary requests: nothing switches protocols (BEHAVIOURS 9). */
export function noTunnel(): never {
  throw new Error('unreachable: checkSwitch refuses every upgrade of an ordinary request');
}

/** The decision type, for front ends. */
export type { RouteDecision };
/** What the relays and the body watchers call back (re-exported for the front ends). */
export type { LocalResponse, StreamedResponse };
