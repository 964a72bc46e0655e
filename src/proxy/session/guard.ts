/**
 * The safety net around each request: whatever a request's handling throws, synchronously or as a
 * rejected promise, ends that request only. A ProxyError (a failure the code knows, such as a
 * header value it refuses to send) is logged at `error` in nginx's words; anything else is a bug:
 * logged at `alert` with its stack and published as an `internalError` event (the metrics count
 * it). Either way the client gets a bare error page if nothing of the response went out yet, else
 * its connection (or HTTP/2 stream) is closed; the proxy goes on serving everyone else.
 */
import { ERROR_CATALOG, ProxyError } from '../../core/errors.js';
import { events } from '../../observability/events.js';
import { logContext } from '../context/log-context.js';
import type { ProxyRuntime } from './proxy-runtime.js';
import type { RequestContext } from '../context/request-context.js';
import { errorResponse } from '../answer/respond.js';
import type { LocalResponse } from '../answer/respond.js';

/** How a front end answers a request that failed outside its normal paths. */
export interface FrontEndAnswer {
  /** True once any byte of the response has gone out: closing is the only answer left. */
  started(): boolean;
  send(r: LocalResponse): void;
  /**
   * Closes the connection or stream; never throws. `timedOut`: a client time-out under
   * `reset_timedout_connection on`, which resets the connection (RST) instead of closing it.
   */
  abort(timedOut?: boolean): void;
}

/** The error log line's text for an unexpected error: message and stack. */
function describe(err: unknown): string {
  if (err instanceof Error) return err.stack ?? `${err.name}: ${err.message}`;
  return `non-error thrown: ${String(err)}`;
}

/** Logs and counts an error that escaped a request's handling, then answers or closes. */
export function failRequest(rt: ProxyRuntime, ctx: RequestContext | null, front: FrontEndAnswer, err: unknown): void {
  const where = ctx === null ? '' : logContext(ctx);
  const connection = ctx?.conn.id;
  let status = ERROR_CATALOG.INTERNAL.status;
  if (err instanceof ProxyError) {
    status = err.status;
    rt.errorLog(ctx?.settings ?? null).log('error', `${err.message}${where}`, connection);
  } else {
    rt.errorLog(ctx?.settings ?? null).log('alert', `unexpected error while handling the request${where}: ${describe(err)}`, connection);
    if (events.internalError.hasSubscribers) events.internalError.publish({ ctx, error: err });
  }
  try {
    // A bare page: no add_header (its values may be what failed).
    if (front.started()) front.abort();
    else front.send(errorResponse(status, null, null, null));
  } catch {
    front.abort();
  }
}
