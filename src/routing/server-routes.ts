/**
 * One server's locations, compiled once per config generation, and what happens after the server
 * is chosen: the server rewrite phase, nginx's location search, the `internal` check, the
 * location rewrite phase (routing/rewrite-run.ts), the access phase and the content handler. Internal redirects (`index`,
 * `try_files`) come back here with a new URI, or to a named location, as nginx's
 * ngx_http_internal_redirect and ngx_http_named_location do.
 */
import type { LocationConfig, ServerConfig, Settings } from '../config/types.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import { ERROR_CATALOG } from '../core/errors.js';
import { declaredBodySize } from '../proxy/context/request-context.js';
import { accessDenied } from './access.js';
import { checkAuthBasic } from './auth-basic.js';
import { applyRealIp } from './realip.js';
import { preaccessPending } from '../limits/preaccess.js';
import type { RouteDecision } from './decision.js';
import { LocationLevel } from './locations.js';
import { constantValue } from '../config/complex-value.js';
import { runScript, type ScriptHost } from './rewrite-run.js';

/**
 * How many times a request may be redirected internally: nginx's NGX_HTTP_MAX_URI_CHANGES (10);
 * the next one ends it with 500 and "rewrite or internal redirection cycle".
 */
export const MAX_URI_CHANGES = 10;

/** nginx's access phase, after the rewrite phase (so `return` is answered before allow/deny). */
function forbidden(settings: Settings, ctx: RequestContext): RouteDecision | null {
  if (settings.access.length === 0 || !accessDenied(settings.access, ctx.conn, ctx.realIp)) return null;
  return { kind: 'error', settings, status: 403, log: 'access forbidden by rule' };
}

/**
 * nginx's find-config phase refuses a declared body over `client_max_body_size` of the level that
 * serves the request, before rewrite and access (ngx_http_core_find_config_phase): 413, logged at
 * error. A body without Content-Length is counted as it streams (session/body-relay.ts).
 */
export function bodyTooLarge(settings: Settings, ctx: RequestContext): (RouteDecision & { readonly kind: 'error' }) | null {
  const declared = declaredBodySize(ctx);
  if (settings.clientMaxBodySize === 0 || declared <= settings.clientMaxBodySize) return null;
  return { kind: 'error', settings, status: ERROR_CATALOG.CLIENT_BODY_TOO_LARGE.status, log: `${ERROR_CATALOG.CLIENT_BODY_TOO_LARGE.text}: ${declared} bytes` };
}

/** nginx's access phase, second half: auth_basic (routing/auth-basic.ts), after allow/deny. */
function unauthorized(settings: Settings, ctx: RequestContext): RouteDecision | null {
  if (settings.authBasicRealm === null || settings.authBasicUserFile === null) return null;
  const r = checkAuthBasic(settings, ctx.headers.authorization);
  if (r.ok) return null;
  const realm = r.realm === undefined ? undefined : `Basic realm="${r.realm.replace(/["\\]/g, '\\$&')}"`;
  return {
    kind: 'error', settings, status: r.status,
    ...(r.log === undefined ? {} : { log: r.log }),
    ...(realm === undefined ? {} : { headers: ['WWW-Authenticate', realm] }),
  };
}

/** The access phase: allow/deny, then auth_basic. */
function access(settings: Settings, ctx: RequestContext): RouteDecision | null {
  return forbidden(settings, ctx) ?? unauthorized(settings, ctx);
}

/** The content handler of a level, once its `return` and access phase let the request through. */
function content(settings: Settings, ctx: RequestContext): RouteDecision {
  if (settings.proxyPass) {
    ctx.proxyPass = settings.proxyPass;
    return { kind: 'proxy', settings };
  }
  if (settings.adminHandler) return { kind: 'admin', settings, handler: settings.adminHandler };
  // Neither proxies nor serves a status: nginx's static modules serve files from root or alias.
  return { kind: 'files', settings };
}

function accessAndContent(settings: Settings, ctx: RequestContext): RouteDecision {
  return access(settings, ctx) ?? content(settings, ctx);
}

/** A request no location takes: the server level's access phase, then its content. */
function serverLevelAccess(settings: Settings, ctx: RequestContext): RouteDecision {
  const denied = access(settings, ctx);
  if (denied) return denied;
  // nginx: stub_status written at server level serves what no location takes; otherwise the
  // server's own root does.
  if (settings.adminHandler) return { kind: 'admin', settings, handler: settings.adminHandler };
  return { kind: 'files', settings };
}

/**
 * nginx's preaccess phase (limit_req, limit_conn), between rewrite and access: when the level has
 * limits this request has not been through, the session checks them before `then` goes on.
 */
function preaccess(settings: Settings, ctx: RequestContext, then: (settings: Settings, ctx: RequestContext) => RouteDecision): RouteDecision {
  if (!preaccessPending(settings, ctx)) return then(settings, ctx);
  return { kind: 'preaccess', settings, next: () => then(settings, ctx) };
}

/**
 * nginx's find-config phase on NGX_DONE: 301 to the location's name, the arguments kept, made
 * absolute as any Location (absolute_redirect); `location = /ws` keeps it from happening.
 */
function autoRedirect(settings: Settings, location: LocationConfig, ctx: RequestContext): RouteDecision {
  const target = ctx.args === '' ? location.pattern : `${location.pattern}?${ctx.args}`;
  return { kind: 'return', settings, action: { code: 301, text: constantValue(target) } };
}

