/**
 * nginx's URI normalisation for `$uri` and location matching: percent-decoding, merging of
 * repeated slashes (`merge_slashes on`, the default) and resolution of "." and ".." segments.
 * Returns null for a URI nginx answers with 400 (bad encoding, a ".." above the root, not
 * starting with "/").
 */
/** A "." or ".." segment. */
const DOT_SEGMENT = /\/\.\.?(?:\/|$)/;

export function normalizeUri(rawPath: string, mergeSlashes = true): string | null {
  if (rawPath === '*' ) return null;
  let path = rawPath;
  if (!path.startsWith('/')) {
    // Absolute-form request target (RFC 9112 3.2.2): http://host/path
    const m = /^[a-z][a-z0-9+.-]*:\/\/[^/]*(\/.*)?$/i.exec(path);
    if (!m) return null;
    path = m[1] ?? '/';
  }
  if (path.includes('%')) {
    try {
      path = decodeURIComponent(path);
    } catch {
      return null;
    }
  }
  if (path.includes('\0')) return null;
  // Most paths have nothing to merge or resolve: they are their own normal form.
  if (!path.includes('//') && !DOT_SEGMENT.test(path)) return path;
  const out: string[] = [];
  const segments = path.split('/');
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i] as string;
    const last = i === segments.length - 1;
    if (s === '' && !last && mergeSlashes) continue;
    if (s === '.') {
      if (last) out.push('');
      continue;
    }
    if (s === '..') {
      if (out.length === 0) return null;
      out.pop();
      if (last) out.push('');
      continue;
    }
    out.push(s);
  }
  return '/' + out.join('/');
}

/** The path of an absolute-form target, or the target itself. */
export function originForm(rawUri: string): string {
  if (rawUri.startsWith('/')) return rawUri;
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?]*(.*)$/i.exec(rawUri);
  if (!m) return rawUri;
  const rest = m[1] ?? '';
  return rest.startsWith('/') ? rest : `/${rest}`;
}
