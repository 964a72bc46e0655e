/**
 * A new stream of a client HTTP/2 session: an extended CONNECT (RFC 8441) goes to the WebSocket
 * front end, anything else to the request front end.
 */
import type { ServerHttp2Stream } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { ProxyRuntime } from '../session/proxy-runtime.js';
import { handleH2WebSocket } from './h2-connect.js';
import { h2Request } from './h2-messages.js';
import { handleH2Request } from './h2-request.js';
import { dropInvalidHeaders } from './invalid-headers.js';

function noop(): void {}

/** 'stream' of a client HTTP/2 session. `socket` is the TLS connection the session runs on. */
export function handleH2Stream(rt: ProxyRuntime, socket: TLSSocket, stream: ServerHttp2Stream, rawHeaders: readonly string[]): void {
  stream.on('error', noop);
  let m = h2Request(rawHeaders, !stream.endAfterHeaders);
  const conn = rt.connInfo(socket);
  conn.requests++;
  // ngx_http_v2_validate_header: the same rule as HTTP/1.1's (invalid-headers.ts), its own words.
  const defaults = rt.routesFor(socket).group.defaultServer.settings;
  const kept = dropInvalidHeaders(m.rawHeaders, m.headers, defaults.core);
  if (kept !== null) {
    m = { ...m, rawHeaders: kept.raw, headers: kept.headers };
    for (const [name] of kept.dropped) rt.errorLog(defaults).log('info', `client sent invalid header: "${name}", client: ${conn.remoteAddress}`, conn.id);
  }
  // keepalive_requests counts streams too (nginx 1.19.7, ngx_http_v2_state_headers, with the default
  // server's value): the Nth one is served, and GOAWAY tells the client to open a new connection.
  if (conn.requests >= defaults.keepaliveRequests) stream.session?.close();
  if (m.method === 'CONNECT' && m.protocol !== null) handleH2WebSocket(rt, socket, stream, m);
  else handleH2Request(rt, socket, stream, m);
}
