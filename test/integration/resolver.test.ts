/**
 * proxy_pass with variables and the run-time resolver: a DNS server on 127.0.0.1 (helpers/
 * dns-server.ts) whose answers the tests change, backends on other loopback addresses
 * (127.0.0.2, 127.0.0.3) at one port, `map` variables as the targets.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { ConfigError } from '../../src/index.js';
import { Opcode } from '../../src/websocket/opcodes.js';
import { startHttpBackend } from '../helpers/backends.js';
import { recorderFor } from '../helpers/byte-recorder.js';
import { testCerts } from '../helpers/certs.js';
import { h2Connect, h2WebSocket } from '../helpers/h2-client.js';
import { startDnsServer } from '../helpers/dns-server.js';
import type { DnsServer } from '../helpers/dns-server.js';
import { startTestProxy } from '../helpers/proxy.js';
import { maskedFrame, readFrame, sendRequest } from '../helpers/raw-client.js';
import { once, waitFor } from '../helpers/wait.js';

interface Site {
  readonly host: string;
  readonly port: number;
  /** The request lines seen ("GET /x", with the Host header). */
  readonly seen: string[];
  close(): Promise<void>;
}

/** An HTTP + WebSocket echo answering `id` on host:port (port 0: any). */
async function startSite(host: string, port: number, id: string): Promise<Site> {
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url} host=${req.headers.host}`);
    res.end(id);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => {
    ws.send(`hello from ${id}`);
    ws.on('message', (m) => ws.send(m.toString()));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const addr = server.address() as { port: number };
  return {
    host, port: addr.port, seen,
    close: () => new Promise<void>((resolve) => {
      for (const c of wss.clients) c.terminate();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

async function setup(t: { after(fn: () => unknown): void }): Promise<{ dns: DnsServer; a: Site; b: Site }> {
  const dns = await startDnsServer();
  t.after(() => dns.close());
  const a = await startSite('127.0.0.2', 0, 'a');
  t.after(() => a.close());
  const b = await startSite('127.0.0.3', a.port, 'b');
  t.after(() => b.close());
  return { dns, a, b };
}

function conf(http: string, main = ''): string {
  return `${main}\nevents {}\nhttp {\n${http}\n}\n`;
}

test('a host from a variable is resolved with the resolver at request time; a URI with variables replaces the request URI', async (t) => {
  const { dns, a } = await setup(t);
  dns.set('app.test', { a: ['127.0.0.2'], ttl: 60 });
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address} ipv6=off;
    map $host $upstream { default app.test:${a.port}; }
    server {
      listen 127.0.0.1:0;
      location /plain/ { proxy_pass http://$upstream; }
      location /uri/ { proxy_pass http://$upstream/fixed$is_args$args; }
    }`), { t });
  const r1 = await sendRequest(proxy.port, '/plain/x?y=1');
  assert.equal(r1.status, 200);
  assert.equal(r1.body, 'a');
  const r2 = await sendRequest(proxy.port, '/uri/anything?k=v');
  assert.equal(r2.body, 'a');
  assert.deepEqual(a.seen, [`GET /plain/x?y=1 host=app.test:${a.port}`, `GET /fixed?k=v host=app.test:${a.port}`]);
  // One query for both requests: the answer is cached for its TTL.
  assert.equal(dns.queries('app.test', 'A'), 1);
  assert.equal(dns.queries('app.test', 'AAAA'), 0, 'ipv6=off asks no AAAA');
});

