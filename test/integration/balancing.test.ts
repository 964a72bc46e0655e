/**
 * Load balancing end to end (BEHAVIOURS 30, 33, 34 backup part): round robin over HTTP requests
 * and WebSocket handshakes alike, smooth weights, passive health (max_fails / fail_timeout),
 * backup and down servers, and proxy_next_upstream / proxy_next_upstream_tries as nginx has them.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { skipTime } from '../../src/core/clock.js';
import { startHttpBackend, startHttpBackends, startRawBackend, type HttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { errorPage } from '../helpers/pages.js';
import { refusedPort } from '../helpers/ports.js';
import { startTestProxy, type TestProxy } from '../helpers/proxy.js';
import { headerValue, rawWebSocket, sendRequest } from '../helpers/raw-client.js';

interface Answer {
  status: number;
  /** The X-Echo-Id of the backend that answered, or '-'. */
  id: string;
  body: string;
}

async function send(proxy: TestProxy, path: string, method = 'GET', body = ''): Promise<Answer> {
  const r = await sendRequest(proxy.port, path, ['Host: localhost'], method === 'GET' && body === '' ? {} : { method, body });
  return { status: r.status, id: headerValue(r.head, 'x-echo-id') ?? '-', body: r.body };
}

/** Who answered each of `n` GETs, in order (every answer must be a 200). */
async function whoAnswers(proxy: TestProxy, path: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await send(proxy, path);
    assert.equal(r.status, 200, `request ${i + 1} to ${path}: ${r.body}`);
    ids.push(r.id);
  }
  return ids;
}

/** Opens a WebSocket through the proxy and returns the X-Echo-Id of its 101. */
async function wsWho(proxy: TestProxy, path: string): Promise<string> {
  const ws = await rawWebSocket(proxy.port, { path });
  ws.socket.destroy();
  assert.equal(ws.head.statusCode, 101);
  return headerValue(ws.head, 'x-echo-id') ?? '-';
}

test('round robin alternates exactly, over HTTP requests and WebSocket handshakes alike', async (t) => {
  const [a, b] = await startHttpBackends(t, 'a', 'b');
  const proxy = await startTestProxy(conf(`
    upstream http_only { server ${a!.addr}; server ${b!.addr}; }
    upstream ws_only { server ${a!.addr}; server ${b!.addr}; }
    upstream mixed { server ${a!.addr}; server ${b!.addr}; }
    server {
      listen 127.0.0.1:0;
      location /http/ { proxy_pass http://http_only; }
      location /ws/ { proxy_pass http://ws_only; }
      location /mixed/ { proxy_pass http://mixed; }
    }`), { t });
  assert.deepEqual(await whoAnswers(proxy, '/http/', 6), ['a', 'b', 'a', 'b', 'a', 'b']);
  const ws: string[] = [];
  for (let i = 0; i < 6; i++) ws.push(await wsWho(proxy, '/ws/'));
  assert.deepEqual(ws, ['a', 'b', 'a', 'b', 'a', 'b']);
  const mixed: string[] = [];
  for (let i = 0; i < 3; i++) {
    mixed.push((await send(proxy, '/mixed/')).id);
    mixed.push(await wsWho(proxy, '/mixed/'));
  }
  assert.deepEqual(mixed, ['a', 'b', 'a', 'b', 'a', 'b']);
});

test('weights hold exactly in sequence (smooth weighted round robin: 5,1,1 gives a a b a c a a)', async (t) => {
  const [a, b, c] = await startHttpBackends(t, 'a', 'b', 'c');
  const proxy = await startTestProxy(conf(`
    upstream five { server ${a!.addr} weight=5; server ${b!.addr}; server ${c!.addr}; }
    upstream three { server ${a!.addr} weight=3; server ${b!.addr}; }
    server {
      listen 127.0.0.1:0;
      location /five/ { proxy_pass http://five; }
      location /three/ { proxy_pass http://three; }
    }`), { t });
  const cycle = ['a', 'a', 'b', 'a', 'c', 'a', 'a'];
  assert.deepEqual(await whoAnswers(proxy, '/five/', 14), [...cycle, ...cycle]);
  assert.deepEqual(await whoAnswers(proxy, '/three/', 8), ['a', 'a', 'b', 'a', 'a', 'a', 'b', 'a']);
});

