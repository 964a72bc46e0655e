// nginx (the installed 1.22) and Sluice side by side, one configuration, the same requests: the
// headers `expires` sets, the Location of redirects (absolute_redirect, port_in_redirect,
// server_name_in_redirect, proxy_redirect), the request headers ignore_invalid_headers drops,
// merge_slashes, chunked_transfer_encoding off, and the access log datagrams sent to syslog.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { headerValue, headerValues, rawRequest } from '../helpers/raw-client.js';
import { waitFor } from '../helpers/wait.js';

/** One request; the response head with ports written as PORT, so both sides compare. */
async function ask(port: number, request: string): Promise<{ status: number; headers: Map<string, string[]>; body: string }> {
  const r = await rawRequest(port, request.replace(/PORT/g, String(port)), { until: 'close' });
  const head = r.head!;
  const headers = new Map<string, string[]>();
  for (const [name] of head.headers) {
    const lower = name.toLowerCase();
    headers.set(lower, headerValues(head, lower).map((v) => v.replaceAll(`:${port}`, ':PORT')));
  }
  return { status: head.statusCode, headers, body: r.body.toString() };
}

const get = (path: string, host = 'Alias.Example:9999', extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;

test('e2e: expires sets the same Cache-Control and Expires as nginx', async (t) => {
  const lastModified = new Date(Date.now() - 3_600_000).toUTCString();
  const backend = await startHttpBackend((_req, res) => res.writeHead(200, [['Cache-Control', 'private'], ['Cache-Control', 'no-store'], ['Last-Modified', lastModified]].flat()).end('ok'));
  t.after(() => backend.close());
  const ports = await nginxAndSluice(t, (port) => `
    server { listen 127.0.0.1:${port};
      location /h { expires 1h; proxy_pass http://${backend.addr}; }
      location /m { expires modified 2h; proxy_pass http://${backend.addr}; }
      location /e { expires epoch; proxy_pass http://${backend.addr}; }
      location /x { expires max; return 200 "x"; }
      location /n { expires -10; return 301 /t; }
      location /z { expires 0; return 204; }
      location /f { expires 1h; return 404; }
    }`);
  for (const path of ['/h', '/m', '/e', '/x', '/n', '/z', '/f']) {
    const [n, s] = [await ask(ports.nginx, get(path)), await ask(ports.sluice, get(path))];
    assert.equal(s.status, n.status, path);
    assert.deepEqual(s.headers.get('cache-control'), n.headers.get('cache-control'), path);
    const [ne, se] = [n.headers.get('expires'), s.headers.get('expires')];
    assert.equal(se?.length, ne?.length, `${path}: ${String(ne)} / ${String(se)}`);
    if (ne !== undefined) assert.ok(Math.abs(Date.parse(se![0]!) - Date.parse(ne[0]!)) <= 2000, `${path}: ${ne[0]!} / ${se![0]!}`);
  }
});

test('e2e: the Location of return and of proxy_redirect as nginx makes it', async (t) => {
  const backend = await startHttpBackend((req, res) => res.writeHead(302, { Location: req.url === '/rel' ? '/relative' : `http://${req.headers.host ?? ''}/login` }).end());
  t.after(() => backend.close());
  const ports = await nginxAndSluice(t, (port) => `
    server { listen 127.0.0.1:${port}; server_name primary.example alias.example;
      location = /ret { return 301 /target; }
      location = /noabs { absolute_redirect off; return 301 /target; }
      location = /noport { port_in_redirect off; return 302 /target; }
      location = /named { server_name_in_redirect on; return 302 /target; }
      location /app/ { proxy_pass http://${backend.addr}/; }
      location /re/ { proxy_redirect ~^http://[^/]+/(\\w+) /new/$1; proxy_pass http://${backend.addr}/; }
    }`);
  const requests = [get('/ret'), get('/noabs'), get('/noport'), get('/named'), get('/app/x'), get('/app/rel'), get('/re/x'), get('/re/rel'), 'GET /ret HTTP/1.0\r\n\r\n'];
  for (const r of requests) {
    const [n, s] = [await ask(ports.nginx, r), await ask(ports.sluice, r)];
    assert.deepEqual(s.headers.get('location'), n.headers.get('location'), JSON.stringify(r));
  }
});

test('e2e: the request headers that reach the upstream (ignore_invalid_headers, underscores_in_headers); merge_slashes', async (t) => {
  const backend = await startHttpBackend((req, res) => res.writeHead(200).end(JSON.stringify({ url: req.url, names: req.rawHeaders.filter((_, i) => i % 2 === 0).filter((n) => n.startsWith('X')) })));
  t.after(() => backend.close());
  const ports = await nginxAndSluice(t, (port) => `
    server { listen 127.0.0.1:${port}; location / { proxy_pass http://${backend.addr}; } }
    server { listen 127.0.0.2:${port}; underscores_in_headers on; merge_slashes off; location / { proxy_pass http://${backend.addr}; } }`);
  const extra = 'X_Forwarded_User: admin\r\nX.Dot: 1\r\nX-Fine: 2\r\n';
  for (const [i, host] of ['127.0.0.1', '127.0.0.2'].entries()) {
    const request = get('//a///b', 'h', extra);
    const send = (port: number): Promise<string> => rawRequest(port, request, { host, until: 'close' }).then((r) => r.body.toString());
    assert.deepEqual(JSON.parse(await send(ports.listeners[i]!.port)), JSON.parse(await send(ports.nginx)), host);
  }
});

test('e2e: chunked_transfer_encoding off ends the body with the connection, as nginx does', async (t) => {
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(200);
    res.write('one,');
    res.end('two');
  });
  t.after(() => backend.close());
  const ports = await nginxAndSluice(t, (port) => `server { listen 127.0.0.1:${port}; chunked_transfer_encoding off;
    location / { proxy_pass http://${backend.addr}; proxy_http_version 1.1; } }`);
  const [n, s] = [await ask(ports.nginx, get('/')), await ask(ports.sluice, get('/'))];
  assert.deepEqual([s.headers.get('transfer-encoding'), s.headers.get('connection'), s.body], [n.headers.get('transfer-encoding'), n.headers.get('connection'), n.body]);
});

test('e2e: an access log line sent to syslog is the same datagram as nginx\'s (time aside)', async (t) => {
  const socket = createSocket('udp4');
  const messages: string[] = [];
  socket.on('message', (m) => messages.push(m.toString()));
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  t.after(() => socket.close());
  const udp = (socket.address() as AddressInfo).port;
  const ports = await nginxAndSluice(t, (port) => `log_format short '$request_method $uri $status';
    server { listen 127.0.0.1:${port};
      location / { access_log syslog:server=127.0.0.1:${udp},facility=local3,severity=warn,tag=e2e short; return 200 "ok"; } }`);
  await ask(ports.nginx, get('/a'));
  await waitFor(() => (messages.length === 1 ? true : null), { what: 'nginx\'s datagram' });
  await ask(ports.sluice, get('/a'));
  await waitFor(() => (messages.length === 2 ? true : null), { what: 'Sluice\'s datagram' });
  const untimed = messages.map((m) => m.replace(/^(<\d+>)\w{3} [ \d]\d \d\d:\d\d:\d\d /, '$1TIME '));
  assert.equal(untimed[1], untimed[0]);
  assert.equal(headerValue((await rawRequest(ports.sluice, get('/b'))).head!, 'content-length'), '2');
});