test('the evaluated host matches an upstream group before any DNS query', async (t) => {
  const { dns } = await setup(t);
  const backend = await startHttpBackend(undefined, { id: 'group' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address};
    upstream backend { server ${backend.addr}; }
    map $host $target { default backend; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://$target$request_uri; }
    }`), { t });
  const r = await sendRequest(proxy.port, '/p?q=1');
  assert.equal(r.status, 200);
  assert.equal(backend.requests.at(-1)?.url, '/p?q=1');
  assert.equal(dns.queries('backend'), 0);
});

test('a name that does not resolve gives 502 and nginx\'s log line; the proxy starts without it', async (t) => {
  const { dns } = await setup(t);
  dns.set('servfail.test', 'servfail');
  dns.set('empty.test', 'empty');
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address};
    map $arg_to $upstream { default nx.test; sf servfail.test; e empty.test; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://$upstream; }
    }`), { t });
  const r = await sendRequest(proxy.port, '/');
  assert.equal(r.status, 502);
  await proxy.waitForErrorLine(/\[error\] .*nx\.test could not be resolved \(3: Host not found\), client: 127\.0\.0\.1, server: , request: "GET \/ HTTP\/1\.1"/);
  assert.equal((await sendRequest(proxy.port, '/?to=sf')).status, 502);
  await proxy.waitForErrorLine('servfail.test could not be resolved (2: Server failure)');
  assert.equal((await sendRequest(proxy.port, '/?to=e')).status, 502);
  await proxy.waitForErrorLine('empty.test could not be resolved (3: Host not found)');
  // Failures are not cached: the next request asks again.
  const before = dns.queries('nx.test', 'A');
  await sendRequest(proxy.port, '/');
  assert.equal(dns.queries('nx.test', 'A'), before + 1);
});

test('without a resolver a name gives 502 "no resolver defined to resolve"; an IP address needs none', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'ip' });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    map $arg_to $upstream { default app.test:80; ip ${backend.addr}; }
    server {
      listen 127.0.0.1:0;
      location / { proxy_pass http://$upstream; }
    }`), { t });
  assert.equal((await sendRequest(proxy.port, '/')).status, 502);
  await proxy.waitForErrorLine(/\[error\] .*no resolver defined to resolve app\.test, client: /);
  const r = await sendRequest(proxy.port, '/?to=ip');
  assert.equal(r.status, 200);
});

test('a name server that does not answer within resolver_timeout gives 502 (110: Operation timed out)', async (t) => {
  const { dns } = await setup(t);
  dns.set('slow.test', 'drop');
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address};
    resolver_timeout 200ms;
    map $host $upstream { default slow.test; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://$upstream; } }`), { t });
  assert.equal((await sendRequest(proxy.port, '/')).status, 502);
  await proxy.waitForErrorLine('slow.test could not be resolved (110: Operation timed out)');
});

test('an invalid URL from variables gives 500 with nginx\'s message', async (t) => {
  const proxy = await startTestProxy(conf(`
    map $host $upstream { default "ftp://x"; }
    server { listen 127.0.0.1:0; location / { proxy_pass $upstream; } }`), { t });
  assert.equal((await sendRequest(proxy.port, '/')).status, 500);
  await proxy.waitForErrorLine('invalid URL prefix in "ftp://x"');
});

test('the answer expires with valid=, requests go round the addresses, and a dead address is passed over', async (t) => {
  const { dns, a } = await setup(t);
  dns.set('app.test', { a: ['127.0.0.2'], ttl: 3600 });
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address} valid=1s ipv6=off;
    map $host $upstream { default app.test:${a.port}; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://$upstream; } }`), { t });
  assert.equal((await sendRequest(proxy.port, '/')).body, 'a');
  dns.set('app.test', { a: ['127.0.0.2', '127.0.0.3'], ttl: 3600 });
  // valid=1s overrides the hour-long TTL: a new query, then both addresses in turn.
  await waitFor(async () => (await sendRequest(proxy.port, '/')).body === 'b', { what: 'a request to the new address', intervalMs: 100 });
  assert.ok(dns.queries('app.test', 'A') >= 2);
  const bodies = new Set<string>();
  for (let i = 0; i < 4; i++) bodies.add((await sendRequest(proxy.port, '/')).body);
  assert.deepEqual([...bodies].sort(), ['a', 'b']);
  // 127.0.0.4 refuses: proxy_next_upstream error moves on to a live address.
  dns.set('app.test', { a: ['127.0.0.4', '127.0.0.3'], ttl: 3600 });
  await waitFor(async () => dns.queries('app.test', 'A') >= 3 || (await sendRequest(proxy.port, '/'), false), { what: 'a third query', intervalMs: 100 });
  for (let i = 0; i < 3; i++) {
    const r = await sendRequest(proxy.port, '/');
    assert.equal(r.status, 200);
    assert.equal(r.body, 'b');
  }
});