test('passive health: after max_fails failures a server is skipped for fail_timeout, then tried again', async (t) => {
  let healthy = false;
  const flaky = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    if (healthy) conn.socket.end('HTTP/1.1 200 OK\r\nX-Echo-Id: flaky\r\nContent-Length: 0\r\n\r\n');
    else conn.socket.destroy();
  });
  t.after(() => flaky.close());
  const [good] = await startHttpBackends(t, 'good');
  // Long, so that the requests below fall within it however slow the machine; the test then skips
  // the proxy's clock past it instead of sleeping.
  const FAIL_TIMEOUT_S = 30;
  const proxy = await startTestProxy(conf(`
    upstream u {
      server ${flaky.addr} max_fails=2 fail_timeout=${FAIL_TIMEOUT_S}s;
      server ${good!.addr};
    }
    server { listen 127.0.0.1:0; location / { proxy_pass http://u; } }`), { t });

  // Each failure is retried on the good server, so every client still gets a 200.
  assert.deepEqual(await whoAnswers(proxy, '/', 3), ['good', 'good', 'good']);
  assert.equal(flaky.connections.length, 2, 'tried on requests 1 and 3');
  // Two failures within fail_timeout: skipped.
  assert.deepEqual(await whoAnswers(proxy, '/', 4), ['good', 'good', 'good', 'good']);
  assert.equal(flaky.connections.length, 2, 'not tried while failed');
  await proxy.waitForErrorLine(/upstream prematurely closed connection/);

  healthy = true;
  skipTime(FAIL_TIMEOUT_S * 1000);
  // After fail_timeout it gets a request again; its success clears the failures and the
  // alternation resumes.
  assert.deepEqual(await whoAnswers(proxy, '/', 4), ['good', 'flaky', 'good', 'flaky']);
  assert.equal(flaky.connections.length, 4);
});

test('every server failing gives 502; then, with all of them marked failed, "no live upstreams"', async (t) => {
  const p1 = await refusedPort();
  const p2 = await refusedPort();
  const proxy = await startTestProxy(conf(`
    upstream u { server 127.0.0.1:${p1}; server 127.0.0.1:${p2}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://u; } }`), { t });
  const first = await send(proxy, '/a');
  assert.equal(first.status, 502);
  assert.equal(first.body, errorPage('502 Bad Gateway'));
  await proxy.waitForErrorLine(new RegExp(`connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, .*upstream: "http://127\\.0\\.0\\.1:${p1}/a"`));
  await proxy.waitForErrorLine(new RegExp(`connect\\(\\) failed \\(111: Connection refused\\) while connecting to upstream, .*upstream: "http://127\\.0\\.0\\.1:${p2}/a"`));
  const second = await send(proxy, '/b');
  assert.equal(second.status, 502);
  assert.equal(second.body, errorPage('502 Bad Gateway'));
  await proxy.waitForErrorLine(/no live upstreams while connecting to upstream.*request: "GET \/b HTTP\/1\.1"/);
});

test('a backup server takes traffic only when the primaries are down or failed', async (t) => {
  const [a, b, c] = await startHttpBackends(t, 'a', 'b', 'c');
  const proxy = await startTestProxy(conf(`
    upstream u { server ${a!.addr}; server ${b!.addr}; server ${c!.addr} backup; }
    upstream marked { server ${a!.addr} down; server ${c!.addr} backup; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://u; }
      location /marked/ { proxy_pass http://marked; }
    }`), { t });
  assert.deepEqual(await whoAnswers(proxy, '/', 4), ['a', 'b', 'a', 'b']);
  assert.equal(c!.requests.length, 0);
  assert.deepEqual(await whoAnswers(proxy, '/marked/', 2), ['c', 'c']);

  await a!.close();
  await b!.close();
  // The primaries refuse: the same request moves on to the backup; then they are marked failed
  // and the backup is picked straight away.
  assert.deepEqual(await whoAnswers(proxy, '/', 3), ['c', 'c', 'c']);
  assert.equal(c!.requests.filter((r) => r.url === '/').length, 3);
});

