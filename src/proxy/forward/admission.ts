/**
 * Whether a forward-proxy request may go where it asks, in this order: the server's allow/deny,
 * the client's credentials (`Proxy-Authorization: Basic`, RFC 9110 11.7.2, against the
 * forward_proxy_auth_basic_user_file), the name against `forward_proxy_allow` (a name no rule could allow is refused before any DNS
 * query), then the addresses it resolves to, each judged on its own (destinations.ts). What comes
 * out is the list of addresses the proxy may connect to, or the refusal (status, log line, headers).
 */
import { formatHostPort } from '../../config/address.js';
import { literalAddress, systemResolveHost } from '../../config/hosts.js';
import type { Settings, SockAddr } from '../../config/types.js';
import { ERROR_CATALOG } from '../../core/errors.js';
import { accessDenied } from '../../routing/access.js';
import { credentials, usersOf, verifyPassword } from '../../routing/auth-basic.js';
import type { DynamicUpstreams } from '../../upstream/dynamic-upstreams.js';
import type { RequestContext } from '../context/request-context.js';
import { addressAllowed, addressRulesFor, nameAllowed } from './destinations.js';
import type { Destination } from './destinations.js';

/** A request the forward proxy answers itself: the status, the error-log line, extra headers. */
export interface Refusal {
  readonly ok: false;
  readonly status: number;
  /** The error-log line (without the request's context), or null for none. */
  readonly log: string | null;
  readonly headers: readonly string[];
}

export type Admission = { readonly ok: true; readonly addresses: readonly SockAddr[] } | Refusal;

export function refused(status: number, log: string | null, headers: readonly string[] = []): Refusal {
  return { ok: false, status, log, headers };
}

/** nginx's auth_basic logic and log lines, with the proxy's header names (RFC 9110 11.7). */
async function authRefusal(settings: Settings, ctx: RequestContext): Promise<Admission | null> {
  const { authRealm: realm, authUserFile: file } = settings.forwardProxy;
  if (realm === null || file === null) return null;
  const header = ctx.headers['proxy-authorization'];
  const ask = (log: string | null): Admission => refused(ERROR_CATALOG.FORWARD_AUTH_REQUIRED.status, log, ['Proxy-Authenticate', `Basic realm="${realm.replace(/["\\]/g, '\\$&')}"`]);
  const creds = credentials(header);
  if (creds === null) return ask(header === undefined ? null : 'no user/password was provided for basic authentication');
  let users: ReadonlyMap<string, string>;
  try {
    users = usersOf(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return refused(e.code === 'EACCES' ? 403 : 500, `open() "${file}" failed (${e.code ?? e.message})`);
  }
  const hash = users.get(creds.user);
  if (hash === undefined) return ask(`user "${creds.user}" was not found in "${file}"`);
  const ok = await verifyPassword(creds.password, hash);
  if (ok === null) return refused(500, `crypt() failed: the password scheme of user "${creds.user}" in "${file}" is not supported`);
  return ok ? null : ask(`user "${creds.user}": password mismatch`);
}

/** The addresses of a name: the `resolver` when the server has one, else the system's (dns.lookup, /etc/hosts). */
async function resolveName(host: string, settings: Settings, dynamic: DynamicUpstreams): Promise<readonly SockAddr[] | string> {
  if (settings.resolver !== null) {
    const r = await dynamic.resolver(settings.resolver).resolve(host, settings.resolverTimeout);
    return r.ok ? r.addresses : `${r.state}: ${r.text}`;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => resolve('110: Operation timed out'), settings.resolverTimeout);
  });
  try {
    return await Promise.race([systemResolveHost(host).catch((err: NodeJS.ErrnoException) => `${err.code ?? err.message}`), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Decides whether `ctx` may reach `dest`, and on which addresses. */
export async function admit(settings: Settings, ctx: RequestContext, dest: Destination, dynamic: DynamicUpstreams): Promise<Admission> {
  // The server's allow/deny first, as nginx's access phase runs them before auth_basic: who may
  // use the proxy at all.
  if (accessDenied(settings.access, ctx.conn, ctx.realIp)) return refused(403, 'access forbidden by rule');
  const auth = await authRefusal(settings, ctx);
  if (auth !== null) return auth;
  const rules = settings.forwardProxy.allow;
  const where = formatHostPort(dest.host, dest.port);
  const notAllowed = `${ERROR_CATALOG.FORWARD_DESTINATION_REFUSED.text}: "${where}"`;
  if (!dest.literal && !nameAllowed(rules, dest) && !addressRulesFor(rules, dest.port)) return refused(403, notAllowed);
  let found: readonly SockAddr[];
  const literal = literalAddress(dest.host);
  if (literal !== null) found = [literal];
  else {
    const r = await resolveName(dest.host, settings, dynamic);
    if (typeof r === 'string') return refused(502, `${dest.host} could not be resolved (${r})`);
    found = r;
  }
  const allowed = found.filter((a) => addressAllowed(rules, dest, a.host)).map((a) => ({ ...a, port: dest.port }));
  if (allowed.length === 0) {
    const list = found.map((a) => a.host).join(', ');
    return refused(403, literal !== null ? notAllowed : `${notAllowed} (resolves to ${list})`);
  }
  return { ok: true, addresses: allowed };
}
