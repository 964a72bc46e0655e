/**
 * `websocket_allowed_origins`: which web pages may open a WebSocket through Sluice. Browsers send
 * cookies with a cross-site `new WebSocket(url)` and leave the check of `Origin` to the server
 * (RFC 6455 10.2); a backend that does not check it can be driven by any page the user visits
 * (cross-site WebSocket hijacking). The check runs in the access phase, on WebSocket handshakes
 * only (HTTP/1.1 Upgrade and HTTP/2 extended CONNECT), before any upstream connection.
 */
import type { OriginRule, Settings } from '../config/types.js';
import { schemeDefaultPort } from '../core/default-ports.js';
import type { RequestContext } from '../proxy/context/request-context.js';
import type { Variables } from '../proxy/context/variables.js';
import type { RouteDecision } from './decision.js';


/** An origin as RFC 6454 serialises it, normalised: lower-case scheme and host, no default port. */
export interface Origin {
  readonly scheme: string;
  readonly host: string;
  /** '' for the scheme's default port. */
  readonly port: string;
}

/** `scheme://host[:port]` (no path), or null when the text is no such origin. */
export function parseOrigin(text: string): Origin | null {
  const m = /^([a-z][a-z0-9+.-]*):\/\/(\[[0-9a-f:.]+\]|[^/:?#\s[\]]+)(?::([0-9]{1,5}))?\/?$/i.exec(text.trim());
  if (m === null) return null;
  const scheme = m[1]!.toLowerCase();
  const port = m[3] === undefined || m[3] === schemeDefaultPort(scheme) ? '' : String(Number(m[3]));
  return { scheme, host: m[2]!.toLowerCase(), port };
}

function matches(rule: OriginRule, origin: Origin, evaluate: (rule: OriginRule & { kind: 'value' }) => Origin | null): boolean {
  switch (rule.kind) {
    case 'any':
      return true;
    case 'host':
      if (rule.scheme !== null && rule.scheme !== origin.scheme) return false;
      if (rule.port !== null && rule.port !== origin.port) return false;
      if (rule.scheme === null && rule.port === null && origin.port !== '') return false;
      return rule.wildcard
        ? origin.host.length > rule.host.length && origin.host.endsWith(`.${rule.host}`)
        : origin.host === rule.host;
    case 'value': {
      const want = evaluate(rule);
      return want !== null && want.scheme === origin.scheme && want.host === origin.host && want.port === origin.port;
    }
    default:
      return false;
  }
}

/**
 * The access phase's Origin check: null when the request is no WebSocket handshake, the level has
 * no list, or the list allows its Origin; else a 403 decision, logged with the Origin.
 */
export function originRefused(settings: Settings, ctx: RequestContext, vars: Variables): (RouteDecision & { readonly kind: 'error' }) | null {
  const rules = settings.websocketOrigins;
  if (rules === null || !isWebSocketHandshake(ctx)) return null;
  const header = ctx.headers.origin;
  if (header === undefined) {
    if (rules.some((r) => r.kind === 'none' || r.kind === 'any')) return null;
    return { kind: 'error', settings, status: 403, log: 'WebSocket handshake without "Origin" is not allowed by websocket_allowed_origins' };
  }
  if (header === 'null' && rules.some((r) => r.kind === 'null' || r.kind === 'any')) return null;
  const origin = parseOrigin(header);
  const evaluate = (r: OriginRule & { kind: 'value' }): Origin | null => parseOrigin(vars.evaluate(r.value, ctx));
  if (origin !== null && rules.some((r) => matches(r, origin, evaluate))) return null;
  if (origin === null && rules.some((r) => r.kind === 'any')) return null;
  return { kind: 'error', settings, status: 403, log: `WebSocket handshake from origin "${header}" is not allowed by websocket_allowed_origins` };
}

/** An HTTP/1.1 `Upgrade: websocket` request, or an RFC 8441 extended CONNECT (which sets `websocket`). */
function isWebSocketHandshake(ctx: RequestContext): boolean {
  if (ctx.websocket) return true;
  const up = ctx.headers.upgrade;
  return up !== undefined && up.split(',')[0]!.trim().toLowerCase() === 'websocket';
}