export class ServerRoutes {
  readonly server: ServerConfig;
  readonly #level: LocationLevel;
  readonly #named = new Map<string, LocationConfig>();
  readonly #host: ScriptHost;

  constructor(server: ServerConfig, host: ScriptHost) {
    this.server = server;
    this.#host = host;
    this.#level = new LocationLevel(server.locations);
    for (const l of server.locations) if (l.modifier === '@') this.#named.set(l.pattern, l);
  }

  /**
   * From the server rewrite phase on, for `ctx.uri` (already normalised): the server's rewrite
   * script runs once, then the location search and the location's phases (#find).
   */
  locate(ctx: RequestContext): RouteDecision {
    const server = this.server;
    ctx.location = null;
    ctx.settings = server.settings;
    const script = server.settings.rewrite.script;
    if (script !== null) {
      const answer = runScript(script, null, ctx, this.#host);
      if (answer !== null) return answer;
    }
    return this.#find(ctx);
  }

  /**
   * nginx's find-config phase and what follows it; a location's rewrite script that changes the
   * URI (`rewrite` without a flag, or `last`) sends the request back to the location search.
   */
  #find(ctx: RequestContext): RouteDecision {
    const server = this.server;
    for (;;) {
      ctx.location = null;
      ctx.settings = server.settings;
      ctx.uriChanged = false;
      const m = this.#level.find(ctx.uri);
      if (!m) {
        const large = bodyTooLarge(server.settings, ctx);
        if (large) return large;
        return preaccess(server.settings, ctx, serverLevelAccess);
      }
      const settings = m.location.settings;
      ctx.location = m.location;
      ctx.settings = settings;
      if (m.redirect === true) return autoRedirect(settings, m.location, ctx);
      if (m.captures.length > 0) {
        ctx.captures = m.captures;
        ctx.namedCaptures = { ...ctx.namedCaptures, ...m.named };
      }
      // nginx's find-config phase: an `internal` location is not found by a client's own request.
      if (settings.files.internal && !ctx.internal) return { kind: 'error', settings, status: 404 };
      applyRealIp(settings, ctx);
      const large = bodyTooLarge(settings, ctx);
      if (large) return large;
      const next = this.#locationPhases(ctx, m.location);
      if (next !== null) return next;
      // ngx_http_core_post_rewrite_phase: the URI changed, search again (counted as a URI change).
      const cycle = this.#count(ctx, `while processing "${ctx.uri}"`);
      if (cycle !== null) return cycle;
    }
  }

  /**
   * The location rewrite phase, then access and content with the settings the script left (an
   * `if` block's, when one was true); null when the script changed the URI for a new search.
   */
  #locationPhases(ctx: RequestContext, location: LocationConfig): RouteDecision | null {
    const script = location.settings.rewrite.script;
    if (script !== null) {
      const answer = runScript(script, location, ctx, this.#host);
      if (answer !== null) return answer;
      if (ctx.uriChanged) return null;
    }
    return preaccess(ctx.settings as Settings, ctx, accessAndContent);
  }

  /**
   * ngx_http_internal_redirect: the request goes through the server's phases again with a new
   * URI and arguments (location search included); `$request_uri` stays the client's.
   */
  redirect(ctx: RequestContext, uri: string, args: string | null): RouteDecision {
    const cycle = this.#count(ctx, `while internally redirecting to "${uri}"`);
    if (cycle !== null) return cycle;
    ctx.uri = uri;
    ctx.args = args ?? '';
    ctx.hasArgs = args !== null;
    ctx.internal = true;
    ctx.unparsedUri = false;
    ctx.validLocation = true;
    ctx.addUriToAlias = false;
    return this.locate(ctx);
  }

  /**
   * ngx_http_named_location: the request goes on in `@name` from its rewrite phase, with its URI
   * unchanged; 500 when the server has no such location.
   */
  named(ctx: RequestContext, name: string): RouteDecision {
    const cycle = this.#count(ctx, `while redirect to named location "${name}"`);
    if (cycle !== null) return cycle;
    const location = this.#named.get(name);
    if (location === undefined) {
      return { kind: 'error', settings: ctx.settings ?? this.server.settings, status: 500, log: `could not find named location "${name}"` };
    }
    ctx.internal = true;
    ctx.location = location;
    const settings = location.settings;
    ctx.settings = settings;
    applyRealIp(settings, ctx);
    const next = this.#locationPhases(ctx, location);
    if (next !== null) return next;
    return this.#count(ctx, `while processing "${ctx.uri}"`) ?? this.#find(ctx);
  }

  #count(ctx: RequestContext, what: string): RouteDecision | null {
    if (++ctx.uriChanges <= MAX_URI_CHANGES) return null;
    return { kind: 'error', settings: ctx.settings ?? this.server.settings, status: 500, log: `rewrite or internal redirection cycle ${what}` };
  }
}

/** Compiled once per server per config generation (a server on several addresses shares it). */
const COMPILED = new WeakMap<ServerConfig, ServerRoutes>();

/**
 * The server's compiled routes. The runtime that compiles them (router.ts) gives the host their
 * rewrite scripts use; later calls find them compiled.
 */
export function serverRoutes(server: ServerConfig, host?: ScriptHost): ServerRoutes {
  let r = COMPILED.get(server);
  if (r === undefined) {
    if (host === undefined) throw new Error('internal: the routes of a server are compiled by its runtime first');
    COMPILED.set(server, r = new ServerRoutes(server, host));
  }
  return r;
}
