// HTTP/2 to clients: `listen ... ssl http2` and `http2 on` (ALPN h2 with http/1.1 fallback), requests
// proxied to HTTP/1.1 backends with the headers mapped (:authority -> Host, cookies joined, no
// connection-specific headers in the HTTP/2 response), bodies both ways, errors and local answers.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { test } from 'node:test';
import type { EchoHttpReport } from '../../src/echo/echo-http.js';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';
import { tlsConnect, tlsGet } from '../helpers/tls-client.js';
import { waitFor } from '../helpers/wait.js';

const WAIT_MS = 10_000;

async function h2Proxy(t: import('node:test').TestContext, location: string, extra = ''): Promise<{ port: number; ca: string; proxy: Awaited<ReturnType<typeof startTestProxy>> }> {
  const certs = await testCerts();
  const proxy = await startTestProxy(`
events {}
http {
  ${extra}
  server {
    listen 127.0.0.1:0 ssl http2;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location / { ${location} }
  }
}`, { t });
  return { port: proxy.port, ca: certs.ca.cert, proxy };
}

test('HTTP/2 GET reaches an HTTP/1.1 backend: :authority becomes Host, cookies are joined, $scheme is https', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const dir = tempDir(t);
  const log = dir.join('access.log');
  const { port, ca } = await h2Proxy(t, `
      proxy_pass http://${backend.addr};
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Authority $http_host;
      access_log ${log} h2;`, `log_format h2 '$server_protocol "$request" $status $ssl_alpn_protocol';`);
  const client = await h2Connect(port, { ca, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  assert.equal(client.socket.alpnProtocol, 'h2');
  assert.equal(client.remoteSettings['enableConnectProtocol'], true);
  const res = await h2Request(client, { ':path': '/get?x=1', cookie: ['a=1', 'b=2'], 'x-custom': 'yes' }, undefined, WAIT_MS);
  assert.equal(res.status, 200);
  const report = JSON.parse(res.text) as EchoHttpReport;
  assert.equal(report.method, 'GET');
  assert.equal(report.url, '/get?x=1');
  assert.equal(report.httpVersion, '1.1');
  assert.equal(report.headers['host'], 'localhost');
  assert.equal(report.headers['x-authority'], `localhost:${port}`);
  assert.equal(report.headers['x-forwarded-proto'], 'https');
  assert.equal(report.headers['cookie'], 'a=1; b=2');
  assert.equal(report.headers['x-custom'], 'yes');
  assert.equal(report.headers['connection'], 'close');
  assert.equal(res.headers['server'], 'sluice');
  assert.equal(res.headers['content-type'], 'application/json');
  const { readFileSync } = await import('node:fs');
  const line = await waitFor(() => {
    try {
      return readFileSync(log, 'utf8').split('\n')[0];
    } catch {
      return undefined;
    }
  }, { what: 'the access log line', timeoutMs: WAIT_MS });
  assert.equal(line, 'HTTP/2.0 "GET /get?x=1 HTTP/2.0" 200 h2');
});

test('HTTP/2 POST bodies reach the backend intact, with and without content-length (read whole, then sent with its length)', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const { port, ca } = await h2Proxy(t, `proxy_pass http://${backend.addr};`);
  const client = await h2Connect(port, { ca, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  const body = randomBytes(100 * 1024).toString('hex');
  const sized = await h2Request(client, { ':method': 'POST', ':path': '/sized', 'content-length': String(body.length), 'content-type': 'text/plain' }, body, WAIT_MS);
  assert.equal(sized.status, 200);
  const a = JSON.parse(sized.text) as EchoHttpReport;
  assert.equal(a.body.length, body.length);
  assert.equal(a.body, body.slice(0, a.body.length));
  assert.equal(a.headers['content-length'], String(body.length));
  const streamed = await h2Request(client, { ':method': 'POST', ':path': '/streamed' }, ['part one, ', 'part two'], WAIT_MS);
  assert.equal(streamed.status, 200);
  const b = JSON.parse(streamed.text) as EchoHttpReport;
  assert.equal(b.body, 'part one, part two');
  // proxy_request_buffering on (nginx's default): the body is read whole and sent with its length.
  assert.equal(b.headers['transfer-encoding'], undefined);
  assert.equal(b.headers['content-length'], String('part one, part two'.length));
});

test('connection-specific headers of the HTTP/1.1 response never reach the HTTP/2 client; repeated ones stay separate', async (t) => {
  const backend = await startHttpBackend((_req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(201, [
      'Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=5', 'X-Hop', 'hop', 'Transfer-Encoding', 'chunked',
      'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Upgrade', 'something', 'X-Kept', 'kept',
    ]);
    res.write('chunk one ');
    res.end('chunk two');
  });
  t.after(() => backend.close());
  const { port, ca } = await h2Proxy(t, `proxy_pass http://${backend.addr}; proxy_http_version 1.1;`);
  const client = await h2Connect(port, { ca, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  const res = await h2Request(client, { ':path': '/' }, undefined, WAIT_MS);
  assert.equal(res.status, 201);
  assert.equal(res.text, 'chunk one chunk two');
  for (const name of ['connection', 'keep-alive', 'x-hop', 'transfer-encoding', 'upgrade']) assert.equal(res.headers[name], undefined, name);
  assert.deepEqual(res.headers['set-cookie'], ['a=1', 'b=2']);
  assert.equal(res.headers['x-kept'], 'kept');
});

test('HTTP/2 errors and local answers: 502 page when the backend is down, return, HEAD without a body', async (t) => {
  const { port, ca } = await h2Proxy(t, 'proxy_pass http://127.0.0.1:1;', '');
  const client = await h2Connect(port, { ca, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  const down = await h2Request(client, { ':path': '/' }, undefined, WAIT_MS);
  assert.equal(down.status, 502);
  assert.match(down.text, /<title>502 Bad Gateway<\/title>/);
  assert.equal(down.headers['content-type'], 'text/html');

  const certs = await testCerts();
  const local = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl http2;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    location = /teapot { return 418 "short and stout"; }
    location / { return 200 "over $server_protocol"; }
  }
}`, { t });
  const c2 = await h2Connect(local.port, { ca: certs.ca.cert, timeoutMs: WAIT_MS });
  t.after(() => c2.close());
  const tea = await h2Request(c2, { ':path': '/teapot' }, undefined, WAIT_MS);
  assert.equal(tea.status, 418);
  assert.equal(tea.text, 'short and stout');
  const get = await h2Request(c2, { ':path': '/' }, undefined, WAIT_MS);
  assert.equal(get.text, 'over HTTP/2.0');
  const head = await h2Request(c2, { ':method': 'HEAD', ':path': '/' }, undefined, WAIT_MS);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String('over HTTP/2.0'.length));
  assert.equal(head.body.length, 0);
});

test('ALPN: h2 where HTTP/2 is on, http/1.1 for clients that ask for it, and `http2 on` chooses per server by SNI', async (t) => {
  const certs = await testCerts();
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl;
    server_name a.test;
    ssl_certificate ${certs.a.certFile};
    ssl_certificate_key ${certs.a.keyFile};
    http2 on;
    location / { return 200 "a over $server_protocol"; }
  }
  server {
    listen 127.0.0.1:0 ssl;
    server_name b.test;
    ssl_certificate ${certs.b.certFile};
    ssl_certificate_key ${certs.b.keyFile};
    location / { return 200 "b over $server_protocol"; }
  }
}`, { t });
  const a = await tlsConnect(proxy.port, { servername: 'a.test', ALPNProtocols: ['h2', 'http/1.1'], timeoutMs: WAIT_MS });
  assert.equal(a.alpnProtocol, 'h2');
  a.destroy();
  const b = await tlsConnect(proxy.port, { servername: 'b.test', ALPNProtocols: ['h2', 'http/1.1'], timeoutMs: WAIT_MS });
  assert.equal(b.alpnProtocol, 'http/1.1');
  b.destroy();
  // HTTP/1.1 still works on the HTTP/2 server when the client asks for it.
  const h1 = await tlsGet(proxy.port, '/', { servername: 'a.test', ALPNProtocols: ['http/1.1'], timeoutMs: WAIT_MS });
  assert.equal(h1.text, 'a over HTTP/1.1');
  const client = await h2Connect(proxy.port, { servername: 'a.test', timeoutMs: WAIT_MS });
  t.after(() => client.close());
  assert.equal((await h2Request(client, { ':path': '/' }, undefined, WAIT_MS)).text, 'a over HTTP/2.0');
});

test('keepalive_requests over HTTP/2: the Nth stream is served, then GOAWAY sends the client to a new connection', async (t) => {
  const { port, ca } = await h2Proxy(t, 'return 200 "n";', 'keepalive_requests 2;');
  const client = await h2Connect(port, { ca, timeoutMs: WAIT_MS });
  t.after(() => client.close());
  let goaway: number | null = null;
  client.session.on('goaway', (code: number) => void (goaway = code));
  assert.equal((await h2Request(client, { ':path': '/1' }, undefined, WAIT_MS)).text, 'n');
  assert.equal(goaway, null, 'the first stream leaves the connection open');
  assert.equal((await h2Request(client, { ':path': '/2' }, undefined, WAIT_MS)).text, 'n', 'the last stream is still answered');
  await waitFor(() => goaway !== null, { timeoutMs: WAIT_MS, what: 'GOAWAY after the second stream' });
  assert.equal(goaway, 0, 'NO_ERROR');
  await waitFor(() => client.session.closed || client.session.destroyed, { timeoutMs: WAIT_MS, what: 'the session ends' });
  const again = await h2Connect(port, { ca, timeoutMs: WAIT_MS });
  t.after(() => again.close());
  assert.equal((await h2Request(again, { ':path': '/3' }, undefined, WAIT_MS)).status, 200, 'a new connection is served');
});
