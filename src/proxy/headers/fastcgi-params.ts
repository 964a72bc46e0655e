/**
 * The FastCGI params of one request (ngx_http_fastcgi_create_request): the `fastcgi_param` lines
 * in order (an `if_not_empty` one only with a value), then, with `fastcgi_pass_request_headers`,
 * each client header as `HTTP_NAME` (upper case, "-" as "_") unless a fastcgi_param line names
 * that parameter.
 */
import type { RequestContext } from '../context/request-context.js';
import type { Variables } from '../context/variables.js';
import type { ProxyRoute } from '../session/proxy-route.js';

/** `Content-Type` -> `HTTP_CONTENT_TYPE`. */
function paramName(header: string): string {
  return `HTTP_${header.toUpperCase().replaceAll('-', '_')}`;
}

export function fastcgiParams(ctx: RequestContext, route: ProxyRoute, vars: Variables): [string, string][] {
  const s = route.settings.fastcgi;
  const out: [string, string][] = [];
  const named = new Set<string>();
  for (const p of s.params) {
    named.add(p.name.toUpperCase());
    const value = vars.evaluate(p.value, ctx);
    if (p.ifNotEmpty && value === '') continue;
    out.push([p.name, value]);
  }
  if (!s.passRequestHeaders) return out;
  // A header sent twice goes as one parameter, joined as nginx 1.23 joins them (cookies with "; "):
  // a FastCGI application keeps only the last of two parameters of one name.
  const headers = new Map<string, [string, string]>();
  const raw = ctx.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = paramName(raw[i] as string);
    if (named.has(name)) continue;
    const value = raw[i + 1] as string;
    const prev = headers.get(name);
    if (prev === undefined) headers.set(name, [name, value]);
    else prev[1] += (name === 'HTTP_COOKIE' ? '; ' : ', ') + value;
  }
  for (const p of headers.values()) out.push(p);
  return out;
}
