/**
 * ngx_http_rewrite_module on real sockets: `set`, every `if` condition form, captures (numbered and
 * named), `rewrite` with each flag and nginx's argument rules, `return` as a script line, `break`,
 * the server and location rewrite phases, the 10-change cycle limit, `if` in a location with its
 * own content and header directives, `set` variables in proxy_set_header and in the logs, and the
 * log lines of rewrite_log and uninitialized_variable_warn. The table is shared with the e2e test
 * that asks nginx the same (rewrite-support.ts).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { escapeRegExp } from '../helpers/text.js';
import { waitFor } from '../helpers/wait.js';
import { REWRITE_CASES, caseName, locationOf, makeRewriteSite, rewriteHttp, summary } from './rewrite-support.js';

test('every directive and condition form answers as nginx does', async (t) => {
  const dir = tempDir(t);
  const root = makeRewriteSite(dir);
  const backend = await startHttpBackend(undefined, { id: 'rewrite' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(rewriteHttp(0, backend.addr, root), 'error_log stderr warn;'), { t });
  for (const c of REWRITE_CASES) {
    const res = await sendRequest(proxy.port, c.target, ['Host: localhost', ...c.headers ?? []], { method: c.method ?? 'GET' });
    const name = caseName(c);
    assert.equal(res.status, c.status, name);
    assert.equal(locationOf(res, proxy.port), c.location ?? null, name);
    if (c.body !== undefined) assert.equal(summary(res), c.body, name);
    for (const [header, value] of Object.entries(c.has ?? {})) assert.equal(headerValue(res.head, header) ?? null, value, `${name}: ${header}`);
  }
  // The cycle and the uninitialized variable are logged with nginx's words.
  await proxy.waitForErrorLine(/\[error\] .*rewrite or internal redirection cycle while processing "\/loop", client: 127\.0\.0\.1, server: localhost, request: "GET \/loop HTTP\/1\.1"/);
  await proxy.waitForErrorLine(/\[warn\] .*using uninitialized "srv" variable, client: 127\.0\.0\.1, server: localhost, request: "GET \/srvset HTTP\/1\.1"/);
});

test('rewrite_log writes nginx\'s notice lines; uninitialized_variable_warn off keeps the log quiet', async (t) => {
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      error_log stderr notice;
      location /a/ {
        rewrite_log on;
        rewrite ^/b/ /never;
        if ($arg_x ~ ^(\\d+)$) { set $n $1; }
        rewrite ^/a/(.*)$ /c/$1?n=$n last;
      }
      location /c/ { return 200 "$uri $args"; }
      location /quiet { uninitialized_variable_warn off; return 200 "[$unset]"; }
      location /never { set $unset 1; }
    }`), { t });
  const res = await sendRequest(proxy.port, '/a/p?x=5');
  assert.equal(res.status, 200);
  assert.equal(res.body, '/c/p n=5&x=5');
  const ctx = ', client: 127.0.0.1, server: , request: "GET /a/p?x=5 HTTP/1.1", host: "localhost"';
  for (const line of [
    '"^/b/" does not match "/a/p"',
    '"^(\\d+)$" matches "5"',
    '"^/a/(.*)$" matches "/a/p"',
    'rewritten data: "/c/p", args: "n=5&x=5"',
  ]) {
    await proxy.waitForErrorLine(new RegExp(`\\[notice\\] \\d+#0: \\*\\d+ ${escapeRegExp(line + ctx)}$`));
  }
  const quiet = await sendRequest(proxy.port, '/quiet');
  assert.equal(quiet.body, '[]');
  assert.ok(!proxy.errorLines.some((l) => l.includes('using uninitialized')), proxy.errorLines.join('\n'));
});

test('a set variable reaches proxy_set_header and the access log; a server-level set runs before the location search', async (t) => {
  const dir = tempDir(t);
  const backend = await startHttpBackend(undefined, { id: 'set' });
  t.after(() => backend.close());
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`
    log_format withset '$request_uri tenant=$tenant';
    server {
      listen 127.0.0.1:0;
      access_log ${log} withset;
      set $tenant "none";
      if ($http_x_tenant ~ ^([a-z]+)$) { set $tenant $1; }
      location / {
        proxy_pass http://${backend.addr};
        proxy_set_header X-Tenant $tenant;
      }
    }`), { t });
  const a = await sendRequest(proxy.port, '/x', ['Host: localhost', 'X-Tenant: acme']);
  assert.equal(a.status, 200);
  assert.equal(JSON.parse(a.body).headers['x-tenant'], 'acme');
  const b = await sendRequest(proxy.port, '/y');
  assert.equal(JSON.parse(b.body).headers['x-tenant'], 'none');
  await waitFor(() => {
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    return lines.length === 2 ? lines : null;
  });
  assert.deepEqual(readFileSync(log, 'utf8').trim().split('\n'), ['/x tenant=acme', '/y tenant=none']);
});

test('rewrite ... last counts towards the 10 URI changes with internal redirects', async (t) => {
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      location ~ ^/n/(\\d+)$ { set $i $1; rewrite ^ /step/$i last; }
      location /step/ { rewrite ^/step/(\\d+)$ /m/$1 last; }
      location ~ ^/m/(\\d)$ { return 200 "done $1"; }
      location ~ ^/m/\\d\\d+$ { rewrite ^/m/\\d(\\d+)$ /n/$1 last; }
    }`), { t });
  // /n/123 -> /step/123 -> /m/123 -> /n/23 -> /step/23 -> /m/23 -> /n/3 -> /step/3 -> /m/3: 8 changes.
  assert.equal((await sendRequest(proxy.port, '/n/123')).body, 'done 3');
  // One digit more is 11 changes, one too many (nginx answers the same).
  assert.equal((await sendRequest(proxy.port, '/n/1234')).status, 500);
  await proxy.waitForErrorLine('rewrite or internal redirection cycle while processing "/m/4"');
});

test('set $limit_rate changes this request\'s rate (nginx marks $limit_rate changeable); a value that is no size changes nothing', async (t) => {
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      limit_rate 2k;
      location /set { set $limit_rate 1k; return 200 "$limit_rate"; }
      location /bad { set $limit_rate lots; return 200 "$limit_rate"; }
      location /level { return 200 "$limit_rate"; }
    }`), { t });
  assert.equal((await sendRequest(proxy.port, '/set')).body, '1024');
  assert.equal((await sendRequest(proxy.port, '/bad')).body, '2048');
  assert.equal((await sendRequest(proxy.port, '/level')).body, '2048');
});
