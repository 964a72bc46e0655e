// BEHAVIOURS.md "Handshake" (1-15): how Sluice recognises, forwards, checks and relays a WebSocket
// (or other) upgrade. Exact bytes are checked with raw sockets on both sides: a scripted upstream
// (ws-support `startScriptedUpstream`) answers with chosen bytes in one write.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { startTestProxy } from '../helpers/proxy.js';
import {
  SAMPLE_ACCEPT, SAMPLE_KEY, headerValue, headerValues, maskedFrame, parseResponseHead, rawConnect, rawRequest, rawWebSocket, readFrame, readToEnd,
  readUntil, serverFrame, waitForBytes, wsHandshakeRequest,
} from '../helpers/raw-client.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { acceptKey } from '../../src/websocket/accept-key.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { delay, waitFor } from '../helpers/wait.js';
import {
  CLASSIC_LOCATION, CLASSIC_MAP, FORWARD_UPGRADE, WAIT_MS, names, proxyConfig, startScriptedUpstream, switching101, tunnelEvents, values,
} from './ws-support.js';

const CONFIGS = [
  { name: 'without Upgrade/Connection lines', location: '', http: '' },
  { name: 'with the classic map config', location: CLASSIC_LOCATION, http: CLASSIC_MAP },
] as const;

/** Sends a text frame through an open raw tunnel to the echo backend and expects it back. */
async function assertEchoes(socket: import('node:net').Socket, text: string): Promise<void> {
  socket.write(maskedFrame(Opcode.TEXT, text));
  const frame = await readFrame(socket, WAIT_MS);
  assert.equal(frame.opcode, Opcode.TEXT);
  assert.equal(frame.payload.toString(), text);
}

for (const config of CONFIGS) {
  test(`1: an upgrade is recognised case-insensitively, in a comma list or across lines (${config.name})`, async (t) => {
    const backend = await startHttpBackend(undefined, { id: 'echo' });
    t.after(() => backend.close());
    const proxy = await startTestProxy(proxyConfig(backend.addr, config), { t });
    const variants: [string, [string, string][]][] = [
      ['Connection: keep-alive, Upgrade', [['Upgrade', 'websocket'], ['Connection', 'keep-alive, Upgrade']]],
      ['Connection: UPGRADE', [['Upgrade', 'websocket'], ['Connection', 'UPGRADE']]],
      ['Upgrade: WebSocket', [['Upgrade', 'WebSocket'], ['Connection', 'upgrade']]],
      ['Connection over two lines', [['Upgrade', 'websocket'], ['Connection', 'keep-alive'], ['Connection', 'Upgrade']]],
    ];
    for (const [what, lines] of variants) {
      const { socket, head } = await rawWebSocket(proxy.port, { omit: ['Upgrade', 'Connection'], extraHeaders: lines, timeoutMs: WAIT_MS });
      try {
        assert.equal(head.statusCode, 101, what);
        assert.equal(headerValue(head, 'sec-websocket-accept'), SAMPLE_ACCEPT, what);
        await assertEchoes(socket, `through: ${what}`);
      } finally {
        socket.destroy();
      }
    }
    assert.deepEqual(backend.requests.map((r) => r.upgrade), [true, true, true, true]);
    for (const r of backend.requests) {
      assert.equal(r.headers['connection'], 'upgrade');
      assert.equal(String(r.headers['upgrade']).toLowerCase(), 'websocket');
    }
  });

  test(`1: "not-upgrade" or no Connection token is no upgrade: an ordinary GET without Upgrade (${config.name})`, async (t) => {
    const backend = await startHttpBackend(undefined, { id: 'echo' });
    t.after(() => backend.close());
    const proxy = await startTestProxy(proxyConfig(backend.addr, config), { t });
    for (const connection of ['not-upgrade', 'keep-alive', 'upgraded']) {
      const res = await rawRequest(proxy.port, wsHandshakeRequest({ omit: ['Connection'], extraHeaders: [['Connection', connection]] }), { timeoutMs: WAIT_MS });
      assert.equal(res.head?.statusCode, 200, connection);
      assert.equal(headerValue(res.head!, 'x-echo-id'), 'echo');
    }
    assert.equal(backend.requests.length, 3);
    for (const r of backend.requests) {
      assert.equal(r.upgrade, false);
      assert.equal(r.headers['upgrade'], undefined);
    }
  });
}

