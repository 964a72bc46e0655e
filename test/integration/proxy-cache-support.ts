/** Shared by the proxy_cache suites: one request and what they look at in its answer. */
import { headerValue, sendRequest } from '../helpers/raw-client.js';

/** A request with these header lines (after `Host: localhost`): status, X-Cache-Status, body (text and bytes), any header. */
export async function cacheGet(port: number, path: string, headers: readonly string[] = [], method = 'GET') {
  const r = await sendRequest(port, path, ['Host: localhost', ...headers], { method });
  const h = (name: string): string | undefined => headerValue(r.head, name);
  return { status: r.status, cache: h('x-cache-status') ?? '', body: r.body, bytes: r.bytes, h };
}
