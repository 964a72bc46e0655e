// The deprecated `ssl on|off` directive (issue 11, item 15). nginx 1.22 still honours it with a
// warning: a connection is TLS when its address has `listen ... ssl` or when the address's default
// server has `ssl on` (ngx_http_init_connection). Before, Sluice refused it with the hint "remove
// it", and following that hint gave a config that served plain HTTP where TLS was meant. Each
// behaviour below was checked against nginx 1.22 with curl on the same configuration.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { runCli } from '../helpers/cli-process.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startTestProxy } from '../helpers/proxy.js';
import { sendRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { tlsGet } from '../helpers/tls-client.js';

const WAIT_MS = 10_000;
const DEPRECATED = 'the "ssl" directive is deprecated, use the "listen ... ssl" directive instead';

/** A plain HTTP/1.1 GET; the status line and body. */
async function plainGet(port: number, host: string, hostHeader: string): Promise<string> {
  const res = await sendRequest(port, '/', [`Host: ${hostHeader}`], { host, timeoutMs: WAIT_MS });
  return `${res.status} ${res.body}`;
}

test('`ssl on` in a server makes its address TLS: a TLS client is proxied with $scheme https, plain HTTP gets the 400, nginx\'s warning is kept', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(`events {}
http {
  server {
    listen 127.0.0.1:0;
    server_name localhost;
    ssl on;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / { proxy_pass http://${backend.addr}; proxy_set_header X-Forwarded-Proto $scheme; }
  }
}`, { t });
  assert.deepEqual(proxy.handle.config.warnings.map(formatProblem), [`[warn] ${DEPRECATED} in <inline>:6`]);
  assert.match(proxy.handle.config.warnings[0]!.hint ?? '', /"listen 443 ssl;"/);

  const res = await tlsGet(proxy.port, '/through', { servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  assert.equal(res.head.statusCode, 200);
  assert.equal(res.peerCN, 'localhost');
  assert.equal(backend.requests.at(-1)?.url, '/through');
  assert.equal(backend.requests.at(-1)?.headers['x-forwarded-proto'], 'https');

  assert.match(await plainGet(proxy.port, '127.0.0.1', 'localhost'), /^400 [\s\S]*The plain HTTP request was sent to HTTPS port/);
  assert.equal(backend.requests.length, 1, 'nothing reached the backend in clear text');
});

test('`ssl on` in http {} applies to every server; `ssl off` in a server turns it off there', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(`events {}
http {
  ssl on;
  ssl_certificate ${certs.localhost.certFile};
  ssl_certificate_key ${certs.localhost.keyFile};
  server { listen 127.0.0.1:0; return 200 "tls $scheme"; }
  server { listen 127.0.0.2:0; ssl off; return 200 "plain $scheme"; }
}`, { t });
  assert.deepEqual(proxy.handle.config.warnings.map(formatProblem), [
    `[warn] ${DEPRECATED} in <inline>:3`, `[warn] ${DEPRECATED} in <inline>:7`,
  ]);
  const [tls, plain] = proxy.listeners;
  assert.equal((await tlsGet(tls!.port, '/', { servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS })).text, 'tls https');
  assert.equal(await plainGet(plain!.port, '127.0.0.2', 'x'), '200 plain http');
});

test('as in nginx, the default server of an address decides: `ssl on` elsewhere on it serves plain HTTP, and Sluice warns', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(`events {}
http {
  ssl_certificate ${certs.localhost.certFile};
  ssl_certificate_key ${certs.localhost.keyFile};
  server { listen 127.0.0.1:0; return 200 "first"; }
  server { listen 127.0.0.1:0; server_name b; ssl on; return 200 "b $scheme"; }
  server { listen 127.0.0.2:0; ssl on; return 200 "default $scheme"; }
  server { listen 127.0.0.2:0; server_name c; return 200 "c $scheme"; }
}`, { t });
  const [first, second] = proxy.listeners;
  const key = `127.0.0.1:${first!.port}`;
  const warnings = proxy.handle.config.warnings;
  assert.deepEqual(warnings.map(formatProblem), [
    `[warn] ${DEPRECATED} in <inline>:6`,
    `[warn] the "ssl" directive does not make 127.0.0.1:0 TLS: another server is its default server in <inline>:6`,
    `[warn] ${DEPRECATED} in <inline>:7`,
  ]);
  assert.match(warnings[1]!.hint ?? '', /write "listen 127\.0\.0\.1:0 ssl;" to make the address TLS/);
  // 127.0.0.1: the first server is the default and has no `ssl on`, so b is served plain (nginx too).
  assert.equal(await plainGet(first!.port, '127.0.0.1', 'b'), '200 b http', key);
  // 127.0.0.2: its default server has `ssl on`, so every server there is TLS, c included.
  const c = await tlsGet(second!.port, '/', { host: '127.0.0.2', servername: 'localhost', hostHeader: 'c', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  assert.equal(c.text, 'c https');
});

test('`ssl on` without a certificate is refused at the ssl line with nginx\'s message; `ssl` takes on or off, in http or server', async () => {
  const r = await loadConfig({ text: 'events {}\nhttp {\n  server {\n    listen 8443;\n    ssl on;\n  }\n}\n' });
  assert.deepEqual(!r.ok && r.problems.map(formatProblem), [
    `[warn] ${DEPRECATED} in <inline>:5`,
    '[emerg] no "ssl_certificate" is defined for the "ssl" directive in <inline>:5',
  ]);
  const values = await loadConfig({ text: 'events {}\nhttp {\n  ssl yes;\n  server { location / { ssl on; } }\n}\n' });
  assert.deepEqual(!values.ok && values.problems.map(formatProblem), [
    '[emerg] invalid value "yes" in "ssl" directive, it must be "on" or "off" in <inline>:3',
    '[emerg] "ssl" directive is not allowed here in <inline>:4',
  ]);
});

test('`ssl on` with `listen ... http2` offers HTTP/2, since the address is TLS', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(`events {}
http {
  server {
    listen 127.0.0.1:0 http2;
    ssl on;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    return 200 "$server_protocol";
  }
}`, { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  assert.equal(client.socket.alpnProtocol, 'h2');
  const res = await h2Request(client, { ':path': '/' });
  assert.deepEqual([res.status, res.text], [200, 'HTTP/2.0']);
});

test('sluice -t prints the warning as nginx does (also with -q), and the configuration passes', async (t) => {
  const certs = await testCerts();
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `events {}
http {
  server {
    listen 127.0.0.1:8443;
    ssl on;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
  }
}
`);
  const res = await runCli(['-t', '-c', conf], dir.path);
  assert.deepEqual([res.code, res.stderr.split('\n').filter((l) => l.startsWith('sluice: '))], [0, [
    `sluice: [warn] ${DEPRECATED} in ${conf}:5`,
    `sluice: the configuration file ${conf} syntax is ok`,
    `sluice: configuration file ${conf} test is successful`,
  ]]);
  const quiet = await runCli(['-tq', '-c', conf], dir.path);
  assert.deepEqual([quiet.code, quiet.stderr.split('\n').filter((l) => l.startsWith('sluice: '))], [0, [`sluice: [warn] ${DEPRECATED} in ${conf}:5`]]);
});

test('a reload logs the new configuration\'s warnings at warn, and its new `ssl on` address serves TLS', async (t) => {
  const certs = await testCerts();
  const base = `error_log stderr warn;
events {}
http {
  ssl_certificate ${certs.localhost.certFile};
  ssl_certificate_key ${certs.localhost.keyFile};
  server { listen 127.0.0.1:0; return 200 "plain"; }
`;
  const proxy = await startTestProxy(`${base}}\n`, { t });
  const result = await proxy.handle.reload({ text: `${base}  server { listen 127.0.0.2:0; ssl on; return 200 "tls $scheme"; }\n}\n` });
  assert.equal(result.opened.length, 1);
  assert.match(await proxy.waitForErrorLine(`${DEPRECATED} in <inline>:7`), / \[warn\] \d+#\d+: the "ssl" directive/);
  const added = proxy.handle.listeners.find((l) => l.host === '127.0.0.2')!;
  const res = await tlsGet(added.port, '/', { host: '127.0.0.2', servername: 'localhost', ca: certs.ca.cert, timeoutMs: WAIT_MS });
  assert.equal(res.text, 'tls https');
  assert.equal(await plainGet(proxy.port, '127.0.0.1', 'x'), '200 plain');
});
