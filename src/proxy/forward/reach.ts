/**
 * From a destination to a connection, the same for every kind of forward-proxy request: its
 * `$proxy_host` and metrics label, the server's limit_req and limit_conn (nginx's preaccess phase,
 * src/limits/preaccess.ts), admission (credentials, allowlist, resolved addresses), then the
 * connection under proxy_connect_timeout. What cannot go on is handed to the front end's `refuse`
 * (its page, in the way of its protocol); null then.
 */
import type { Socket } from 'node:net';
import type { Settings } from '../../config/types.js';
import { ERROR_CATALOG } from '../../core/errors.js';
import type { ProxyError } from '../../core/errors.js';
import { logContext } from '../context/log-context.js';
import type { RequestContext } from '../context/request-context.js';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { admit, refused } from './admission.js';
import type { Refusal } from './admission.js';
import type { Destination } from './destinations.js';
import { dial } from './dial.js';
import { formatHostPort } from '../../config/address.js';
import { FORWARD_UPSTREAM } from './forward-upstream.js';
import { preaccessPending, runPreaccess } from '../../limits/preaccess.js';

/** What a front end lends: where the request stands, and how it answers. */
export interface ForwardRequest {
  readonly rt: ProxyRuntime;
  readonly ctx: RequestContext;
  readonly settings: Settings;
  /** The client is gone: nothing more is done for it. */
  gone(): boolean;
  /** Answers the request with this refusal (its page, its headers). */
  refuse(refusal: Refusal): void;
}

/** A target the forward proxy cannot read: 400, logged at info. */
export function badTarget(r: ForwardRequest, target: string): void {
  r.rt.errorLog(r.settings).log('info', `${ERROR_CATALOG.FORWARD_BAD_TARGET.text} "${target}"${logContext(r.ctx)}`, r.ctx.conn.id);
  r.refuse(refused(ERROR_CATALOG.FORWARD_BAD_TARGET.status, null));
}

/** Answers the request with `refusal`, its line (if any) in the error log at `error` first. */
export function refuseLogged(r: ForwardRequest, refusal: Refusal): void {
  if (refusal.log !== null) r.rt.errorLog(r.settings).log('error', `${refusal.log}${logContext(r.ctx)}`, r.ctx.conn.id);
  r.refuse(refusal);
}

/**
 * nginx's preaccess phase with the forward-proxy server's limits (its own or http's), before
 * admission as nginx runs it before the access phase: limit_req (a delay waits here), then
 * limit_conn, whose count the request holds until it ends (a CONNECT: until its tunnel closes).
 * A refusal gets limit_req_status / limit_conn_status before anything is resolved or connected.
 * False when the request was answered, or ended while it waited.
 */
async function limitsPass(r: ForwardRequest): Promise<boolean> {
  const { rt, ctx, settings } = r;
  if (!preaccessPending(settings, ctx)) return true;
  const result = await runPreaccess(rt, settings, ctx);
  if (result === null || r.gone()) return false;
  if (result.kind === 'continue') return true;
  r.refuse(refused(result.status, null));
  return false;
}

/** Logs one failed connection to a destination, as nginx logs a failed upstream try. */
function logDialFailure(r: ForwardRequest, addr: string, error: ProxyError): void {
  const { ctx } = r;
  r.rt.errorLog(r.settings).log('error', `${error.message}${logContext(ctx, `${ctx.proxyPass?.scheme ?? 'http'}://${addr}`)}`, ctx.conn.id);
}

/** The connection to `dest`, or null when the request was answered (refused, unreachable, gone). */
export async function reachDestination(r: ForwardRequest, dest: Destination, scheme: 'http' | 'https'): Promise<Socket | null> {
  const { ctx, settings } = r;
  const where = formatHostPort(dest.host, dest.port);
  ctx.proxyPass = { url: `${scheme}://${where}`, scheme, upstream: FORWARD_UPSTREAM, uri: null, proxyHost: where, tls: null };
  if (!(await limitsPass(r))) return null;
  const admission = await admit(settings, ctx, dest, r.rt.dynamic);
  if (r.gone()) return null;
  if (!admission.ok) {
    refuseLogged(r, admission);
    return null;
  }
  const dialled = await dial(admission.addresses, settings.proxyConnectTimeout, ctx.attempts, (addr, err) => logDialFailure(r, addr, err));
  if ('error' in dialled) {
    r.refuse(refused(dialled.error.status, null));
    return null;
  }
  if (r.gone()) {
    dialled.socket.destroy();
    return null;
  }
  return dialled.socket;
}
