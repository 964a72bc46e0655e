/**
 * nginx's rules for moving a request on to the next server (proxy_next_upstream,
 * ngx_http_upstream_next): what a try's end says, which statuses count as server failures, and
 * when a request that reached a server may be sent again. Shared by the attempt loop
 * (attempts.ts) and the try (peer-exchange.ts).
 */
import type { ProxyError } from '../../core/errors.js';
import type { RequestContext } from '../context/request-context.js';
import { requestHasBody } from '../context/request-context.js';
import type { ProxyRoute } from './proxy-route.js';

/** How one try at one server ended. */
export type TryOutcome =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly error: ProxyError;
      /** The request reached the server (so a retry would repeat it). */
      readonly sent: boolean;
      /** Whether this counts against the server's max_fails. */
      readonly countFailure: boolean;
      /** False when something already reached the client: never retry then. */
      readonly retryable: boolean;
    };

/** nginx: POST, LOCK and PATCH are not passed to another server once sent, unless non_idempotent. */
const NON_IDEMPOTENT = new Set(['POST', 'LOCK', 'PATCH']);

/** Statuses that count as server failures when listed in proxy_next_upstream (403/404 never do). */
export const FAILURE_STATUSES: ReadonlySet<number> = new Set([500, 502, 503, 504, 429]);

/**
 * nginx's request_body_no_buffering (ngx_http_proxy_handler): the body streams when
 * proxy_request_buffering is off, unless proxy_set_body replaces it, proxy_pass_request_body
 * drops it, or it has no length and goes to an HTTP/1.0 upstream (which cannot take it chunked).
 */
export function requestBodyUnbuffered(route: ProxyRoute, ctx: RequestContext): boolean {
  const s = route.settings;
  return !s.buffering.requestBuffering && s.buffering.proxySetBody === null && s.proxyPassRequestBody
    && (ctx.headers['content-length'] !== undefined || s.proxyHttpVersion === '1.1');
}

/**
 * Whether a failure may go to the next server under `proxy_next_upstream`. A body that was read
 * whole (proxy_request_buffering, proxy_set_body) can be sent again; a streamed one that has been
 * sent cannot (nginx: request_body_no_buffering), so its request is never repeated.
 */
export function retryAllowed(route: ProxyRoute, ctx: RequestContext, condition: string | null, sent: boolean): boolean {
  const set = route.settings.proxyNextUpstream as ReadonlySet<string>;
  if (condition === null || !set.has(condition)) return false;
  if (!sent) return true;
  if (requestHasBody(ctx) && requestBodyUnbuffered(route, ctx)) return false;
  return !NON_IDEMPOTENT.has(ctx.method) || set.has('non_idempotent');
}