test('a server marked down never gets traffic', async (t) => {
  const [a, b, c] = await startHttpBackends(t, 'a', 'b', 'c');
  const proxy = await startTestProxy(conf(`
    upstream u { server ${a!.addr} down; server ${b!.addr}; server ${c!.addr}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://u; } }`), { t });
  assert.deepEqual(await whoAnswers(proxy, '/', 6), ['b', 'c', 'b', 'c', 'b', 'c']);
  const ws: string[] = [];
  for (let i = 0; i < 2; i++) ws.push(await wsWho(proxy, '/'));
  assert.deepEqual(ws, ['b', 'c']);
  assert.equal(a!.requests.length, 0);
});

test('proxy_next_upstream http_502 passes a 502 on (and counts it as a failure); by default the 502 is relayed', async (t) => {
  const badBackend = (id: string): Promise<HttpBackend> => startHttpBackend((_req, res) => {
    res.writeHead(502, { 'X-Echo-Id': id, 'Content-Length': String(`from ${id}`.length) });
    res.end(`from ${id}`);
  });
  const bad = await badBackend('bad');
  t.after(() => bad.close());
  const bad2 = await badBackend('bad2');
  t.after(() => bad2.close());
  const [good] = await startHttpBackends(t, 'good');
  const proxy = await startTestProxy(conf(`
    upstream retrying { server ${bad.addr}; server ${good!.addr}; }
    upstream relaying { server ${bad.addr}; server ${good!.addr}; }
    upstream all_bad { server ${bad.addr}; server ${bad2.addr}; }
    server {
      listen 127.0.0.1:0;
      proxy_next_upstream error timeout http_502;
      location /retry/ { proxy_pass http://retrying; }
      location /relay/ {
        proxy_next_upstream error timeout;
        proxy_pass http://relaying;
      }
      location /all-bad/ { proxy_pass http://all_bad; }
    }`), { t });

  // With no server left to try, the last 502 is relayed as the upstream sent it.
  const last = await send(proxy, '/all-bad/');
  assert.deepEqual([last.status, last.id, last.body], [502, 'bad2', 'from bad2']);
  assert.equal(bad.requests.length, 1);
  bad.requests.length = 0;

  assert.deepEqual(await whoAnswers(proxy, '/retry/', 3), ['good', 'good', 'good']);
  assert.equal(bad.requests.length, 1, 'the failed server is skipped after its 502 (max_fails=1)');

  const relayed: [number, string, string][] = [];
  for (let i = 0; i < 4; i++) {
    const r = await send(proxy, '/relay/');
    relayed.push([r.status, r.id, r.status === 502 ? r.body : '']);
  }
  assert.deepEqual(relayed, [[502, 'bad', 'from bad'], [200, 'good', ''], [502, 'bad', 'from bad'], [200, 'good', '']]);
});

test('proxy_next_upstream off and proxy_next_upstream_tries limit the servers tried', async (t) => {
  const [good] = await startHttpBackends(t, 'good');
  const dead1 = await refusedPort();
  const dead2 = await refusedPort();
  const proxy = await startTestProxy(conf(`
    upstream off_u { server 127.0.0.1:${dead1}; server ${good!.addr}; }
    upstream one_u { server 127.0.0.1:${dead1}; server ${good!.addr}; }
    upstream two_u { server 127.0.0.1:${dead1}; server 127.0.0.1:${dead2}; server ${good!.addr}; }
    upstream three_u { server 127.0.0.1:${dead1}; server 127.0.0.1:${dead2}; server ${good!.addr}; }
    server {
      listen 127.0.0.1:0;
      location /off/ {
        proxy_next_upstream off;
        proxy_pass http://off_u;
      }
      location /one/ {
        proxy_next_upstream_tries 1;
        proxy_pass http://one_u;
      }
      location /two/ {
        proxy_next_upstream_tries 2;
        proxy_pass http://two_u;
      }
      location /three/ {
        proxy_next_upstream_tries 3;
        proxy_pass http://three_u;
      }
    }`), { t });
  for (const path of ['/off/', '/one/', '/two/']) {
    const r = await send(proxy, path);
    assert.equal(r.status, 502, path);
    assert.equal(r.body, errorPage('502 Bad Gateway'), path);
  }
  assert.equal(good!.requests.length, 0);
  const third = await send(proxy, '/three/');
  assert.equal(third.status, 200);
  assert.equal(third.id, 'good');
});

