/** Fixtures shared by the data plane's unit tests (compiled with them; not part of the public API). */
import type { IncomingHttpHeaders } from 'node:http';
import { RequestContext } from './request-context.js';

/**
 * A request context as a front end would make it, on a plain connection from 10.0.0.1:5555 to
 * 127.0.0.1:8080. `rawHeaders` defaults to `headers` as lines, in order.
 */
export function testContext(headers: Record<string, string> = {}, options: { method?: string; uri?: string; httpVersion?: string; rawHeaders?: string[] } = {}): RequestContext {
  const conn = { id: 1, requests: 1, startMs: 0, readMark: 0, remoteAddress: '10.0.0.1', remotePort: 5555, localAddress: '127.0.0.1', localPort: 8080, tls: false };
  return new RequestContext(conn, options.method ?? 'GET', options.uri ?? '/', options.httpVersion ?? '1.1', headers as IncomingHttpHeaders,
    options.rawHeaders ?? Object.entries(headers).flat(), performance.now());
}
