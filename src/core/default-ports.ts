/** The port a URL scheme implies when none is written (RFC 6454 folds it out of an origin). */
const DEFAULT_PORTS: Readonly<Record<string, string>> = { http: '80', https: '443', ws: '80', wss: '443' };

/** The default port of `scheme` (lower case) as text, or undefined for a scheme without one here. */
export function schemeDefaultPort(scheme: string): string | undefined {
  return DEFAULT_PORTS[scheme];
}