test('WebSocket upgrades go through a proxy_pass with variables', async (t) => {
  const { dns, a } = await setup(t);
  dns.set('ws.test', { a: ['127.0.0.2'] });
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address} ipv6=off;
    map $host $upstream { default ws.test:${a.port}; }
    server { listen 127.0.0.1:0; location /ws { proxy_pass http://$upstream; } }`), { t });
  const ws = new WebSocket(proxy.wsUrl('/ws'));
  const first = once(ws, 'message');
  await once(ws, 'open');
  assert.equal(String((await first)[0]), 'hello from a');
  const echo = once(ws, 'message');
  ws.send('ping');
  assert.equal(String((await echo)[0]), 'ping');
  ws.close();
  await once(ws, 'close');
});

test('server NAME resolve: peers follow the DNS answers, and a tunnel on a removed address lasts until websocket_drain_timeout', async (t) => {
  const { dns, a } = await setup(t);
  dns.set('app.test', { a: ['127.0.0.2'], ttl: 3600 });
  const proxy = await startTestProxy(conf(`
    resolver 127.0.0.1:1;
    websocket_drain_timeout 3s 0s;
    upstream app {
      zone app 64k;
      # The block's own resolver wins over http's (nginx 1.27.3).
      resolver ${dns.address} valid=1s ipv6=off;
      server app.test:${a.port} resolve;
    }
    server { listen 127.0.0.1:0; location / { proxy_pass http://app; } }`), { t });
  await waitFor(async () => (await sendRequest(proxy.port, '/')).body === 'a', { what: 'the first resolution', intervalMs: 50 });
  const ws = new WebSocket(proxy.wsUrl('/ws'));
  const hello = once(ws, 'message');
  await once(ws, 'open');
  assert.equal(String((await hello)[0]), 'hello from a');
  const closed = once(ws, 'close', 15_000);
  dns.set('app.test', { a: ['127.0.0.3'], ttl: 3600 });
  await waitFor(async () => (await sendRequest(proxy.port, '/')).body === 'b', { what: 'the new address', intervalMs: 100, timeoutMs: 10_000 });
  // The tunnel to 127.0.0.2 still works after its address left the group...
  assert.equal(ws.readyState, WebSocket.OPEN);
  const echo = once(ws, 'message');
  ws.send('still here');
  assert.equal(String((await echo)[0]), 'still here');
  // ...and goes away with 1001 once the drain timeout passed.
  const [code] = await closed;
  assert.equal(code, 1001);
  // A name that no longer exists empties the group: no live upstreams.
  dns.set('app.test', 'nxdomain');
  await waitFor(async () => (await sendRequest(proxy.port, '/')).status === 502, { what: 'an empty group', intervalMs: 100, timeoutMs: 10_000 });
  await proxy.waitForErrorLine('app.test could not be resolved (3: Host not found)');
});

test('WebSocket over HTTP/2 (extended CONNECT) goes through a proxy_pass whose scheme and host are variables', async (t) => {
  const { dns, a } = await setup(t);
  dns.set('ws.test', { a: ['127.0.0.2'] });
  const certs = await testCerts();
  // $scheme is "https" on this listener: the map gives the upstream's own scheme back.
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address} ipv6=off;
    map $scheme $up_scheme { default http; }
    map $host $upstream { default ws.test:${a.port}; }
    server {
      listen 127.0.0.1:0 ssl http2;
      server_name localhost;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
      location / { proxy_pass $up_scheme://$upstream; }
    }`), { t });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert });
  t.after(() => client.close());
  const { stream, headers } = await h2WebSocket(client, '/chat');
  assert.equal(headers[':status'], 200);
  const s = stream as unknown as Socket;
  recorderFor(s);
  const hello = await readFrame(s);
  assert.equal(hello.payload.toString(), 'hello from a');
  stream.write(maskedFrame(Opcode.TEXT, 'over h2'));
  assert.equal((await readFrame(s)).payload.toString(), 'over h2');
  stream.close();
});

test('$scheme://$upstream and "proxy_redirect default" with variables', async (t) => {
  const { dns, a } = await setup(t);
  dns.set('app.test', { a: ['127.0.0.2'] });
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address};
    map $host $upstream { default app.test:${a.port}; }
    server { listen 127.0.0.1:0; location / { proxy_pass $scheme://$upstream; } }`), { t });
  const r = await sendRequest(proxy.port, '/s');
  assert.equal(r.body, 'a');
  assert.deepEqual(await problems(conf(`
    map $host $upstream { default app.test; }
    server { listen 127.0.0.1:0; location / { proxy_pass http://$upstream; proxy_redirect default; } }`)),
  ['"proxy_redirect default" cannot be used with "proxy_pass" directive with variables']);
});