test('a POST whose body was sent is passed to another server only with non_idempotent (the body was buffered); a connect failure is', async (t) => {
  // Reads the whole request (head and body), then closes without answering.
  const sink = await startRawBackend(async (conn) => {
    const head = (await conn.readUntil('\r\n\r\n')).toString('latin1');
    const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? '0');
    const headEnd = conn.received.indexOf('\r\n\r\n') + 4;
    if (conn.received.length - headEnd < length) await conn.readUntil(() => conn.received.length - headEnd >= length);
    conn.socket.end();
  });
  t.after(() => sink.close());
  const [good] = await startHttpBackends(t, 'good');
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    upstream post_u { server ${sink.addr}; server ${good!.addr}; }
    upstream post_nonidem_u { server ${sink.addr}; server ${good!.addr}; }
    upstream empty_post_u { server ${sink.addr}; server ${good!.addr}; }
    upstream get_u { server ${sink.addr}; server ${good!.addr}; }
    upstream refused_u { server 127.0.0.1:${dead}; server ${good!.addr}; }
    server {
      listen 127.0.0.1:0;
      location /post/ { proxy_pass http://post_u; }
      location /post-nonidem/ {
        proxy_next_upstream error timeout non_idempotent;
        proxy_pass http://post_nonidem_u;
      }
      location /empty-post/ { proxy_pass http://empty_post_u; }
      location /get/ { proxy_pass http://get_u; }
      location /refused/ { proxy_pass http://refused_u; }
    }`), { t });

  // nginx never repeats a POST that reached a server unless non_idempotent is set; with it, the
  // body read whole (proxy_request_buffering on) goes to the next server again.
  const post = await send(proxy, '/post/', 'POST', 'payload=1');
  assert.equal(post.status, 502);
  const emptyPost = await send(proxy, '/empty-post/', 'POST', '');
  assert.equal(emptyPost.status, 502);
  assert.equal(good!.requests.length, 0);
  const nonIdem = await send(proxy, '/post-nonidem/', 'POST', 'payload=2');
  assert.deepEqual([nonIdem.status, nonIdem.id], [200, 'good']);
  assert.equal(sink.connections.length, 3);

  // An idempotent request without a body is passed on.
  const get = await send(proxy, '/get/');
  assert.deepEqual([get.status, get.id], [200, 'good']);

  // The connection was refused, so nothing was sent: the POST and its body go to the next server.
  const refused = await send(proxy, '/refused/', 'POST', 'payload=3');
  assert.deepEqual([refused.status, refused.id], [200, 'good']);
  assert.deepEqual(good!.requests.map((r) => [r.method, r.url, r.body]), [['POST', '/post-nonidem/', 'payload=2'], ['GET', '/get/', ''], ['POST', '/refused/', 'payload=3']]);
  assert.equal(sink.connections.length, 4);
});

test('proxy_next_upstream: with the rest down the last answer is relayed (down servers are no tries); two lines with one address are two tries', async (t) => {
  const notFound = await startHttpBackend((_req, res) => {
    res.writeHead(404, { 'X-Echo-Id': 'nf', 'Content-Length': '9' });
    res.end('from app\n');
  });
  t.after(() => notFound.close());
  const failing = await startHttpBackend((_req, res) => {
    res.writeHead(500, { 'X-Echo-Id': 'five', 'Content-Length': '5' });
    res.end('five\n');
  });
  t.after(() => failing.close());
  const dead = await refusedPort();
  const proxy = await startTestProxy(conf(`
    upstream with_down { server ${notFound.addr}; server 127.0.0.1:${dead} down; }
    upstream twice { server ${failing.addr}; server ${failing.addr}; }
    server {
      listen 127.0.0.1:0;
      location /nf/ { proxy_next_upstream error http_404; proxy_pass http://with_down; }
      location /twice/ { proxy_next_upstream error http_500; proxy_pass http://twice; add_header X-Addr $upstream_addr always; }
    }`), { t });
  // nginx counts only servers not `down` as tries: the 404 is the last answer, relayed as sent.
  const nf = await send(proxy, '/nf/');
  assert.deepEqual([nf.status, nf.id, nf.body], [404, 'nf', 'from app\n']);
  const r = await sendRequest(proxy.port, '/twice/', ['Host: localhost']);
  assert.deepEqual([r.status, r.body], [500, 'five\n']);
  assert.equal(failing.requests.length, 2, 'each server line is a try');
  assert.equal(headerValue(r.head, 'x-addr'), `${failing.addr}, ${failing.addr}`);
});
