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

/** The lower-cased tokens of every Connection header line in a raw header list. */
export function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if ((rawHeaders[i] as string).toLowerCase() !== 'connection') continue;
    for (const t of (rawHeaders[i + 1] as string).split(',')) {
      const tok = t.trim().toLowerCase();
      if (tok) tokens.add(tok);
    }
  }
  return tokens;
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
