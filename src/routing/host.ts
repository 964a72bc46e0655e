/**
 * The host a request names, as nginx reads it (ngx_http_validate_host): from an absolute-form
 * request target if there is one, else from the Host header (RFC 9112 3.2.2), without the port,
 * lower-cased, a trailing dot dropped.
 */

/**
 * nginx's host validation: `..`, `/`, NUL, spaces and control characters make the name invalid,
 * as does an empty one. Returns the normalised host, or null for a name nginx answers with 400.
 */
export function normalizeHost(raw: string): string | null {
  let end = raw.length;
  let lastDot = -2;
  let state: 'usual' | 'literal' | 'rest' = 'usual';
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c === 0x2e) {
      if (lastDot === i - 1) return null;
      lastDot = i;
    } else if (c === 0x3a) {
      if (state === 'usual') {
        end = i;
        state = 'rest';
      }
    } else if (c === 0x5b) {
      if (i === 0) state = 'literal';
    } else if (c === 0x5d) {
      if (state === 'literal') {
        end = i + 1;
        state = 'rest';
      }
    } else if (c <= 0x20 || c === 0x7f || c === 0x2f) {
      return null;
    }
  }
  if (lastDot === end - 1) end--;
  if (end <= 0) return null;
  return raw.slice(0, end).toLowerCase();
}

/** The authority of an absolute-form target (`http://host:port/path`), or null for origin-form. */
export function targetAuthority(rawUri: string): string | null {
  if (rawUri.startsWith('/')) return null;
  const m = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(rawUri);
  return m ? (m[1] as string) : null;
}

/**
 * The host for server selection and `$host`: "" when the request names none (HTTP/1.0 without
 * Host), null when the name is invalid.
 */
export function requestHost(rawUri: string, hostHeader: string | undefined): string | null {
  const authority = targetAuthority(rawUri);
  if (authority !== null) return normalizeHost(authority);
  return hostHeader === undefined ? '' : normalizeHost(hostHeader);
}
