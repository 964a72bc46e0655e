/**
 * Data-plane safety: a header value that a request turns into a line break never reaches the wire
 * (and never kills the process), and an unexpected error in one request (injected here by making
 * a routing or balancing method throw) answers that request 500, is logged at `alert` with its
 * stack and counted, while the proxy keeps serving; the daemon survives an exception thrown
 * outside any request. Every front end: HTTP/1.1 request, HTTP/1.1 upgrade, HTTP/2 request and
 * HTTP/2 extended CONNECT.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ListenerRoutes } from '../../src/routing/router.js';
import { UpstreamPool } from '../../src/upstream/pool.js';
import { startHttpBackend, startRawBackend } from '../helpers/backends.js';
import { testCerts } from '../helpers/certs.js';
import { CliProcess, ROOT, httpGet } from '../helpers/cli-process.js';
import { h2Connect, h2Request, h2WebSocket } from '../helpers/h2-client.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { startTestProxy } from '../helpers/proxy.js';
import type { TestProxy } from '../helpers/proxy.js';
import { rawConnect, rawRequest, wsHandshakeRequest } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

/** A decoded CR LF and an injected header, as an attacker puts it in a URI. */
const INJECT = '%0d%0aSet-Cookie:%20injected=1';

function get(path: string, extra = ''): string {
  return `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n${extra}\r\n`;
}

/** The status, and whether the injected header made it into the response head. */
async function ask(port: number, bytes: string): Promise<{ status: number | undefined; injected: boolean; head: string }> {
  const res = await rawRequest(port, bytes);
  const headEnd = res.data.indexOf('\r\n\r\n');
  const head = res.data.subarray(0, headEnd < 0 ? res.data.length : headEnd).toString('latin1');
  return { status: res.head?.statusCode, injected: /^set-cookie:/im.test(head), head };
}

async function metric(port: number, name: string): Promise<number | undefined> {
  const res = await rawRequest(port, get('/metrics'));
  assert.equal(res.head?.statusCode, 200);
  return sampleValue(parsePrometheus(res.body.toString('utf8')), name);
}

