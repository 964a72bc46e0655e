/**
 * The rewrite module, Sluice against nginx: the same `http` block (rewrite-support.ts: `set`, every
 * `if` condition form, captures, `rewrite` flags and argument rules, `return`, `break`, both
 * rewrite phases, the cycle limit, `if` in a location with proxy_pass/add_header/return) and the
 * same requests to both; status, Location (with each server's own origin written as ORIGIN), the
 * body (proxied ones as the URL the backend saw) and the headers the table names must agree, and
 * agree with the table. Error pages are compared by status (their signature differs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { headerValue, sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { REWRITE_CASES, caseName, locationOf, makeRewriteSite, rewriteHttp, summary } from '../integration/rewrite-support.js';

test('nginx and Sluice answer the rewrite table alike', async (t) => {
  const dir = tempDir(t);
  const root = makeRewriteSite(dir);
  const backend = await startHttpBackend(undefined, { id: 'rewrite' });
  t.after(() => backend.close());
  const { nginx, sluice } = await nginxAndSluice(t, (port) => rewriteHttp(port, backend.addr, root));
  for (const c of REWRITE_CASES) {
    const name = caseName(c);
    const answers = [];
    for (const port of [nginx, sluice]) {
      const res = await sendRequest(port, c.target, ['Host: localhost', ...c.headers ?? []], { method: c.method ?? 'GET' });
      const headers = Object.fromEntries(Object.keys(c.has ?? {}).map((h) => [h, headerValue(res.head, h) ?? null]));
      answers.push({
        status: res.status,
        location: locationOf(res, port),
        ...(c.body === undefined ? {} : { body: summary(res) }),
        headers,
      });
    }
    const [fromNginx, fromSluice] = answers;
    assert.deepEqual(fromSluice, fromNginx, `${name}: Sluice differs from nginx`);
    assert.deepEqual(fromNginx, {
      status: c.status, location: c.location ?? null, ...(c.body === undefined ? {} : { body: c.body }), headers: c.has ?? {},
    }, `${name}: nginx differs from the table`);
  }
});
