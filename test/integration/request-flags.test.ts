// ngx_http_core_module flags that change what reaches the upstream and what the client gets:
// ignore_invalid_headers and underscores_in_headers (HTTP/1.1 and HTTP/2), merge_slashes,
// chunked_transfer_encoding, and absolute_redirect, port_in_redirect and server_name_in_redirect
// for the Location headers the proxy makes. Each checked on real sockets, as nginx 1.22.1 behaves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import type { HttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, rawRequest } from '../helpers/raw-client.js';

async function echoHeaders(t: { after(fn: () => unknown): void }): Promise<HttpBackend> {
  const backend = await startHttpBackend((req, res) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ url: req.url, raw: req.rawHeaders })));
  t.after(() => backend.close());
  return backend;
}

const names = (body: Buffer): string[] => (JSON.parse(body.toString()) as { raw: string[] }).raw.filter((_, i) => i % 2 === 0);

test('ignore_invalid_headers (default on): X_Forwarded_User and X.Other never reach the upstream nor $http_*; logged at info', async (t) => {
  const backend = await echoHeaders(t);
  const proxy = await startTestProxy(conf(`
    error_log stderr info;
    server { listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; proxy_set_header X-Forwarded-User ""; add_header X-Seen "[$http_x_forwarded_user]"; } }`), { t });
  const r = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: a\r\nX_Forwarded_User: admin\r\nX.Other: 1\r\nX-Fine: 2\r\nConnection: close\r\n\r\n');
  assert.deepEqual(names(r.body).filter((n) => n.startsWith('X')), ['X-Fine']);
  assert.equal(headerValue(r.head!, 'x-seen'), '[]');
  await proxy.waitForErrorLine(/\[info\] .*client sent invalid header line: "X_Forwarded_User: admin" while reading client request headers, client: 127\.0\.0\.1, server: , request: "GET \/ HTTP\/1\.1", host: "a"/);
});

test('underscores_in_headers on keeps underscores; ignore_invalid_headers off passes every name; the default server decides', async (t) => {
  const backend = await echoHeaders(t);
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; underscores_in_headers on; location / { proxy_pass http://${backend.addr}; } }
    server { listen 127.0.0.1:0; server_name other; location / { proxy_pass http://${backend.addr}; } }
    server { listen 127.0.0.2:0; ignore_invalid_headers off; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const [underscores, off] = proxy.listeners;
  const send = (port: number, host: string, addr = '127.0.0.1') => rawRequest(port, `GET / HTTP/1.1\r\nHost: ${host}\r\nX_Under: 1\r\nX.Dot: 2\r\nConnection: close\r\n\r\n`, { host: addr });
  assert.deepEqual(names((await send(underscores!.port, 'a')).body).filter((n) => n.startsWith('X')), ['X_Under']);
  // "other" is not the default server of the address: the default server's setting still applies.
  assert.deepEqual(names((await send(underscores!.port, 'other')).body).filter((n) => n.startsWith('X')), ['X_Under']);
  assert.deepEqual(names((await send(off!.port, 'a', '127.0.0.2')).body).filter((n) => n.startsWith('X')), ['X_Under', 'X.Dot']);
});

test('HTTP/2: a header name with an underscore is dropped as in nginx', async (t) => {
  const certs = await testCerts();
  const backend = await echoHeaders(t);
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0 ssl; http2 on;
    ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};
    location / { proxy_pass http://${backend.addr}; } }`), { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert, servername: 'localhost' });
  t.after(() => client.close());
  const r = await h2Request(client, { ':path': '/', 'x_forwarded_user': 'admin', 'x-fine': '1' });
  assert.deepEqual(names(r.body).filter((n) => n.startsWith('x')), ['x-fine']);
});

test('merge_slashes: on (default) merges for location matching and $uri; off keeps them', async (t) => {
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location /a/b { return 200 "ab $uri"; } location / { return 200 "other $uri"; } }
    server { listen 127.0.0.2:0; merge_slashes off; location /a/b { return 200 "ab $uri"; } location / { return 200 "other $uri"; } }`), { t });
  const [on, off] = proxy.listeners;
  const body = async (port: number, host: string): Promise<string> => (await rawRequest(port, 'GET //a///b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { host })).body.toString();
  assert.equal(await body(on!.port, '127.0.0.1'), 'ab /a/b');
  assert.equal(await body(off!.port, '127.0.0.2'), 'other //a///b');
});

test('chunked_transfer_encoding off: a response of unknown length ends with the connection instead of being chunked', async (t) => {
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.write('one,');
    res.end('two');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`server { listen 127.0.0.1:0;
    location /chunked { proxy_pass http://${backend.addr}; proxy_http_version 1.1; }
    location /plain { chunked_transfer_encoding off; proxy_pass http://${backend.addr}; proxy_http_version 1.1; } }`), { t });
  const chunked = await rawRequest(proxy.port, 'GET /chunked HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.equal(headerValue(chunked.head!, 'transfer-encoding'), 'chunked');
  assert.equal(chunked.body.toString(), 'one,two');
  const plain = await rawRequest(proxy.port, 'GET /plain HTTP/1.1\r\nHost: x\r\n\r\n', { until: 'close' });
  assert.equal(headerValue(plain.head!, 'transfer-encoding'), undefined);
  assert.equal(headerValue(plain.head!, 'connection'), 'close');
  assert.equal(plain.body.toString(), 'one,two');
  assert.equal(plain.closed, true);
});

test('absolute_redirect, port_in_redirect, server_name_in_redirect shape the Location of return and of a rewritten upstream redirect', async (t) => {
  const backend = await startHttpBackend((req, res) => res.writeHead(302, { Location: `http://${req.headers.host ?? ''}/login` }).end());
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; server_name primary.example alias.example;
      location = /ret { return 301 /target; }
      location = /noabs { absolute_redirect off; return 301 /target; }
      location = /noport { port_in_redirect off; return 302 /target; }
      location = /named { server_name_in_redirect on; return 302 /target; }
      location /app/ { proxy_pass http://${backend.addr}/; }
      location /app-off/ { absolute_redirect off; proxy_pass http://${backend.addr}/; }
    }`), { t });
  const loc = async (path: string, host: string | null = 'Alias.Example:9999', version = '1.1'): Promise<string | undefined> => {
    const r = await rawRequest(proxy.port, `GET ${path} HTTP/${version}\r\n${host === null ? '' : `Host: ${host}\r\n`}Connection: close\r\n\r\n`);
    return headerValue(r.head!, 'location');
  };
  const port = proxy.port;
  assert.equal(await loc('/ret'), `http://alias.example:${port}/target`, 'the request\'s host, lower-cased, without its port; the local port');
  assert.equal(await loc('/ret', null, '1.0'), `http://127.0.0.1:${port}/target`, 'no Host: the local address');
  assert.equal(await loc('/noabs'), '/target');
  assert.equal(await loc('/noport'), 'http://alias.example/target');
  assert.equal(await loc('/named'), `http://primary.example:${port}/target`);
  assert.equal(await loc('/app/x'), `http://alias.example:${port}/app/login`);
  assert.equal(await loc('/app-off/x'), '/app-off/login');
});
