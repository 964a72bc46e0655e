/**
 * `sticky learn` (nginx Plus) with the session table in memory: a session the upstream creates with
 * its own cookie is learnt from the response (a WebSocket 101's included), and requests that carry
 * it go to that server, over round robin; an unknown or empty value is balanced as usual; a
 * session survives a reload. Across instances through Redis: test/e2e/fleet-sticky.e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import type { HttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { TestProxy } from '../helpers/proxy.js';
import { headerValue, rawWebSocket } from '../helpers/raw-client.js';

/** A backend that starts a session (Set-Cookie: sid=ID-N) for a request without one and says who it is. */
async function sessionBackend(t: TestContext, id: string): Promise<HttpBackend> {
  let n = 0;
  const b = await startHttpBackend((req, res) => {
    if (!/(^|;\s*)sid=/.test(req.headers.cookie ?? '')) res.setHeader('Set-Cookie', `sid=${id}-${++n}; Path=/; HttpOnly`);
    res.setHeader('X-Backend', id);
    res.end(id);
  }, {
    id,
    onUpgrade: (req, socket) => {
      const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.on('error', () => undefined);
      socket.on('end', () => socket.destroy());
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Backend: ${id}\r\nSet-Cookie: sid=${id}-ws${++n}; Path=/\r\n\r\n`);
    },
  });
  t.after(() => b.close());
  return b;
}

function config(backends: readonly HttpBackend[], extra = ''): string {
  return conf(`
    upstream app {
      ${backends.map((b) => `server ${b.addr};`).join(' ')}
      sticky learn create=$upstream_cookie_sid lookup=$cookie_sid zone=client_sessions:1m ${extra};
    }
    server { listen 127.0.0.1:0; location / { proxy_pass http://app; } }`);
}

async function get(proxy: TestProxy, cookie?: string): Promise<{ backend: string; setCookie: string | null }> {
  const res = await fetch(proxy.url('/'), { headers: cookie === undefined ? {} : { cookie } });
  await res.text();
  return { backend: res.headers.get('x-backend') ?? '', setCookie: res.headers.get('set-cookie') };
}

test('sticky learn: a session the upstream created routes its requests to that server; others are balanced', async (t) => {
  const backends = [await sessionBackend(t, 'a'), await sessionBackend(t, 'b'), await sessionBackend(t, 'c')];
  const proxy = await startTestProxy(config(backends, 'timeout=1h header'), { t });
  const first = await get(proxy);
  assert.match(first.setCookie ?? '', /^sid=[abc]-1; Path=\/; HttpOnly$/, 'the upstream\'s cookie reaches the client untouched');
  const sid = first.setCookie!.split(';')[0]!;
  const owner = sid.slice(4, 5);
  for (let i = 0; i < 6; i++) assert.equal((await get(proxy, sid)).backend, owner, `request ${i + 1} with ${sid}`);
  // Unknown and empty values: round robin over all three.
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) seen.add((await get(proxy, 'sid=nobody-knows')).backend);
  for (let i = 0; i < 3; i++) seen.add((await get(proxy, 'sid=')).backend);
  assert.deepEqual([...seen].sort(), ['a', 'b', 'c']);

  // A second session, learnt from a WebSocket handshake's 101.
  const ws = await rawWebSocket(proxy.port, { path: '/' });
  ws.socket.destroy();
  assert.equal(ws.head.statusCode, 101);
  const wsSid = String(headerValue(ws.head, 'set-cookie')).split(';')[0]!;
  const wsOwner = String(headerValue(ws.head, 'x-backend'));
  assert.match(wsSid, new RegExp(`^sid=${wsOwner}-ws1$`));
  assert.equal((await get(proxy, wsSid)).backend, wsOwner, `the session of the 101 (${wsSid}) routes to ${wsOwner}`);

  // The table outlives a reload (nginx keeps a zone of the same name and size).
  await proxy.handle.reload({ text: config(backends, 'timeout=1h') });
  for (let i = 0; i < 3; i++) assert.equal((await get(proxy, sid)).backend, owner);
});

test('sticky learn: the learnt server down, the request is balanced and a new session is learnt', async (t) => {
  const backends = [await sessionBackend(t, 'a'), await sessionBackend(t, 'b')];
  const proxy = await startTestProxy(config(backends), { t });
  const first = await get(proxy);
  const sid = first.setCookie!.split(';')[0]!;
  const other = first.backend === 'a' ? 'b' : 'a';
  await backends.find((b) => b.id === first.backend)!.close();
  assert.equal((await get(proxy, sid)).backend, other, 'the next server when the learnt one fails');
});
