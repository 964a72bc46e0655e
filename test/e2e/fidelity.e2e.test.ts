/**
 * The fidelity bugs of issue 14 that nginx's test suite and real configs showed, asked of the
 * installed nginx (1.22) and of Sluice on the same requests: bare-LF line ends in requests and in
 * upstream answers, the automatic 301 of a proxying `location /ws/`, the Upgrade header on a 426,
 * proxy_next_upstream with the rest `down`, and what $uri/$upstream_addr/$upstream_status log.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { waitForFileLine } from '../helpers/log-files.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { refusedPort } from '../helpers/ports.js';
import { headerValue, rawRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';

interface Seen {
  readonly status: number | undefined;
  readonly location: string | undefined;
  readonly upgrade: string | undefined;
  readonly body: string;
}

async function ask(port: number, bytes: string, withBody = true): Promise<Seen> {
  const r = await rawRequest(port, bytes, { until: 'close' });
  return {
    status: r.head?.statusCode,
    location: r.head === null ? undefined : headerValue(r.head, 'location')?.replace(`:${port}/`, ':PORT/'),
    upgrade: r.head === null ? undefined : headerValue(r.head, 'upgrade'),
    // Pages nginx writes itself are signed with its name; the upstream's bodies compare as they are.
    body: withBody ? r.body.toString('latin1') : '',
  };
}

const REQUESTS: readonly (readonly [string, string, boolean?])[] = [
  ['GET with LF only', 'GET /lf HTTP/1.0\nHost: localhost\n\n', true],
  ['LF and CRLF mixed', 'GET /mixed HTTP/1.1\nHost: localhost\r\nConnection: close\n\r\n', true],
  ['a body with Content-Length', 'POST /cl HTTP/1.1\nHost: localhost\nContent-Length: 3\nConnection: close\n\nabc', true],
  ['chunked framing with LF', 'POST /ch HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\nConnection: close\n\n3\nabc\n0\r\n\r\n', true],
  ['Content-Length with Transfer-Encoding', 'POST /x HTTP/1.1\nHost: localhost\nContent-Length: 3\nTransfer-Encoding: chunked\n\n0\n\n'],
  ['two Content-Lengths', 'POST /x HTTP/1.1\nHost: localhost\nContent-Length: 3\nContent-Length: 4\n\nabcd'],
  ['a bare CR inside the header lines', 'GET /x HTTP/1.1\nHost: localhost\rX-A: b\n\n'],
  ['NUL in a header value', 'GET /x HTTP/1.1\nHost: localhost\nX-A: a\0b\n\n'],
  ['an invalid chunk size', 'POST /x HTTP/1.1\nHost: localhost\nTransfer-Encoding: chunked\n\n3x\nabc\n0\n\n'],
  ['/ws: the automatic 301 to /ws/', 'GET /ws HTTP/1.0\r\nHost: localhost\r\n\r\n'],
  ['/ws?a=1&b: the 301 keeps the arguments', 'GET /ws?a=1&b HTTP/1.0\r\nHost: localhost\r\n\r\n'],
  ['/app: location = /app wins over the 301', 'GET /app HTTP/1.0\r\nHost: localhost\r\n\r\n', true],
  ['/static: no proxy_pass, no 301', 'GET /static HTTP/1.0\r\nHost: localhost\r\n\r\n', true],
  ['an upstream head with LF only', 'GET /up/lf HTTP/1.0\r\nHost: localhost\r\n\r\n', true],
  ['an upstream 426 keeps Upgrade', 'GET /up/426 HTTP/1.0\r\nHost: localhost\r\n\r\n', true],
  ['next_upstream http_404 with the rest down: the 404 as sent', 'GET /nf/x HTTP/1.0\r\nHost: localhost\r\n\r\n', true],
];

test('e2e: bare LF, auto_redirect, Upgrade on a 426, next_upstream with down servers, as nginx answers them', async (t) => {
  const echo = await startHttpBackend((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => { body += c.toString(); });
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'text/plain' }).end(`${req.method} ${req.url} ${body}\n`));
  });
  t.after(() => echo.close());
  const raw = await startRawBackend(async (conn) => {
    const head = (await conn.readUntil('\r\n\r\n')).toString('latin1');
    if (head.startsWith('GET /up/426')) conn.socket.end('HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nContent-Length: 5\r\n\r\nup!!\n');
    else if (head.startsWith('GET /nf/')) conn.socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nfrom app\n');
    else conn.socket.end('HTTP/1.0 200 OK\nX-Up: lf\nContent-Type: text/plain\n\nhello\n');
  });
  t.after(() => raw.close());
  const dead = await refusedPort();
  const ports = await nginxAndSluice(t, (port) => `
    upstream with_down { server ${raw.addr}; server 127.0.0.1:${dead} down; }
    server {
      listen 127.0.0.1:${port};
      server_name localhost;
      location / { proxy_pass http://${echo.addr}; }
      location /ws/ { proxy_pass http://${echo.addr}; }
      location /app/ { proxy_pass http://${echo.addr}; }
      location = /app { return 200 "exact\\n"; }
      location /static/ { return 200 "static\\n"; }
      location /up/ { proxy_pass http://${raw.addr}; }
      location /nf/ { proxy_next_upstream error http_404; proxy_pass http://with_down; }
    }`);
  for (const [name, bytes, compareBody] of REQUESTS) {
    const n = await ask(ports.nginx, bytes, compareBody === true).catch((e: unknown) => { throw new Error(`nginx, ${name}: ${String(e)}`); });
    const s = await ask(ports.sluice, bytes, compareBody === true).catch((e: unknown) => { throw new Error(`sluice, ${name}: ${String(e)}`); });
    assert.deepEqual(s, n, name);
  }
});

test('e2e: $uri, $upstream_addr and $upstream_status as nginx logs them for a bad URI and when no server is left', async (t) => {
  const dir = tempDir(t);
  const [dead1, dead2] = [await refusedPort(), await refusedPort()];
  const ports = await nginxAndSluice(t, (port) => `
    log_format up '$request_uri|$upstream_addr|$upstream_status|$status|$uri|';
    upstream backend { server 127.0.0.1:${dead1}; server 127.0.0.1:${dead2}; }
    server {
      listen 127.0.0.1:${port};
      access_log ${dir.join(port === 0 ? 'sluice.log' : 'nginx.log')} up;
      location / { proxy_pass http://backend; }
    }`);
  const requests = ['GET /first HTTP/1.0\r\n\r\n', 'GET /second HTTP/1.0\r\n\r\n', 'GET /../bad_uri HTTP/1.0\r\n\r\n'];
  for (const r of requests) {
    assert.equal((await ask(ports.sluice, r, false)).status, (await ask(ports.nginx, r, false)).status, r);
  }
  const norm = (lines: string[]): string[] => lines.map((l) => l.replaceAll(String(dead1), 'D1').replaceAll(String(dead2), 'D2'));
  const nginxLines = norm(await waitForFileLine(dir.join('nginx.log'), '|400|'));
  const sluiceLines = norm(await waitForFileLine(dir.join('sluice.log'), '|400|'));
  assert.deepEqual(sluiceLines, nginxLines);
});
