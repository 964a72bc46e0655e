/**
 * proxy_pass with variables and `resolver`, side by side with the installed nginx: the same DNS
 * server (helpers/dns-server.ts) answers both, the same requests get the same statuses and reach
 * the backend with the same request line and Host, and unresolvable names log the same line.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { startDnsServer } from '../helpers/dns-server.js';
import { startNginx } from '../helpers/nginx.js';
import { startTestProxy } from '../helpers/proxy.js';
import { sendRequest } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

test('e2e: variables in proxy_pass resolve, match upstream groups and replace the URI as in nginx', async (t) => {
  const dns = await startDnsServer();
  t.after(() => dns.close());
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  dns.set('app.test', { a: ['127.0.0.1'], ttl: 60 });
  dns.set('sf.test', 'servfail');
  const http = (port: number): string => `
    resolver ${dns.address} ipv6=off;
    resolver_timeout 2s;
    upstream group { server ${backend.addr}; }
    map $arg_to $target { default app.test:${backend.port}; g group; nx nx.test; sf sf.test; ip ${backend.addr}; }
    server {
      listen 127.0.0.1:${port};
      location /plain/ { proxy_pass http://$target; }
      location /uri/ { proxy_pass http://$target/fixed$is_args$args; }
      location /req/ { proxy_pass http://$target$request_uri; }
      location /scheme/ { proxy_pass $scheme://$target; }
    }`;
  const nginx = await startNginx(t, http);
  const sluice = await startTestProxy(`events {}\nhttp {\n${http(0)}\n}`, { t });
  const targets = [
    '/plain/a?x=1', '/plain/a?to=g', '/plain/a?to=ip', '/plain/a?to=nx', '/plain/a?to=sf',
    '/uri/b?to=g&y=2', '/uri/b', '/req/c%20d?to=g', '/req/e', '/scheme/f?to=ip',
  ];
  for (const target of targets) {
    const before = backend.requests.length;
    const n = await sendRequest(nginx.port, target);
    const nSeen = backend.requests.slice(before).map((r) => `${r.method} ${r.url} ${String(r.headers['host'])}`);
    const mid = backend.requests.length;
    const s = await sendRequest(sluice.port, target);
    const sSeen = backend.requests.slice(mid).map((r) => `${r.method} ${r.url} ${String(r.headers['host'])}`);
    assert.equal(s.status, n.status, target);
    assert.deepEqual(sSeen, nSeen, target);
  }
  for (const line of ['nx.test could not be resolved (3: Host not found)', 'sf.test could not be resolved (2: Server failure)']) {
    await waitFor(() => nginx.errorLog().includes(line), { what: `nginx: ${line}` });
    await sluice.waitForErrorLine(line);
  }
});
