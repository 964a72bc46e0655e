// nginx (the installed 1.22) and Sluice side by side on the client limits: client_max_body_size
// (413, with and without Expect: 100-continue, per location), the request line and header limits
// of client_header_buffer_size / large_client_header_buffers (414, "400 Request Header Or Cookie
// Too Large"), and whether each side keeps or closes the connection after the answer.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { headerValue, rawConnect, readToEnd } from '../helpers/raw-client.js';

interface Seen { status: number; title: string; connection: string | undefined; interim: boolean; closed: boolean }

/**
 * Sends `request` and reads until the server closes (every request here ends with the server's
 * close or `Connection: close`): the final status, the error page's title, the Connection header,
 * whether a 100 Continue came first.
 */
async function ask(port: number, request: string): Promise<Seen> {
  const socket = await rawConnect(port);
  try {
    socket.write(request);
    const text = (await readToEnd(socket, 10_000)).toString('latin1');
    const interim = text.startsWith('HTTP/1.1 100 ');
    const final = interim ? text.slice(text.indexOf('\r\n\r\n') + 4) : text;
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(final)?.[1]);
    const headEnd = final.indexOf('\r\n\r\n');
    const head = final.slice(0, headEnd);
    const lines = head.split('\r\n').slice(1).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as [string, string]);
    return {
      status, interim, closed: true,
      title: /<title>([^<]*)<\/title>/.exec(final)?.[1] ?? '',
      connection: headerValue({ headers: lines }, 'connection'),
    };
  } finally {
    socket.destroy();
  }
}

test('e2e: client_max_body_size, the request line and header limits answer as nginx does', async (t) => {
  const backend = await startHttpBackend((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  t.after(() => backend.close());
  const ports = await nginxAndSluice(t, (port) => `
    client_header_buffer_size 128;
    large_client_header_buffers 2 512;
    server { listen 127.0.0.1:${port};
      client_max_body_size 10;
      location / { proxy_pass http://${backend.addr}; }
      location /big/ { client_max_body_size 1k; proxy_pass http://${backend.addr}; }
      location /any/ { client_max_body_size 0; proxy_pass http://${backend.addr}; }
    }`);
  const post = (path: string, length: number, extra = ''): string =>
    `POST ${path} HTTP/1.1\r\nHost: h\r\nContent-Length: ${length}\r\n${extra}Connection: close\r\n\r\n${'b'.repeat(length)}`;
  const cases: Record<string, string> = {
    'body within the limit': post('/a', 10),
    'body over the limit': post('/a', 11),
    'over, 100-continue asked': `POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    'location raises the limit': post('/big/a', 1000),
    'location lifts the limit': post('/any/a', 5000),
    'chunked body over the limit': `POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nb\r\n${'c'.repeat(11)}\r\n0\r\n\r\n`,
    'request line within the large buffer': `GET /${'u'.repeat(400)} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`,
    'request line over the large buffer': `GET /${'u'.repeat(600)} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`,
    'header line within the large buffer': `GET / HTTP/1.1\r\nHost: h\r\nX-Long: ${'v'.repeat(400)}\r\nConnection: close\r\n\r\n`,
    'header line over the large buffer': `GET / HTTP/1.1\r\nHost: h\r\nX-Long: ${'v'.repeat(600)}\r\nConnection: close\r\n\r\n`,
    'cookie over the large buffer': `GET / HTTP/1.1\r\nHost: h\r\nCookie: ${'v'.repeat(600)}\r\nConnection: close\r\n\r\n`,
    'more header than the buffers hold': `GET / HTTP/1.1\r\nHost: h\r\n${Array.from({ length: 4 }, (_, i) => `X-H${i}: ${'v'.repeat(400)}\r\n`).join('')}Connection: close\r\n\r\n`,
  };
  for (const [what, request] of Object.entries(cases)) {
    const [n, s] = [await ask(ports.nginx, request), await ask(ports.sluice, request)];
    assert.equal(s.status, n.status, `${what}: status`);
    assert.equal(s.title, n.title, `${what}: page`);
    assert.equal(s.interim, n.interim, `${what}: 100 Continue`);
    assert.equal(s.connection, n.connection, `${what}: Connection`);
  }
});
