// nginx (the installed 1.22) and Sluice side by side on request buffering: what the upstream sees
// of a chunked or sized body (framing, method, body) with proxy_request_buffering on and off,
// proxy_set_body and proxy_method, and $request_body in a response header.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { nginxAndSluice } from '../helpers/nginx.js';
import { headerValue, rawRequest } from '../helpers/raw-client.js';

test('e2e: request bodies reach the upstream framed as nginx frames them; proxy_set_body, proxy_method, $request_body', async (t) => {
  const seen = new Map<string, string>();
  const backend = await startHttpBackend((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => void (body += c.toString()));
    req.on('end', () => {
      seen.set(String(req.headers['x-side']), JSON.stringify([req.method, req.url, req.headers['content-length'] ?? null, req.headers['transfer-encoding'] ?? null, body]));
      res.end('ok');
    });
  });
  t.after(() => backend.close());
  const ports = await nginxAndSluice(t, (port) => `
    server { listen 127.0.0.1:${port};
      add_header X-Body "$request_body";
      location /on { proxy_pass http://${backend.addr}; }
      location /off11 { proxy_pass http://${backend.addr}; proxy_request_buffering off; proxy_http_version 1.1; }
      location /off10 { proxy_pass http://${backend.addr}; proxy_request_buffering off; }
      location /set { proxy_pass http://${backend.addr}; proxy_method PUT; proxy_set_body "uri=$uri&a=$arg_a"; }
      location /big { proxy_pass http://${backend.addr}; client_body_buffer_size 1k; }
    }`);
  const chunked = (path: string, side: string): string => `POST ${path} HTTP/1.1\r\nHost: a\r\nX-Side: ${side}\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`;
  const sized = (path: string, side: string, body: string): string => `POST ${path} HTTP/1.1\r\nHost: a\r\nX-Side: ${side}\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  const requests: [name: string, make: (side: string) => string][] = [
    ['chunked, buffering on', (side) => chunked('/on', side)],
    ['chunked, off, HTTP/1.1', (side) => chunked('/off11', side)],
    ['chunked, off, HTTP/1.0', (side) => chunked('/off10', side)],
    ['sized, off', (side) => sized('/off11', side, 'a=1')],
    ['proxy_set_body', (side) => sized('/set?a=2', side, 'dropped')],
    ['past the buffer', (side) => sized('/big', side, 'z'.repeat(3000))],
  ];
  for (const [name, make] of requests) {
    const n = await rawRequest(ports.nginx, make('nginx'), { until: 'close' });
    const s = await rawRequest(ports.sluice, make('sluice'), { until: 'close' });
    assert.equal(s.head?.statusCode, n.head?.statusCode, name);
    assert.equal(seen.get('sluice'), seen.get('nginx'), name);
    assert.equal(headerValue(s.head!, 'x-body'), headerValue(n.head!, 'x-body'), `${name}: X-Body`);
  }
});
