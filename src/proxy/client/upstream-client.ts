/**
 * The upstream client contract: one HTTP/1.1 exchange with one upstream server, plain or TLS.
 * Two implementations, registered by name in registry.ts: 'lean' (Sluice's own client on
 * net/tls sockets with Node's llhttp, lean-client.ts) and 'node' (`http.request`,
 * node-client.ts); a third, 'undici' (undici-client.ts), is there for measurement only
 * (docs/benchmarks.md). The session calls only this interface; which client serves the process
 * is decided once, at load.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { ProxyError } from '../../core/errors.js';
import type { Peer } from '../../upstream/peer.js';
import type { UpstreamPool } from '../../upstream/pool.js';
import type { UpstreamAttempt } from '../context/request-context.js';
import type { UpstreamRequestHead } from '../headers/upstream-request.js';
import type { UpstreamTlsRequest } from './upstream-tls.js';
import type { HeldUpstream } from './held-upstream.js';

/** The upstream clients by their names (`SLUICE_UPSTREAM_CLIENT`). */
export type UpstreamClientName = 'lean' | 'node' | 'undici';

/**
 * An upstream response as the relaying code reads it: Node's IncomingMessage (http.request) or
 * Sluice's UpstreamResponse (lean-client.ts) — status, headers, a Readable body, 'aborted'.
 */
export type UpstreamMessage = Readable & {
  readonly statusCode?: number | undefined;
  readonly statusMessage?: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly complete: boolean;
};

export type ExchangeResult =
  | { readonly kind: 'response'; readonly res: UpstreamMessage }
  /** `socket`: a net.Socket, or the addon's descriptor of a handshake whose upstream leg it ran (native-exchange.ts). */
  | { readonly kind: 'upgrade'; readonly res: UpstreamMessage; readonly socket: Socket | HeldUpstream; readonly head: Buffer }
  /** `reused`: the request went out on a cached keepalive connection rather than a new one. */
  | { readonly kind: 'error'; readonly error: ProxyError; readonly connected: boolean; readonly reused: boolean };

export interface ExchangeOptions {
  readonly peer: Peer;
  readonly pool: UpstreamPool;
  readonly method: string;
  readonly head: UpstreamRequestHead;
  /** The client's request body, piped only once the connection is up (so a connect failure can retry). */
  readonly body: Readable | null;
  /** Asking for an upgrade: the connection must be able to carry a tunnel (half-close). */
  readonly upgrade: boolean;
  /**
   * A WebSocket handshake whose tunnel the native addon can take (the front end's client is a
   * plain TCP socket): the lean client may run the upstream leg in the addon (native-exchange.ts).
   */
  readonly nativeUpstream?: boolean;
  /** For `proxy_pass https://`: the TLS settings and name of this request. */
  readonly tls?: UpstreamTlsRequest | null;
  readonly connectTimeout: number;
  readonly sendTimeout: number;
  readonly readTimeout: number;
  /** proxy_buffer_size: the largest response head taken (UPSTREAM_HEADER_TOO_BIG beyond). */
  readonly maxHeaderSize: number;
  readonly attempt: UpstreamAttempt;
  /** Failures after the result was delivered (a response body cut short). */
  readonly onLateError: (err: ProxyError) => void;
  /** Called when the request body starts flowing upstream. */
  readonly onBodyStart?: () => void;
}

export interface Exchange {
  readonly result: Promise<ExchangeResult>;
  abort(): void;
}

/**
 * What every upstream client does for one exchange: connect (TCP, then the TLS handshake for
 * `https://`) under the connect timeout, or take a keep-alive connection from the pool's one
 * cache for that server and TLS identity; send the head and stream the body under the send
 * timeout; wait for the response head (and between body reads) under the read timeout. Never
 * throws; every failure is a ProxyError value in the result, TLS failures worded as nginx words
 * them (upstream-tls.ts). The attempt's connect time includes the handshake, as nginx counts it.
 */
export interface UpstreamClient {
  readonly name: UpstreamClientName;
  exchange(o: ExchangeOptions): Exchange;
  /**
   * Resolves once the client can serve (a client that loads a package does it here); rejects
   * with the reason the process cannot start with it. Absent: ready from the start.
   */
  ready?(): Promise<void>;
}
