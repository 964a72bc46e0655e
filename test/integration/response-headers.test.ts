// What nginx's header filters do to every response, proxied or answered by the proxy itself:
// server_tokens (the Server header and the pages' footer), expires (Expires and Cache-Control,
// for the codes nginx lets it touch) and add_header ... always on every local answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SLUICE_VERSION } from '../../src/core/version.js';
import { startHttpBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { errorPage } from '../helpers/pages.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy } from '../helpers/proxy.js';
import { headerValue, headerValues, rawRequest, wsHandshakeRequest } from '../helpers/raw-client.js';
import { tlsGet } from '../helpers/tls-client.js';

const get = (path: string, host = 'localhost'): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

test('server_tokens: "sluice" by default, the version with on, the Node.js build with build; per location; on pages too', async (t) => {
  const backend = await startHttpBackend((_req, res) => res.writeHead(200, { Server: 'backend' }).end('ok'));
  t.after(() => backend.close());
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    server_tokens on;
    server { listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /dead { proxy_pass http://127.0.0.1:${dead}; }
      location /off { server_tokens off; proxy_pass http://${backend.addr}; }
      location /build { server_tokens build; return 404; }
    }`), { t });
  const on = `sluice/${SLUICE_VERSION}`;
  const proxied = await rawRequest(proxy.port, get('/'));
  assert.equal(headerValue(proxied.head!, 'server'), on, 'the upstream\'s Server is replaced, as nginx hides it');
  const page = await rawRequest(proxy.port, get('/dead'));
  assert.equal(headerValue(page.head!, 'server'), on);
  assert.equal(page.body.toString(), errorPage('502 Bad Gateway', on));
  // A request no server_name matches, refused before any location: the server's value.
  const bad = await rawRequest(proxy.port, 'GET /%zz HTTP/1.1\r\nHost: localhost\r\n\r\n');
  assert.equal(bad.body.toString(), errorPage('400 Bad Request', on));
  assert.equal(headerValue((await rawRequest(proxy.port, get('/off'))).head!, 'server'), 'sluice');
  const build = await rawRequest(proxy.port, get('/build'));
  assert.equal(headerValue(build.head!, 'server'), `${on} (node ${process.version})`);
  assert.equal(build.body.toString(), errorPage('404 Not Found', `${on} (node ${process.version})`));

  const plain = await startTestProxy(conf(`server { listen 127.0.0.1:0; location / { return 404; } }`), { t });
  const def = await rawRequest(plain.port, get('/'));
  assert.equal(headerValue(def.head!, 'server'), 'sluice');
  assert.equal(def.body.toString(), errorPage('404 Not Found'));
});

test('server_tokens over TLS refusals, HTTP/2 and a WebSocket 101', async (t) => {
  const certs = await testCerts();
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server_tokens on;
    server { listen 127.0.0.1:0 ssl; http2 on; ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};
      location / { proxy_pass http://${backend.addr}; } }
    server { listen 127.0.0.2:0; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const [tls, plain] = proxy.listeners;
  const on = `sluice/${SLUICE_VERSION}`;
  const plainToTls = await rawRequest(tls!.port, get('/'));
  assert.equal(headerValue(plainToTls.head!, 'server'), on);
  assert.ok(plainToTls.body.toString().includes(`<hr><center>${on}</center>`));
  const h2 = await h2Connect(tls!.port, { ca: certs.ca.cert, servername: 'localhost' });
  t.after(() => h2.close());
  const r = await h2Request(h2, { ':path': '/' });
  assert.equal(r.headers['server'], on);
  const ws = await rawRequest(plain!.port, wsHandshakeRequest({ path: '/' }), { until: '\r\n\r\n', host: '127.0.0.2' });
  assert.equal(ws.head?.statusCode, 101);
  assert.equal(headerValue(ws.head!, 'server'), on);
});

test('expires: Expires and Cache-Control as nginx sets them, replacing the upstream\'s, on the codes nginx lets it touch', async (t) => {
  const lastModified = new Date(Date.now() - 3_600_000).toUTCString();
  const backend = await startHttpBackend((req, res) => {
    if (req.url === '/404') return void res.writeHead(404, { 'Cache-Control': 'private' }).end('nope');
    res.writeHead(200, [['Cache-Control', 'private'], ['Cache-Control', 'no-transform'], ['Expires', '0'], ['Last-Modified', lastModified], ['X-After', '1']].flat()).end('ok');
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    map $arg_e $dynamic { default off; a 2h; e epoch; bad nonsense; }
    expires 1h;
    server { listen 127.0.0.1:0;
      location / { proxy_pass http://${backend.addr}; }
      location /off/ { expires off; proxy_pass http://${backend.addr}/; }
      location /epoch/ { expires epoch; proxy_pass http://${backend.addr}/; }
      location /max/ { expires max; proxy_pass http://${backend.addr}/; }
      location /negative/ { expires -1; proxy_pass http://${backend.addr}/; }
      location /zero/ { expires 0; proxy_pass http://${backend.addr}/; }
      location /modified/ { expires modified +2h; proxy_pass http://${backend.addr}/; }
      location /daily/ { expires @23h59m59s; proxy_pass http://${backend.addr}/; }
      location /map/ { expires $dynamic; proxy_pass http://${backend.addr}/; }
      location = /redirect { return 301 /elsewhere; }
      location = /teapot { return 418; }
    }`), { t });
  const at = async (path: string): Promise<{ status: number; expires: string[]; cc: string[]; names: string[] }> => {
    const r = await rawRequest(proxy.port, get(path));
    const head = r.head!;
    return { status: head.statusCode, expires: headerValues(head, 'expires'), cc: headerValues(head, 'cache-control'), names: head.headers.map(([n]) => n.toLowerCase()) };
  };
  const near = (value: string, seconds: number): void => {
    const diff = (Date.parse(value) - Date.now()) / 1000;
    assert.ok(Math.abs(diff - seconds) <= 2, `${value} is ${diff} s away, not ${seconds}`);
  };
  const hour = await at('/');
  assert.deepEqual(hour.cc, ['max-age=3600'], 'the first Cache-Control gets the value, the others go');
  assert.equal(hour.expires.length, 1);
  near(hour.expires[0]!, 3600);
  // Replaced in place: the upstream's order stays.
  assert.ok(hour.names.indexOf('cache-control') < hour.names.indexOf('x-after'));
  assert.deepEqual((await at('/off/')).cc, ['private', 'no-transform']);
  assert.deepEqual(await at('/epoch/').then((r) => [r.expires, r.cc]), [['Thu, 01 Jan 1970 00:00:01 GMT'], ['no-cache']]);
  assert.deepEqual(await at('/max/').then((r) => [r.expires, r.cc]), [['Thu, 31 Dec 2037 23:55:55 GMT'], ['max-age=315360000']]);
  const negative = await at('/negative/');
  assert.deepEqual(negative.cc, ['no-cache']);
  near(negative.expires[0]!, -1);
  const zero = await at('/zero/');
  assert.deepEqual(zero.cc, ['max-age=0']);
  near(zero.expires[0]!, 0);
  // modified: from the upstream's Last-Modified (an hour ago) plus two hours.
  const modified = await at('/modified/');
  assert.equal(modified.expires[0], new Date(Date.parse(lastModified) + 7_200_000).toUTCString());
  const maxAge = Number(/^max-age=(\d+)$/.exec(modified.cc[0]!)?.[1]);
  assert.ok(Math.abs(maxAge - 3600) <= 2, modified.cc[0]);
  // @23h59m59s: today's (or tomorrow's) 23:59:59 local time.
  const daily = await at('/daily/');
  const end = new Date();
  end.setHours(23, 59, 59, 0);
  assert.equal(daily.expires[0], end.toUTCString());
  assert.deepEqual((await at('/map/?e=a')).cc, ['max-age=7200']);
  assert.deepEqual((await at('/map/?e=e')).cc, ['no-cache']);
  assert.deepEqual((await at('/map/?e=bad')).cc, ['private', 'no-transform'], 'a value that does not parse leaves the response alone');
  assert.deepEqual((await at('/map/')).cc, ['private', 'no-transform'], '"off" from the variable');
  // Only 200, 201, 204, 206, 301, 302, 303, 304, 307, 308.
  assert.deepEqual((await at('/404')).cc, ['private']);
  assert.deepEqual((await at('/redirect')).cc, ['max-age=3600']);
  assert.deepEqual((await at('/teapot')).cc, []);
});

test('-t: expires values nginx refuses', async () => {
  const { loadConfig, formatProblem } = await import('../../src/config/load.js');
  const r = await loadConfig({ text: conf([
    '  server { listen 127.0.0.1:0;',
    '    location /a { expires 1x; }',
    '    location /b { expires modified @10h; }',
    '    location /c { expires @25h; }',
    '    location /d { expires sometimes 1h; }',
    '    location /e { expires 1h; expires 2h; }',
    '  }',
  ].join('\n')) });
  assert.deepEqual(r.ok ? [] : r.problems.map((p) => formatProblem(p)), [
    '[emerg] "expires" directive invalid value in <inline>:4',
    '[emerg] "expires" directive daily time cannot be used with "modified" parameter in <inline>:5',
    '[emerg] "expires" directive daily time value must be less than 24 hours in <inline>:6',
    '[emerg] "expires" directive invalid value in <inline>:7',
    '[emerg] "expires" directive is duplicate in <inline>:8',
  ]);
});

test('add_header ... always reaches every answer the proxy makes itself: return, 404, 403, 502, 400, a bad WebSocket handshake, TLS refusals', async (t) => {
  const certs = await testCerts();
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    add_header X-Always yes always;
    add_header X-Success yes;
    server { listen 127.0.0.1:0;
      location = /return { return 200 "r"; }
      location = /teapot { return 418; }
      location /dead { proxy_pass http://127.0.0.1:${dead}; }
      location /private { deny all; }
      location /ws { proxy_pass http://127.0.0.1:${dead}; }
    }
    server { listen 127.0.0.2:0 ssl; ssl_certificate ${certs.localhost.certFile}; ssl_certificate_key ${certs.localhost.keyFile};
      ssl_verify_client on; ssl_client_certificate ${certs.ca.certFile}; location / { return 200 "tls"; } }`), { t });
  const [plain, tls] = proxy.listeners;
  const cases: [string, number, string, boolean][] = [
    ['/return', 200, get('/return'), true],
    ['/teapot', 418, get('/teapot'), false],
    ['/dead', 502, get('/dead'), false],
    ['/private', 403, get('/private'), false],
    ['/%zz', 400, get('/%zz'), false],
    ['ws POST', 400, wsHandshakeRequest({ path: '/ws', method: 'POST' }), false],
  ];
  for (const [what, status, bytes, success] of cases) {
    const r = await rawRequest(plain!.port, bytes);
    assert.equal(r.head?.statusCode, status, what);
    assert.equal(headerValue(r.head!, 'x-always'), 'yes', what);
    assert.equal(headerValue(r.head!, 'x-success'), success ? 'yes' : undefined, what);
  }
  // Plain HTTP to the TLS port (nginx's 497) and a missing client certificate (496).
  const p497 = await rawRequest(tls!.port, get('/'), { host: '127.0.0.2' });
  assert.equal(headerValue(p497.head!, 'x-always'), 'yes');
  const p496 = await tlsGet(tls!.port, '/', { servername: 'localhost', host: '127.0.0.2' });
  assert.equal(p496.head.statusCode, 400);
  assert.equal(headerValue(p496.head, 'x-always'), 'yes');
});