async function problems(text: string): Promise<string[]> {
  const err = await startTestProxy(text).then(async (p) => {
    await p.stop();
    return null;
  }, (e: unknown) => e);
  assert.ok(err instanceof ConfigError, String(err));
  return err.problems.map((p) => p.message);
}

test('config errors are nginx\'s', async () => {
  const listen = 'server { listen 127.0.0.1:0; location / { proxy_pass http://app; } }';
  assert.deepEqual(await problems(conf(`upstream app { server app.test:80 resolve; } resolver 127.0.0.1; ${listen}`)),
    ['resolving names at run time requires upstream "app" in <inline>:4 to be in shared memory']);
  assert.deepEqual(await problems(conf(`upstream app { zone app 64k; server app.test:80 resolve; } ${listen}`)),
    ['no resolver defined to resolve names at run time in upstream "app" in <inline>:4']);
  const plain = 'server { listen 127.0.0.1:0; return 200; }';
  assert.deepEqual(await problems(conf(`resolver 127.0.0.1 valid=x; ${plain}`)), ['invalid parameter: valid=x']);
  assert.deepEqual(await problems(conf(`resolver 127.0.0.1 ipv6=maybe; ${plain}`)), ['invalid parameter: ipv6=maybe']);
  assert.deepEqual(await problems(conf(`resolver 127.0.0.1 ipv4=off ipv6=off; ${plain}`)), ['"ipv4" and "ipv6" cannot both be "off"']);
  assert.deepEqual(await problems(conf(`resolver 127.0.0.1:99999; ${plain}`)), ['invalid port in resolver "127.0.0.1:99999"']);
  assert.deepEqual(await problems(conf(`resolver valid=10s; ${plain}`)), ['no name servers defined']);
  assert.deepEqual(await problems(conf(`resolver_timeout x; ${plain}`)), ['"resolver_timeout" directive invalid value']);
});

test('the Docker pattern: set $upstream NAME:PORT; proxy_pass http://$upstream; loads while NAME does not resolve, then follows it', async (t) => {
  const { dns, a, b } = await setup(t);
  const proxy = await startTestProxy(conf(`
    resolver ${dns.address} valid=1s ipv6=off;
    server {
      listen 127.0.0.1:0;
      location / {
        set $upstream app.test:${a.port};
        proxy_pass http://$upstream;
      }
    }`), { t });
  // The container is not up yet: nginx's 502 and log line, and the proxy keeps running.
  assert.equal((await sendRequest(proxy.port, '/early')).status, 502);
  await proxy.waitForErrorLine(/app\.test could not be resolved \(3: Host not found\)/);
  dns.set('app.test', { a: ['127.0.0.2'], ttl: 1 });
  const up = await sendRequest(proxy.port, '/x');
  assert.equal(up.body, 'a');
  assert.ok(a.seen.includes(`GET /x host=app.test:${a.port}`), a.seen.join('\n'));
  // The container moves: once the answer expires, requests follow the new address.
  dns.set('app.test', { a: ['127.0.0.3'], ttl: 1 });
  await waitFor(async () => (await sendRequest(proxy.port, '/moved')).body === 'b', { timeoutMs: 10_000, what: 'the new address after the TTL' });
  assert.ok(b.seen.some((l) => l.startsWith('GET /moved')));
});
