/**
 * The one catalog of data-plane failures. Every failure becomes a `ProxyError` value carrying a
 * stable code; `statusFor` (via the catalog) is the only place that turns it into an HTTP status.
 * docs/errors.md lists the same codes; a test keeps the two in step.
 */
import { constants as osConstants } from 'node:os';

export type ErrorSource = 'client' | 'upstream' | 'internal';

/** Which `proxy_next_upstream` condition a failure counts as, if any. */
export type RetryClass = 'error' | 'timeout' | 'invalid_header' | null;

export interface CatalogEntry {
  readonly status: number;
  readonly source: ErrorSource;
  readonly retry: RetryClass;
  /** nginx-style wording for the error log. */
  readonly text: string;
}

export const ERROR_CATALOG = Object.freeze({
  CLIENT_BAD_REQUEST: { status: 400, source: 'client', retry: null, text: 'client sent invalid request' },
  CLIENT_BAD_UPGRADE: { status: 400, source: 'client', retry: null, text: 'client sent invalid WebSocket upgrade request' },
  CLIENT_CLOSED: { status: 499, source: 'client', retry: null, text: 'client prematurely closed connection' },
  CLIENT_HTTP_VERSION: { status: 505, source: 'client', retry: null, text: 'client sent invalid version while reading client request line' },
  CLIENT_UNKNOWN_TRANSFER_ENCODING: { status: 501, source: 'client', retry: null, text: 'client sent unknown "Transfer-Encoding" while reading client request headers' },
  CLIENT_BODY_TOO_LARGE: { status: 413, source: 'client', retry: null, text: 'client intended to send too large body' },
  CLIENT_URI_TOO_LONG: { status: 414, source: 'client', retry: null, text: 'client sent too long URI while reading client request line' },
  CLIENT_HEADER_TOO_LARGE: { status: 494, source: 'client', retry: null, text: 'client sent too long header line while reading client request headers' },
  CLIENT_HEADER_TIMEOUT: { status: 408, source: 'client', retry: null, text: 'client timed out (110: Connection timed out) while reading client request headers' },
  CLIENT_BODY_TIMEOUT: { status: 408, source: 'client', retry: null, text: 'client timed out (110: Connection timed out) while reading client request body' },
  CLIENT_SEND_TIMEOUT: { status: 408, source: 'client', retry: null, text: 'client timed out (110: Connection timed out) while sending to client' },
  FORWARD_BAD_TARGET: { status: 400, source: 'client', retry: null, text: 'client sent invalid forward proxy target' },
  FORWARD_AUTH_REQUIRED: { status: 407, source: 'client', retry: null, text: 'forward proxy authentication required' },
  FORWARD_DESTINATION_REFUSED: { status: 403, source: 'client', retry: null, text: 'forward proxy destination is not allowed' },
  TOO_MANY_CONNECTIONS: { status: 503, source: 'internal', retry: null, text: 'worker_connections are not enough' },
  UPSTREAM_CONNECT_FAILED: { status: 502, source: 'upstream', retry: 'error', text: 'connect() failed while connecting to upstream' },
  UPSTREAM_CONNECT_TIMEOUT: { status: 504, source: 'upstream', retry: 'timeout', text: 'upstream timed out (110: Connection timed out) while connecting to upstream' },
  UPSTREAM_SEND_TIMEOUT: { status: 504, source: 'upstream', retry: 'timeout', text: 'upstream timed out (110: Connection timed out) while sending request to upstream' },
  UPSTREAM_READ_TIMEOUT: { status: 504, source: 'upstream', retry: 'timeout', text: 'upstream timed out (110: Connection timed out) while reading response header from upstream' },
  UPSTREAM_RESET: { status: 502, source: 'upstream', retry: 'error', text: 'upstream prematurely closed connection while reading response header from upstream' },
  UPSTREAM_INVALID_RESPONSE: { status: 502, source: 'upstream', retry: 'invalid_header', text: 'upstream sent invalid header while reading response header from upstream' },
  UPSTREAM_HEADER_TOO_BIG: { status: 502, source: 'upstream', retry: 'invalid_header', text: 'upstream sent too big header while reading response header from upstream' },
  UPSTREAM_UNREQUESTED_UPGRADE: { status: 502, source: 'upstream', retry: 'invalid_header', text: 'upstream sent 101 to a request that did not ask for an upgrade' },
  UPSTREAM_UPGRADE_MISMATCH: { status: 502, source: 'upstream', retry: 'invalid_header', text: 'upstream switched to a protocol the client did not ask for' },
  UPSTREAM_BAD_ACCEPT: { status: 502, source: 'upstream', retry: 'invalid_header', text: 'upstream sent 101 without a valid Sec-WebSocket-Accept' },
  UPSTREAM_TLS_VERIFY_FAILED: { status: 502, source: 'upstream', retry: 'error', text: 'upstream SSL certificate verify error: while SSL handshaking to upstream' },
  UPSTREAM_TLS_HANDSHAKE_FAILED: { status: 502, source: 'upstream', retry: 'error', text: 'SSL_do_handshake() failed while SSL handshaking to upstream' },
  UPSTREAM_UNRESOLVED: { status: 502, source: 'upstream', retry: null, text: 'could not be resolved' },
  UPSTREAM_URL_INVALID: { status: 500, source: 'internal', retry: null, text: 'invalid URL in "proxy_pass" with variables' },
  NO_LIVE_UPSTREAMS: { status: 502, source: 'upstream', retry: null, text: 'no live upstreams while connecting to upstream' },
  INVALID_HEADER_VALUE: { status: 500, source: 'internal', retry: null, text: 'header value with a control character (CR, LF, NUL...) not sent' },
  INTERNAL: { status: 500, source: 'internal', retry: null, text: 'internal error' },
} satisfies Record<string, CatalogEntry>);