test('classic map config: the backend sees Upgrade, Connection, Host, X-Real-IP and X-Forwarded-For; a plain GET gets Connection: close', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(proxyConfig(backend.addr, { http: CLASSIC_MAP, location: CLASSIC_LOCATION }), { t });
  const { socket, head } = await rawWebSocket(proxy.port, { omit: ['Host'], extraHeaders: [['Host', 'Chat.Example:8080']], path: '/room', timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  await assertEchoes(socket, 'classic');
  const ws = backend.requests[0]!;
  assert.equal(ws.upgrade, true);
  assert.equal(ws.url, '/room');
  assert.equal(ws.headers['upgrade'], 'websocket');
  assert.equal(ws.headers['connection'], 'upgrade');
  assert.equal(ws.headers['host'], 'chat.example');
  assert.equal(ws.headers['x-real-ip'], '127.0.0.1');
  assert.equal(ws.headers['x-forwarded-for'], '127.0.0.1');
  assert.equal(ws.headers['sec-websocket-key'], SAMPLE_KEY);

  const plain = await rawRequest(proxy.port, 'GET /plain HTTP/1.1\r\nHost: chat.example\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(plain.head?.statusCode, 200);
  const get = backend.requests[1]!;
  assert.equal(get.upgrade, false);
  assert.equal(get.headers['connection'], 'close');
  assert.equal(get.headers['upgrade'], undefined);
});

test('2: WebSocket, Origin, Cookie and Authorization headers pass upstream unchanged; Accept/Protocol/Extensions come back unchanged', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101({
    extra: ['Sec-WebSocket-Protocol: chat.v2', 'Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_max_window_bits=10'],
  }));
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const sent: [string, string][] = [
    ['Sec-WebSocket-Protocol', 'chat.v2, chat.v1'],
    ['Sec-WebSocket-Extensions', 'permessage-deflate; client_max_window_bits, x-webkit-deflate-frame'],
    ['Origin', 'https://App.Example.com:8443'],
    ['Cookie', 'session=a%3Db; theme=dark'],
    ['Authorization', 'Bearer eyJhbGciOi.J9x_y-z=='],
  ];
  const { socket, head } = await rawWebSocket(proxy.port, { key: SAMPLE_KEY, version: '13', extraHeaders: sent, timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  const x = await upstream.nextExchange();
  assert.deepEqual(values(x.head, 'sec-websocket-key'), [SAMPLE_KEY]);
  assert.deepEqual(values(x.head, 'sec-websocket-version'), ['13']);
  for (const [name, value] of sent) assert.deepEqual(values(x.head, name), [value], name);
  assert.equal(headerValue(head, 'sec-websocket-accept'), SAMPLE_ACCEPT);
  assert.equal(headerValue(head, 'sec-websocket-protocol'), 'chat.v2');
  assert.equal(headerValue(head, 'sec-websocket-extensions'), 'permessage-deflate; server_no_context_takeover; client_max_window_bits=10');
});

test('3: the 101 is relayed faithfully: status line, repeated Set-Cookie, order, no Content-Length/Transfer-Encoding', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101({
    extra: ['Set-Cookie: a=1; Path=/', 'X-Custom: one', 'Set-Cookie: b=2; HttpOnly', 'X-Custom: two', 'Date: Mon, 01 Jan 2001 00:00:00 GMT', 'Server: upstream/1.0'],
  }));
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { socket, head } = await rawWebSocket(proxy.port, { timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusLine, 'HTTP/1.1 101 Switching Protocols');
  const relayed = head.headers.filter(([n]) => !['server', 'date'].includes(n.toLowerCase()));
  assert.deepEqual(relayed, [
    ['Upgrade', 'websocket'],
    ['Connection', 'Upgrade'],
    ['Sec-WebSocket-Accept', SAMPLE_ACCEPT],
    ['Set-Cookie', 'a=1; Path=/'],
    ['X-Custom', 'one'],
    ['Set-Cookie', 'b=2; HttpOnly'],
    ['X-Custom', 'two'],
  ]);
  assert.deepEqual(headerValues(head, 'server'), ['sluice'], 'the proxy names itself, as nginx does');
  assert.equal(headerValues(head, 'date').length, 1);
  assert.equal(headerValue(head, 'content-length'), undefined);
  assert.equal(headerValue(head, 'transfer-encoding'), undefined);
  assert.equal(head.rest.length, 0, 'nothing after the 101 head');
});

for (const config of CONFIGS) {
  test(`4: hop-by-hop headers are not forwarded upstream, nor back from the 101 (${config.name})`, async (t) => {
    const upstream = await startScriptedUpstream(t, () => switching101({
      extra: ['Keep-Alive: timeout=5', 'Trailer: X-Checksum', 'Proxy-Authenticate: Basic', 'X-Hop: secret', 'Content-Length: 0', 'X-End: kept'],
    }).replace('Connection: Upgrade', 'Connection: Upgrade, X-Hop'));
    const proxy = await startTestProxy(proxyConfig(upstream.addr, config), { t });
    const { socket, head } = await rawWebSocket(proxy.port, {
      omit: ['Connection'],
      extraHeaders: [
        ['Connection', 'Upgrade, X-Listed, keep-alive'],
        ['X-Listed', 'drop me'],
        ['Keep-Alive', 'timeout=5, max=100'],
        ['TE', 'trailers'],
        ['Trailer', 'X-Checksum'],
        ['Proxy-Authorization', 'Basic dXNlcjpwYXNz'],
        ['Proxy-Connection', 'keep-alive'],
        ['Proxy-Whatever', '1'],
        ['X-Kept', 'yes'],
      ],
      timeoutMs: WAIT_MS,
    });
    t.after(() => socket.destroy());
    assert.equal(head.statusCode, 101);
    const x = await upstream.nextExchange();
    const seen = names(x.head);
    for (const gone of ['x-listed', 'keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'proxy-whatever', 'content-length', 'transfer-encoding']) {
      assert.ok(!seen.includes(gone), `${gone} must not reach the upstream; it saw ${seen.join(', ')}`);
    }
    assert.deepEqual(values(x.head, 'x-kept'), ['yes']);
    assert.deepEqual(values(x.head, 'upgrade'), ['websocket']);
    assert.deepEqual(values(x.head, 'connection'), ['upgrade']);
    assert.equal(x.head.requestLine, 'GET / HTTP/1.1');

    const back = head.headers.map(([n]) => n.toLowerCase());
    for (const gone of ['keep-alive', 'trailer', 'proxy-authenticate', 'x-hop', 'content-length', 'transfer-encoding']) {
      assert.ok(!back.includes(gone), `${gone} must not reach the client; it saw ${back.join(', ')}`);
    }
    assert.equal(headerValue(head, 'x-end'), 'kept');
    assert.equal(headerValue(head, 'upgrade'), 'websocket');
  });
}

test('5 and 7: a refused upgrade (400/401/403/404/426/200) is relayed with its body, no tunnel, early client bytes never forwarded', async (t) => {
  const statuses = [400, 401, 403, 404, 426, 200];
  const upstream = await startScriptedUpstream(t, async (x) => {
    // Give any wrongly forwarded early bytes time to arrive before answering.
    await delay(100);
    const status = Number(/^\/(\d+)$/.exec(x.head.target)?.[1]);
    const body = `refused with ${status}\n`;
    const extra = status === 426 ? 'Upgrade: websocket\r\nConnection: Upgrade\r\n' : '';
    return `HTTP/1.1 ${status} Whatever\r\nContent-Type: text/plain\r\n${extra}Content-Length: ${body.length}\r\nX-Why: nope\r\n\r\n${body}`;
  });
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const early = Buffer.concat([maskedFrame(Opcode.TEXT, 'too early'), Buffer.from('GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n')]);
  for (const status of statuses) {
    const request = Buffer.concat([Buffer.from(wsHandshakeRequest({ path: `/${status}` }), 'latin1'), early]);
    const res = await rawRequest(proxy.port, request, { until: 'close', timeoutMs: WAIT_MS });
    assert.equal(res.head?.statusCode, status);
    assert.equal(res.head?.reason, 'Whatever');
    assert.equal(res.body.toString(), `refused with ${status}\n`, `body of ${status}`);
    assert.equal(headerValue(res.head!, 'x-why'), 'nope');
    // nginx 1.22 keeps Upgrade on a non-101 answer (426 names the protocol to switch to).
    assert.equal(headerValue(res.head!, 'upgrade'), status === 426 ? 'websocket' : undefined, `Upgrade on the ${status}`);
    assert.equal(res.data.length, res.head!.headLength + res.body.length, `nothing after the ${status} response`);
    const x = upstream.exchanges.at(-1)!;
    await waitFor(() => x.conn.socket.destroyed || x.conn.ended, { timeoutMs: WAIT_MS, what: 'the upstream connection to end' });
    assert.deepEqual(x.conn.received, x.headBytes, `the upstream got only the request head for ${status}`);
  }
  assert.equal(upstream.connections.length, statuses.length, 'the pipelined bytes were never parsed as a new request');
  assert.equal(events.opened.length, 0);
});

test('5: a refused upgrade with a chunked body is relayed whole and the connection closes', async (t) => {
  const upstream = await startScriptedUpstream(t, () =>
    'HTTP/1.1 403 Forbidden\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const res = await rawRequest(proxy.port, wsHandshakeRequest(), { until: 'close', timeoutMs: WAIT_MS });
  assert.equal(res.head?.statusCode, 403);
  assert.equal(res.body.toString(), 'hello world');
  assert.equal(res.closed, true);
});

test('6: client bytes pipelined with the request head reach the upstream in order after the 101, never parsed as HTTP', async (t) => {
  const upstream = await startScriptedUpstream(t, async (x) => {
    await delay(150);
    assert.equal(x.early.length, 0, 'no byte may be forwarded before the upstream accepts');
    assert.equal(x.conn.received.length, x.head.length);
    return switching101();
  });
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const early = Buffer.concat([
    maskedFrame(Opcode.TEXT, 'first'),
    Buffer.from('GET /not-a-request HTTP/1.1\r\nHost: x\r\n\r\n'),
    maskedFrame(Opcode.BINARY, Buffer.from([0, 1, 2, 255])),
  ]);
  const { socket, head } = await rawWebSocket(proxy.port, { earlyBytes: early, timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  const x = await upstream.nextExchange();
  const got = await x.conn.readUntil((b) => b.length >= early.length, WAIT_MS);
  assert.deepEqual(got, early);
  assert.equal(upstream.connections.length, 1);
  x.conn.socket.write(serverFrame(Opcode.TEXT, 'after'));
  const next = await readUntil(socket, (b) => b.length >= 7, WAIT_MS);
  assert.deepEqual(next, serverFrame(Opcode.TEXT, 'after'), 'no HTTP response to the pipelined text');
});

test('8: server bytes in the same packet as the 101 reach the client right after it', async (t) => {
  const frames = Buffer.concat([serverFrame(Opcode.TEXT, 'welcome'), serverFrame(Opcode.BINARY, Buffer.alloc(300, 7)), serverFrame(Opcode.PING, 'p')]);
  const upstream = await startScriptedUpstream(t, () => Buffer.concat([Buffer.from(switching101(), 'latin1'), frames]));
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const { socket, head } = await rawWebSocket(proxy.port, { timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  assert.equal(head.statusCode, 101);
  const after = await readUntil(socket, (b) => b.length >= frames.length, WAIT_MS);
  assert.deepEqual(after, frames);
});

test('9: a 101 to a request that did not ask for an upgrade gives 502 and no tunnel', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  // A plain GET (the ordinary HTTP path).
  const plain = await rawRequest(proxy.port, 'GET /plain HTTP/1.1\r\nHost: a\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(plain.head?.statusCode, 502);
  // A non-WebSocket upgrade the config does not forward: proxied as an ordinary request.
  const foo = await rawRequest(proxy.port, 'GET /foo HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(foo.head?.statusCode, 502);
  assert.equal(upstream.exchanges.length, 2);
  assert.equal(values(upstream.exchanges[1]!.head, 'upgrade').length, 0, 'the unforwarded upgrade went out without Upgrade');
  for (const x of upstream.exchanges) await waitFor(() => x.conn.socket.destroyed || x.conn.ended, { timeoutMs: WAIT_MS, what: 'the upstream to be closed' });
  assert.equal(events.opened.length, 0);
});

test('9: a 101 without an Upgrade header is no response to relay either: 502 on the HTTP and the upgrade path', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101({ upgrade: null, accept: null }));
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const events = tunnelEvents(t, proxy.port);
  const foo = await rawRequest(proxy.port, 'GET /foo HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(foo.head?.statusCode, 502, 'upgrade path');
  const plain = await rawRequest(proxy.port, 'GET /plain HTTP/1.1\r\nHost: a\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(plain.head?.statusCode, 502, `HTTP path; the client got ${JSON.stringify(plain.data.toString('latin1'))}`);
  assert.equal(events.opened.length, 0);
});

test('10: a 101 that switches to another protocol than asked gives 502', async (t) => {
  const upstream = await startScriptedUpstream(t, (x) => {
    if (x.head.target === '/h2c') return switching101({ upgrade: 'h2c' });
    if (x.head.target === '/none') return switching101({ upgrade: null });
    return 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: bar\r\nConnection: Upgrade\r\n\r\n';
  });
  const proxy = await startTestProxy(proxyConfig(upstream.addr, { location: FORWARD_UPGRADE }), { t });
  for (const path of ['/h2c', '/none']) {
    const res = await rawRequest(proxy.port, wsHandshakeRequest({ path }), { timeoutMs: WAIT_MS });
    assert.equal(res.head?.statusCode, 502, path);
  }
  const foo = await rawRequest(proxy.port, 'GET /foo HTTP/1.1\r\nHost: a\r\nUpgrade: foo\r\nConnection: Upgrade\r\n\r\n', { timeoutMs: WAIT_MS });
  assert.equal(foo.head?.statusCode, 502);
  assert.deepEqual(values(upstream.exchanges[2]!.head, 'upgrade'), ['foo']);
});

test('11: an h2c upgrade is never forwarded, even where the config forwards Upgrade', async (t) => {
  const upstream = await startScriptedUpstream(t, () => 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplain');
  for (const location of ['', FORWARD_UPGRADE, CLASSIC_LOCATION]) {
    const proxy = await startTestProxy(proxyConfig(upstream.addr, { location, http: CLASSIC_MAP }), { t });
    const res = await rawRequest(proxy.port,
      'GET /h2 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n', { timeoutMs: WAIT_MS });
    assert.equal(res.head?.statusCode, 200);
    assert.equal(res.body.toString(), 'plain');
    const x = await upstream.nextExchange();
    assert.deepEqual(values(x.head, 'upgrade'), [], `no Upgrade upstream (config: ${location || 'plain'})`);
    assert.deepEqual(values(x.head, 'http2-settings'), []);
    await proxy.stop();
  }
});

test('12: a WebSocket upgrade without Sec-WebSocket-Key, or not a GET, gets 400 and never reaches the upstream', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr), { t });
  const requests = [
    wsHandshakeRequest({ omit: ['Sec-WebSocket-Key'] }),
    wsHandshakeRequest({ method: 'POST', extraHeaders: [['Content-Length', '0']] }),
    wsHandshakeRequest({ method: 'PUT', extraHeaders: [['Content-Length', '0']] }),
  ];
  for (const request of requests) {
    const res = await rawRequest(proxy.port, request, { until: 'close', timeoutMs: WAIT_MS });
    assert.equal(res.head?.statusCode, 400, request.split('\r\n')[0]);
  }
  assert.equal(upstream.connections.length, 0);
});

test('12: an upstream 101 without Sec-WebSocket-Accept, or with a wrong one, gives 502', async (t) => {
  const upstream = await startScriptedUpstream(t, (x) => switching101({
    accept: x.head.target === '/missing' ? null : x.head.target === '/wrong' ? acceptKey('AAAAAAAAAAAAAAAAAAAAAA==') : `${SAMPLE_ACCEPT} `,
  }));
  const proxy = await startTestProxy(proxyConfig(upstream.addr, { location: FORWARD_UPGRADE }), { t });
  const events = tunnelEvents(t, proxy.port);
  for (const path of ['/missing', '/wrong']) {
    const res = await rawRequest(proxy.port, wsHandshakeRequest({ path }), { timeoutMs: WAIT_MS });
    assert.equal(res.head?.statusCode, 502, path);
  }
  // Trailing space is optional whitespace (RFC 9110 5.5): that accept is right.
  const ok = await rawWebSocket(proxy.port, { path: '/spaced', timeoutMs: WAIT_MS });
  ok.socket.destroy();
  assert.equal(ok.head.statusCode, 101);
  assert.equal(events.opened.length, 1);
});

test('13: the request line reaches the upstream byte for byte; Host is $proxy_host by default, or as configured', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const target = '/ws/a%2Fb/%7Euser/caf%C3%A9;v=1?token=a%20b&x=1&x=2&empty=&q=%3F%26';
  const hosts = [
    { location: '', expected: `127.0.0.1:${upstream.port}` },
    { location: 'proxy_set_header Host $host;', expected: 'chat.example.com' },
    { location: 'proxy_set_header Host $http_host;', expected: 'Chat.Example.com:8443' },
    { location: 'proxy_set_header Host backend.internal;', expected: 'backend.internal' },
  ];
  for (const { location, expected } of hosts) {
    const proxy = await startTestProxy(proxyConfig(upstream.addr, { location }), { t });
    const { socket, head } = await rawWebSocket(proxy.port, { path: target, omit: ['Host'], extraHeaders: [['Host', 'Chat.Example.com:8443']], timeoutMs: WAIT_MS });
    socket.destroy();
    assert.equal(head.statusCode, 101);
    const x = await upstream.nextExchange();
    assert.equal(x.head.requestLine, `GET ${target} HTTP/1.1`);
    assert.deepEqual(values(x.head, 'host'), [expected], location || 'default');
    await proxy.stop();
  }
});

test('14: X-Forwarded-For appends the client address; X-Real-IP and X-Forwarded-Proto as configured', async (t) => {
  const upstream = await startScriptedUpstream(t, () => switching101());
  const proxy = await startTestProxy(proxyConfig(upstream.addr, {
    location: `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Real-IP $remote_addr;
      proxy_set_header X-Forwarded-Proto $scheme;`,
  }), { t });
  const cases: { sent: [string, string][]; xff: string }[] = [
    { sent: [], xff: '127.0.0.1' },
    { sent: [['X-Forwarded-For', '203.0.113.7, 198.51.100.2']], xff: '203.0.113.7, 198.51.100.2, 127.0.0.1' },
    { sent: [['X-Forwarded-For', '203.0.113.7'], ['X-Forwarded-For', '198.51.100.9']], xff: '203.0.113.7, 198.51.100.9, 127.0.0.1' },
  ];
  for (const { sent, xff } of cases) {
    const { socket, head } = await rawWebSocket(proxy.port, {
      extraHeaders: [...sent, ['X-Real-IP', '10.9.9.9'], ['X-Forwarded-Proto', 'https']], timeoutMs: WAIT_MS,
    });
    socket.destroy();
    assert.equal(head.statusCode, 101);
    const x = await upstream.nextExchange();
    assert.deepEqual(values(x.head, 'x-forwarded-for'), [xff]);
    assert.deepEqual(values(x.head, 'x-real-ip'), ['127.0.0.1'], 'the rule replaces what the client sent');
    assert.deepEqual(values(x.head, 'x-forwarded-proto'), ['http']);
  }
});

test('15: proxy_set_header rules and their http > server > location inheritance apply to upgrades as to ordinary requests', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const config = `
events {}
http {
  proxy_set_header X-Level http;
  proxy_set_header X-Http-Only yes;
  server {
    listen 127.0.0.1:0;
    proxy_set_header X-Level server;
    proxy_set_header X-Server-Only yes;
    location / { proxy_pass http://${backend.addr}; }
    location /own/ {
      proxy_pass http://${backend.addr};
      proxy_set_header X-Own "$request_method $uri";
      proxy_set_header X-Empty "";
    }
  }
}`;
  const proxy = await startTestProxy(config, { t });
  const expected: Record<string, Record<string, string | undefined>> = {
    '/inherit': { 'x-level': 'server', 'x-server-only': 'yes', 'x-http-only': undefined, 'x-own': undefined },
    '/own/x': { 'x-level': undefined, 'x-server-only': undefined, 'x-http-only': undefined, 'x-own': 'GET /own/x' },
  };
  for (const [path, want] of Object.entries(expected)) {
    const plain = await rawRequest(proxy.port, `GET ${path} HTTP/1.1\r\nHost: h\r\nX-Empty: client\r\n\r\n`, { timeoutMs: WAIT_MS });
    assert.equal(plain.head?.statusCode, 200);
    const { socket, head } = await rawWebSocket(proxy.port, { path, extraHeaders: [['X-Empty', 'client']], timeoutMs: WAIT_MS });
    socket.destroy();
    assert.equal(head.statusCode, 101);
    const [get, upgrade] = backend.requests.slice(-2);
    assert.equal(get?.upgrade, false);
    assert.equal(upgrade?.upgrade, true);
    for (const r of [get!, upgrade!]) {
      for (const [name, value] of Object.entries(want)) assert.equal(r.headers[name], value, `${name} on ${path} (${r.upgrade ? 'upgrade' : 'GET'})`);
      assert.equal(r.headers['host'], backend.addr, '$proxy_host');
      assert.equal(r.headers['x-empty'], path === '/own/x' ? undefined : 'client', 'an empty rule sends nothing');
    }
  }
});

test('non-WebSocket upgrade tokens pass where the config forwards Upgrade, and the tunnel carries bytes', async (t) => {
  const upstream = await startScriptedUpstream(t, () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo/1.0\r\nConnection: Upgrade\r\n\r\nserver-hello');
  const proxy = await startTestProxy(proxyConfig(upstream.addr, { location: FORWARD_UPGRADE }), { t });
  const res = await rawRequest(proxy.port, 'GET /foo HTTP/1.1\r\nHost: a\r\nUpgrade: foo/1.0\r\nConnection: Upgrade\r\n\r\n',
    { until: 'server-hello', keepOpen: true, timeoutMs: WAIT_MS });
  const socket = res.socket;
  t.after(() => socket.destroy());
  assert.equal(res.head?.statusCode, 101);
  assert.equal(headerValue(res.head!, 'upgrade'), 'foo/1.0');
  assert.equal(res.head?.rest.toString(), 'server-hello');
  const x = await upstream.nextExchange();
  assert.deepEqual(values(x.head, 'upgrade'), ['foo/1.0']);
  assert.deepEqual(values(x.head, 'connection'), ['upgrade']);
  socket.write('client-bytes \x00\xff', 'latin1');
  assert.equal((await x.conn.readUntil('\xff', WAIT_MS)).toString('latin1'), 'client-bytes \x00\xff');
});

test('non-WebSocket upgrade tokens are proxied as ordinary requests without Upgrade where the config does not forward it', async (t) => {
  const upstream = await startScriptedUpstream(t, () => 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
  const locations = [
    '',
    'proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";',
    'proxy_http_version 1.1; proxy_set_header Connection "upgrade";',
  ];
  for (const location of locations) {
    const proxy = await startTestProxy(proxyConfig(upstream.addr, { location }), { t });
    const res = await rawRequest(proxy.port, 'GET /foo HTTP/1.1\r\nHost: a\r\nUpgrade: foo/1.0\r\nConnection: Upgrade\r\n\r\n', { until: 'close', timeoutMs: WAIT_MS });
    assert.equal(res.head?.statusCode, 200);
    assert.equal(res.body.toString(), 'ok');
    const x = await upstream.nextExchange();
    assert.deepEqual(values(x.head, 'upgrade'), [], `no Upgrade upstream (config: ${location || 'plain'})`);
    await proxy.stop();
  }
});

test('a WebSocket upgrade whose head arrives in pieces is still proxied', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'echo' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(proxyConfig(backend.addr), { t });
  const socket = await rawConnect(proxy.port, { timeoutMs: WAIT_MS });
  t.after(() => socket.destroy());
  const request = Buffer.from(wsHandshakeRequest(), 'latin1');
  for (let i = 0; i < request.length; i += 17) {
    socket.write(request.subarray(i, i + 17));
    await delay(2);
  }
  const head = parseResponseHead(await waitForBytes(socket, '\r\n\r\n', WAIT_MS));
  recorderFor(socket).consume(head.headLength);
  assert.equal(head.statusCode, 101);
  await assertEchoes(socket, 'pieces');
  socket.end();
  await readToEnd(socket, WAIT_MS);
});
