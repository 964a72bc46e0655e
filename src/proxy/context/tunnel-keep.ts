/**
 * What an open tunnel's request context keeps for the tunnel's end (RequestContext.compactForTunnel):
 * a tunnel lives for hours, and only its end (the access-log line, the statistics, an error-log
 * line) still reads the request. What those read is known from the config, so the context lets go
 * of the rest when the tunnel opens: the request headers no log names, and the upstream's and the
 * sent headers and the cached map values when no log variable reads them.
 */
export interface TunnelKeep {
  /** The request headers kept (lower-case names); null: every one. */
  readonly headers: ReadonlySet<string> | null;
  /** The upstream's response headers (`$upstream_http_*`, `$upstream_cookie_*`). */
  readonly upstreamHeaders: boolean;
  /** The headers sent to the client (`$sent_http_*`, `$websocket_subprotocol`). */
  readonly sentHeaders: boolean;
  /** The map values cached by the request. */
  readonly mapCache: boolean;
}

/** The whole context: someone outside Sluice may read any of it at the end (event subscribers). */
export const KEEP_ALL: TunnelKeep = Object.freeze({ headers: null, upstreamHeaders: true, sentHeaders: true, mapCache: true });

/**
 * The headers whatever reads a tunnel's end outside the access log reads: `host` (the error-log
 * lines' `host: "..."`, logContext) and `upgrade` (the statistics tell a WebSocket handshake by it
 * when the session is not one).
 */
const ALWAYS = ['host', 'upgrade'];

/** Variables that read request headers besides the `$http_*` family (context/variables.ts). */
const HEADER_READERS: ReadonlyMap<string, string> = new Map([
  ['remote_user', 'authorization'],
  ['content_type', 'content-type'],
  ['content_length', 'content-length'],
  ['proxy_add_x_forwarded_for', 'x-forwarded-for'],
]);

/**
 * What a tunnel must keep for the variables `names` (those of the access-log formats, conditions
 * and file names of its location). A variable that evaluates other values of the config (a map,
 * `$document_root`...: `readsOthers`, Variables.readsOtherVariables) may read anything: the
 * context is then kept whole.
 */
export function tunnelKeep(names: Iterable<string>, readsOthers: (name: string) => boolean): TunnelKeep {
  const headers = new Set(ALWAYS);
  let upstreamHeaders = false;
  let sentHeaders = false;
  for (const name of names) {
    if (readsOthers(name)) return KEEP_ALL;
    const header = HEADER_READERS.get(name);
    if (header !== undefined) headers.add(header);
    else if (name.startsWith('http_')) headers.add(name.slice(5).replaceAll('_', '-').toLowerCase());
    else if (name.startsWith('cookie_')) headers.add('cookie');
    else if (name.startsWith('upstream_http_') || name.startsWith('upstream_cookie_')) upstreamHeaders = true;
    else if (name.startsWith('sent_http_') || name === 'websocket_subprotocol') sentHeaders = true;
  }
  return { headers, upstreamHeaders, sentHeaders, mapCache: false };
}