test('a header value that evaluates to CR LF is never sent: 500, the header named in the log, the process serves on', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0;
    location /add/      { add_header X-Uri $uri; return 204; }
    location /redirect/ { return 302 $uri; }
    location /upstream/ { proxy_set_header X-Uri $uri; proxy_pass http://${backend.addr}; }
    location /relay/    { add_header X-Uri $uri always; proxy_pass http://${backend.addr}; }
    location /ok        { return 200 "fine"; }
  }
}`, { t });
  const cases: [string, string, string][] = [
    ['add_header on a return', get(`/add/${INJECT}`), 'X-Uri'],
    ['a return redirect', get(`/redirect/${INJECT}`), 'Location'],
    ['proxy_set_header towards the upstream', get(`/upstream/${INJECT}`), 'X-Uri'],
    ['add_header on a proxied response', get(`/relay/${INJECT}`), 'X-Uri'],
    ['add_header on a WebSocket 101', wsHandshakeRequest({ path: `/relay/${INJECT}`, host: 'localhost' }), 'X-Uri'],
  ];
  for (const [what, bytes, header] of cases) {
    const before = proxy.errorLines.length;
    const r = await ask(proxy.port, bytes);
    assert.equal(r.status, 500, `${what}: 500; head: ${r.head}`);
    assert.equal(r.injected, false, `${what}: no injected header; head: ${r.head}`);
    const line = await proxy.waitForErrorLine(`(header "${header}")`);
    assert.ok(proxy.errorLines.indexOf(line) >= before || proxy.errorLines.slice(before).some((l) => l.includes(`(header "${header}")`)), what);
    assert.match(line, /\[error\] .*header value with a control character/);
  }
  assert.equal(backend.requests.filter((r) => r.url.startsWith('/upstream/')).length, 0, 'the upstream never got the injected request');
  const ok = await ask(proxy.port, get('/ok'));
  assert.equal(ok.status, 200, 'the proxy still serves');
});

test('a header value from a UTF-8 URI goes out as its UTF-8 bytes, as nginx sends it', async (t) => {
  const proxy = await startTestProxy(`
events {}
http { server { listen 127.0.0.1:0; location / { add_header X-Uri $uri; return 204; } } }`, { t });
  const res = await rawRequest(proxy.port, get('/caf%C3%A9/%E2%82%AC'));
  assert.equal(res.head?.statusCode, 204);
  assert.ok(res.data.includes(Buffer.from('X-Uri: /café/€\r\n', 'utf8')), res.data.toString('latin1'));
});

/** Makes ListenerRoutes.route (synchronous, every front end) or UpstreamPool.pick (inside the async attempt loop) throw once. */
function injectThrow(t: TestContext, where: 'route' | 'pick'): { arm(): void; readonly fired: number } {
  const proto = (where === 'route' ? ListenerRoutes.prototype : UpstreamPool.prototype) as unknown as Record<string, (...a: unknown[]) => unknown>;
  const original = proto[where]!;
  const state = { armed: false, fired: 0 };
  proto[where] = function injected(this: unknown, ...args: unknown[]): unknown {
    if (state.armed) {
      state.armed = false;
      state.fired++;
      throw new Error(`injected failure in ${where}`);
    }
    return original.apply(this, args);
  };
  t.after(() => {
    proto[where] = original;
  });
  return {
    arm: () => void (state.armed = true),
    get fired() {
      return state.fired;
    },
  };
}

/** The same proxy config over plain HTTP/1.1 and over TLS with HTTP/2. */
async function twoProxies(t: TestContext, backendAddr: string): Promise<{ plain: TestProxy; secure: TestProxy; ca: string }> {
  const certs = await testCerts();
  const locations = `location = /metrics { sluice_metrics; } location / { proxy_pass http://${backendAddr}; }`;
  const plain = await startTestProxy(`events {}\nhttp { server { listen 127.0.0.1:0; ${locations} } }`, { t });
  const secure = await startTestProxy(`
events {}
http {
  server {
    listen 127.0.0.1:0 ssl http2;
    server_name localhost;
    ssl_certificate ${certs.localhost.certFile};
    ssl_certificate_key ${certs.localhost.keyFile};
    ${locations}
  }
}`, { t });
  return { plain, secure, ca: certs.ca.cert };
}

for (const where of ['route', 'pick'] as const) {
  test(`an unexpected throw in ${where === 'route' ? 'routing (synchronous)' : 'the attempt loop (asynchronous)'} answers 500 on every front end, logs alert with the stack, counts it, and the proxy serves on`, async (t) => {
    const backend = await startHttpBackend();
    t.after(() => backend.close());
    const { plain, secure, ca } = await twoProxies(t, backend.addr);
    const plainPort = plain.port;
    const fault = injectThrow(t, where);
    const client = await h2Connect(secure.port, { ca, timeoutMs: 10_000 });
    t.after(() => client.close());

    fault.arm();
    const h1 = await ask(plainPort, get('/x'));
    assert.equal(h1.status, 500, 'HTTP/1.1 request');
    fault.arm();
    const upgrade = await ask(plainPort, wsHandshakeRequest({ path: '/ws', host: 'localhost' }));
    assert.equal(upgrade.status, 500, 'HTTP/1.1 upgrade');
    fault.arm();
    const h2 = await h2Request(client, { ':path': '/x' }, undefined, 10_000);
    assert.equal(h2.status, 500, 'HTTP/2 request');
    fault.arm();
    const ws = await h2WebSocket(client, '/ws', {}, 10_000);
    assert.equal(ws.headers[':status'], 500, 'HTTP/2 extended CONNECT');
    ws.stream.destroy();
    assert.equal(fault.fired, 4);

    for (const proxy of [plain, secure]) {
      const lines = proxy.errorLines;
      const alerts = lines.filter((l) => l.includes('[alert]') && l.includes('unexpected error while handling the request'));
      assert.equal(alerts.length, 2, lines.join('\n'));
      assert.ok(lines.some((l) => l.includes(`Error: injected failure in ${where}`)), 'the message is logged');
      assert.ok(lines.some((l) => /^\s+at /.test(l)), 'with its stack');
    }
    assert.equal(await metric(plain.port, 'sluice_internal_errors_total'), 2);
    assert.equal((await h2Request(client, { ':path': '/metrics' }, undefined, 10_000)).text.match(/^sluice_internal_errors_total (\d+)$/m)?.[1], '2');

    // Everyone else is served: each front end again, now without the fault.
    assert.equal((await ask(plainPort, get('/after'))).status, 200);
    assert.equal((await h2Request(client, { ':path': '/after' }, undefined, 10_000)).status, 200);
    const again = await h2WebSocket(client, '/ws', {}, 10_000);
    assert.equal(again.headers[':status'], 200);
    again.stream.destroy();
  });
}

test('the daemon survives an exception and a rejection outside any request: alert with the stack, counted, still serving', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const dir = tempDir(t);
  // Preloaded into the daemon: on SIGUSR2, throw from a timer and reject a promise nobody handles.
  const inject = dir.join('inject.mjs');
  writeFileSync(inject, [
    "process.on('SIGUSR2', () => {",
    "  setImmediate(() => { throw new Error('injected uncaught exception'); });",
    "  Promise.reject(new Error('injected unhandled rejection'));",
    '});',
  ].join('\n'));
  const conf = dir.join('sluice.conf');
  writeFileSync(conf, `events {}
http {
  server {
    listen 127.0.0.1:0;
    location = /metrics { sluice_metrics; }
    location / { proxy_pass http://${backend.addr}; }
  }
}`);
  const child = new CliProcess(t, ['-c', conf], ROOT, { NODE_OPTIONS: `--import=${pathToFileURL(inject).href}` });
  const port = await child.port();
  assert.equal((await httpGet(port, '/before')).status, 200);
  child.child.kill('SIGUSR2');
  await child.output('stderr', /\[alert\] \d+#0: uncaughtException outside any request, still serving: Error: injected uncaught exception/);
  await child.output('stderr', /\[alert\] \d+#0: unhandledRejection outside any request, still serving: Error: injected unhandled rejection/);
  assert.equal(child.done, false, 'the daemon is still running');
  assert.equal((await httpGet(port, '/after')).status, 200);
  const metrics = await waitFor(async () => {
    const m = await httpGet(port, '/metrics');
    const n = sampleValue(parsePrometheus(m.body), 'sluice_internal_errors_total');
    return n === 2 ? n : null;
  }, { what: 'sluice_internal_errors_total 2' });
  assert.equal(metrics, 2);
});

/**
 * Writes up to `total` bytes in 1 MiB chunks with backpressure and returns how many the peer took
 * before it stopped taking more for `quietMs` (or all of them).
 */
async function pushUntilStalled(socket: import('node:net').Socket, total: number, quietMs = 500): Promise<number> {
  const chunk = Buffer.alloc(1024 * 1024, 0x61);
  let written = 0;
  while (written < total) {
    const ok = socket.write(chunk);
    written += chunk.length;
    if (!ok) {
      const drained = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), quietMs);
        socket.once('drain', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!drained) return written - socket.writableLength;
    }
  }
  return written - socket.writableLength;
}

test('a request body on the upgrade path (an Upgrade token the config does not forward) is streamed with backpressure, not buffered', async (t) => {
  const MiB = 1024 * 1024;
  // An upstream that reads the head, then stops reading.
  const backend = await startRawBackend(async (conn) => {
    await conn.readUntil('\r\n\r\n');
    conn.socket.pause();
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(`
events {}
http { client_max_body_size 0; proxy_request_buffering off; server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } } }`, { t });
  const socket = await rawConnect(proxy.port);
  t.after(() => socket.destroy());
  const size = 200 * MiB;
  socket.write(`POST /upload HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: foo\r\nContent-Length: ${size}\r\n\r\n`);
  await backend.nextConnection();
  const taken = await pushUntilStalled(socket, size);
  // Kernel buffers on both hops hold a few MiB, the proxy a chunk or two beyond its high-water mark.
  assert.ok(taken < 32 * MiB, `the proxy took ${Math.round(taken / MiB)} MiB of a body its upstream does not read`);
});
