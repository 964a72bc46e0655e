/**
 * `host:port` parsing shared by `listen`, upstream `server` and `proxy_pass` (nginx's
 * ngx_parse_url): `host`, `host:port`, `1.2.3.4:port`, `[v6]:port`. The error strings are
 * nginx's `u->err` texts, which callers wrap as nginx does ("invalid port in upstream ...").
 */
import { isIP } from 'node:net';

export interface HostPort {
  /** Host as written, IPv6 without brackets, IP addresses in canonical form. */
  readonly host: string;
  /** The port when written, else null. */
  readonly port: number | null;
}

export type HostPortResult =
  | { readonly ok: true; readonly value: HostPort }
  | { readonly ok: false; readonly error: 'invalid port' | 'no host' | 'invalid host' | 'unix' };

const HOST_NAME = /^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$/;

/** Canonical text of an IP address (IPv6 compressed and lower-cased); other hosts unchanged. */
export function canonicalHost(host: string): string {
  if (isIP(host) === 6) return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  return host;
}

/** `host:port` with brackets around IPv6 addresses. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Parses a port; 0 only when `allowZero` (listen, for ephemeral test ports). */
export function parsePort(text: string, allowZero: boolean): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  if (n > 65535 || (n === 0 && !allowZero)) return null;
  return n;
}

export interface SplitOptions {
  readonly allowZeroPort?: boolean;
  /** `*` as a host (listen only). */
  readonly allowWildcard?: boolean;
}

/** Splits `host[:port]` (no scheme, no path). */
export function splitHostPort(text: string, options: SplitOptions = {}): HostPortResult {
  if (text.toLowerCase().startsWith('unix:')) return { ok: false, error: 'unix' };
  let host: string;
  let portText: string | null = null;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return { ok: false, error: 'invalid host' };
    host = text.slice(1, close);
    const rest = text.slice(close + 1);
    if (isIP(host) !== 6) return { ok: false, error: 'invalid host' };
    if (rest !== '') {
      if (!rest.startsWith(':')) return { ok: false, error: 'invalid host' };
      portText = rest.slice(1);
    }
  } else {
    const colon = text.indexOf(':');
    if (colon >= 0 && text.indexOf(':', colon + 1) >= 0) return { ok: false, error: 'invalid host' };
    host = colon < 0 ? text : text.slice(0, colon);
    if (colon >= 0) portText = text.slice(colon + 1);
    if (host === '') return { ok: false, error: 'no host' };
    if (!(options.allowWildcard === true && host === '*') && !HOST_NAME.test(host)) {
      return { ok: false, error: 'invalid host' };
    }
  }
  let port: number | null = null;
  if (portText !== null) {
    port = parsePort(portText, options.allowZeroPort === true);
    if (port === null) return { ok: false, error: 'invalid port' };
  }
  return { ok: true, value: { host: canonicalHost(host), port } };
}

/**
 * nginx's `unix:PATH` address (ngx_parse_url): the path after "unix:", '' when none is written,
 * null when the text is no unix socket address. In a URL (`http://unix:/tmp/app.sock:/uri`) the
 * path ends at the next ':' ({@link splitUnixUrl}).
 */
export function unixSocketPath(text: string): string | null {
  if (!text.toLowerCase().startsWith('unix:')) return null;
  return text.slice(5);
}

/** `unix:/path:/uri` after a URL's scheme: the socket path and the URI (null when none). */
export function splitUnixUrl(rest: string): { readonly path: string; readonly uri: string | null } | null {
  const path = unixSocketPath(rest);
  if (path === null) return null;
  const colon = path.indexOf(':');
  return colon < 0 ? { path, uri: null } : { path: path.slice(0, colon), uri: path.slice(colon + 1) };
}
