/**
 * Hop-by-hop header rules (RFC 9110 7.6.1): these describe one connection and are never
 * forwarded; neither is any header named in the Connection header.
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'http2-settings',
]);

export function isHopByHop(lowerName: string): boolean {
  return HOP_BY_HOP.has(lowerName) || lowerName.startsWith('proxy-');
}

/** Shared by every header list without a Connection token (most requests and responses). */
const NO_TOKENS: ReadonlySet<string> = new Set<string>();

/** The lower-cased tokens of every Connection header line in a raw header list. */
export function connectionTokens(rawHeaders: readonly string[]): ReadonlySet<string> {
  let tokens: Set<string> | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    // Length first: most names are not 10 characters long, and then need no lower-casing.
    if (name.length !== 10 || name.toLowerCase() !== 'connection') continue;
    for (const t of (rawHeaders[i + 1] as string).split(',')) {
      const tok = t.trim().toLowerCase();
      if (tok) (tokens ??= new Set<string>()).add(tok);
    }
  }
  return tokens ?? NO_TOKENS;
}

/** True when a comma list contains `token` (case-insensitive, whole tokens only). */
export function hasToken(value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false;
  const lines = Array.isArray(value) ? value : [value];
  for (const line of lines) {
    for (const t of line.split(',')) if (t.trim().toLowerCase() === token) return true;
  }
  return false;
}