export type ErrorCode = keyof typeof ERROR_CATALOG;

/** Options for a {@link ProxyError}. */
export interface ProxyErrorOptions {
  readonly cause?: unknown;
  /** The system error as nginx prints it ("111: Connection refused"). */
  readonly errno?: string;
}

/** A data-plane failure as a value: never thrown across an event boundary. */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly source: ErrorSource;
  readonly retry: RetryClass;
  readonly detail: string | null;
  readonly errno: string | null;

  constructor(code: ErrorCode, detail?: string, options?: ProxyErrorOptions) {
    const entry: CatalogEntry = ERROR_CATALOG[code];
    super(wording(entry.text, options?.errno ?? null, detail ?? null), options);
    this.name = 'ProxyError';
    this.code = code;
    this.status = entry.status;
    this.source = entry.source;
    this.retry = entry.retry;
    this.detail = detail ?? null;
    this.errno = options?.errno ?? null;
  }
}

/** nginx puts the system error right after the failed call: "connect() failed (111: Connection refused) while ...". */
function wording(text: string, errno: string | null, detail: string | null): string {
  let s = text;
  if (errno !== null) {
    const at = s.indexOf(' while ');
    s = at === -1 ? `${s} (${errno})` : `${s.slice(0, at)} (${errno})${s.slice(at)}`;
  }
  return detail ? `${s} (${detail})` : s;
}

/**
 * The error's log wording for another phase than the one its catalog text names: nginx says
 * "while reading upstream" once the response head is in ("upstream timed out (110: Connection
 * timed out) while reading upstream").
 */
export function messageWhile(err: ProxyError, phase: string): string {
  const text: string = ERROR_CATALOG[err.code].text;
  const at = text.indexOf(' while ');
  return wording(`${at === -1 ? text : text.slice(0, at)} while ${phase}`, err.errno, err.detail);
}

/** strerror() texts nginx prints for the connect failures Node reports (numbers from the platform). */
const CONNECT_ERRNO_TEXT: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'Connection refused',
  EHOSTUNREACH: 'No route to host',
  ENETUNREACH: 'Network is unreachable',
  EADDRNOTAVAIL: 'Cannot assign requested address',
};

/** Turns whatever a socket or parser reported into a ProxyError; unknown errors are internal. */
export function toProxyError(err: unknown, fallback: ErrorCode = 'INTERNAL'): ProxyError {
  if (err instanceof ProxyError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  const sys = e?.code;
  const connectText = sys === undefined ? undefined : CONNECT_ERRNO_TEXT[sys];
  if (sys !== undefined && connectText !== undefined) {
    const errno = (osConstants.errno as Readonly<Record<string, number>>)[sys];
    return new ProxyError('UPSTREAM_CONNECT_FAILED', undefined, { cause: err, errno: errno === undefined ? connectText : `${errno}: ${connectText}` });
  }
  if (sys === 'ECONNRESET' || sys === 'EPIPE' || sys === 'ECONNABORTED') {
    return new ProxyError('UPSTREAM_RESET', sys, { cause: err });
  }
  if (sys === 'HPE_HEADER_OVERFLOW') return new ProxyError('UPSTREAM_HEADER_TOO_BIG', undefined, { cause: err });
  if (sys !== undefined && sys.startsWith('HPE_')) {
    return new ProxyError('UPSTREAM_INVALID_RESPONSE', sys, { cause: err });
  }
  return new ProxyError(fallback, e?.message, { cause: err });
}
