/**
 * The guardrails of a forward_proxy server: its limit_conn (a CONNECT tunnel holds its count for
 * its whole life; the refused one gets 503 and nothing connects to the destination), limit_req
 * (CONNECTs and absolute-form requests counted in one bucket, burst/nodelay/delay as for any
 * request; a client that leaves while delayed ends with 499), client_max_body_size (413 before
 * anything connects for a declared body, while streaming for a chunked one) and client_body_timeout
 * for absolute-form request bodies. Rates are 1r/m so that nothing leaks during a test; no timing
 * is asserted.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { startHttpBackend, startRawBackend, type RawConnection } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { fileLines, waitForFileLine } from '../helpers/log-files.js';
import { errorPage } from '../helpers/pages.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawConnect, rawRequest, parseResponseHead, readToEnd, readUntil, waitForClose } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

/** A CONNECT on a new connection: its status, and the connection (left open on 200). */
async function connect(port: number, authority: string): Promise<{ status: number; socket: Socket; body: string }> {
  const socket = await rawConnect(port);
  socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  const data = await readUntil(socket, '\r\n\r\n');
  const head = parseResponseHead(data);
  if (head.statusCode === 200) return { status: 200, socket, body: '' };
  // A refusal ends the connection (Connection: close).
  const all = Buffer.concat([data, await readToEnd(socket)]).toString('latin1');
  socket.destroy();
  return { status: head.statusCode, socket, body: all.slice(all.indexOf('\r\n\r\n') + 4) };
}

/** A destination that echoes and ends its side when the client does. */
function echo(c: RawConnection): void {
  c.socket.on('data', (d: Buffer) => c.socket.write(d));
  c.socket.once('end', () => c.socket.end());
}

function proxyGet(port: number, url: string): ReturnType<typeof rawRequest> {
  return rawRequest(port, `GET ${url} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
}

for (const relay of ['native', 'typescript'] as const) {
  test(`forward_proxy limit_conn perip 3: the 4th CONNECT from one address gets 503, nothing connects; a closed tunnel frees its place (${relay} relay)`, async (t) => {
    const backend = await startRawBackend(echo);
    t.after(() => backend.close());
    const log = tempDir(t).join('access.log');
    const proxy = await startTestProxy(conf(`
      limit_conn_zone $binary_remote_addr zone=perip:1m;
      log_format limits '$request $status $limit_conn_status';
      server {
        listen 127.0.0.1:0;
        ${relay === 'typescript' ? 'native_tunnels off;' : ''}
        forward_proxy on;
        forward_proxy_allow 127.0.0.1:${backend.port};
        limit_conn perip 3;
        access_log ${log} limits;
      }`), { t });
    const target = `127.0.0.1:${backend.port}`;
    const open: Socket[] = [];
    t.after(() => { for (const s of open) s.destroy(); });
    for (let i = 0; i < 3; i++) {
      const c = await connect(proxy.port, target);
      assert.equal(c.status, 200, `tunnel ${i + 1}`);
      open.push(c.socket);
    }
    // The tunnels carry bytes (each one is a connection at the destination).
    open[0]!.write('ping');
    assert.equal((await readUntil(open[0]!, 'ping')).toString(), 'ping');
    assert.equal(backend.connections.length, 3);

    const refused = await connect(proxy.port, target);
    assert.equal(refused.status, 503);
    assert.equal(refused.body, errorPage('503 Service Temporarily Unavailable'));
    await proxy.waitForErrorLine(new RegExp(`\\[error\\] \\d+#0: \\*\\d+ limiting connections by zone "perip", client: 127\\.0\\.0\\.1, server: , request: "CONNECT 127\\.0\\.0\\.1:${backend.port} HTTP/1\\.1", host: "127\\.0\\.0\\.1:${backend.port}"$`));
    // An absolute-form request counts in the same zone.
    assert.equal((await proxyGet(proxy.port, `http://${target}/`)).head?.statusCode, 503);
    assert.equal(backend.connections.length, 3, 'nothing connected for the refused requests');
    await waitForFileLine(log, `CONNECT ${target} HTTP/1.1 503 REJECTED`);

    // A tunnel that ends gives its place back (and is logged as it ends).
    open.shift()!.destroy();
    await waitForFileLine(log, `CONNECT ${target} HTTP/1.1 200 PASSED`);
    await waitFor(async () => {
      const again = await connect(proxy.port, target);
      if (again.status === 200) open.push(again.socket);
      return again.status === 200;
    }, { what: 'a tunnel after one closed' });
    assert.equal(backend.connections.length, 4);
  });
}

test('forward_proxy limit_conn from http {}: limit_conn_status applies, an absolute-form request holds its count only while it runs', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    limit_conn_zone $binary_remote_addr zone=perip:1m;
    limit_conn perip 1;
    limit_conn_status 429;
    server { listen 127.0.0.1:0; forward_proxy on; forward_proxy_allow 127.0.0.1:${backend.port}; }`), { t });
  const target = `127.0.0.1:${backend.port}`;
  for (let i = 0; i < 3; i++) assert.equal((await proxyGet(proxy.port, `http://${target}/get${i}`)).head?.statusCode, 200);
  const tunnel = await connect(proxy.port, target);
  t.after(() => tunnel.socket.destroy());
  assert.equal(tunnel.status, 200);
  const before = backend.requests.length;
  assert.equal((await proxyGet(proxy.port, `http://${target}/refused`)).head?.statusCode, 429);
  assert.equal((await connect(proxy.port, target)).status, 429);
  assert.equal(backend.requests.length, before);
});

test('forward_proxy limit_req burst=2 nodelay counts CONNECTs and absolute-form requests in one bucket; limit_req_status', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    server {
      listen 127.0.0.1:0;
      forward_proxy on;
      forward_proxy_allow 127.0.0.1:${backend.port};
      limit_req zone=one burst=2 nodelay;
      limit_req_status 429;
    }`), { t });
  const target = `127.0.0.1:${backend.port}`;
  const tunnels: Socket[] = [];
  t.after(() => { for (const s of tunnels) s.destroy(); });
  const first = await connect(proxy.port, target);
  tunnels.push(first.socket);
  assert.equal(first.status, 200);
  assert.equal((await proxyGet(proxy.port, `http://${target}/a`)).head?.statusCode, 200);
  const third = await connect(proxy.port, target);
  tunnels.push(third.socket);
  assert.equal(third.status, 200);
  // The burst is spent: both kinds are refused, before anything connects.
  const before = backend.requests.length;
  const refused = await connect(proxy.port, target);
  assert.equal(refused.status, 429);
  assert.equal(refused.body, errorPage('429 Too Many Requests'));
  assert.equal((await proxyGet(proxy.port, `http://${target}/b`)).head?.statusCode, 429);
  assert.equal(backend.requests.length, before);
  await proxy.waitForErrorLine(new RegExp(`\\[error\\] .*limiting requests, excess: [23]\\.\\d{3} by zone "one", client: 127\\.0\\.0\\.1, server: , request: "CONNECT 127\\.0\\.0\\.1:${backend.port} HTTP/1\\.1"`));
});

test('forward_proxy limit_req delay=1: the excess over it is delayed; a client that leaves while delayed ends with 499 and nothing connects', async (t) => {
  const backend = await startRawBackend(echo);
  t.after(() => backend.close());
  const log = tempDir(t).join('access.log');
  const proxy = await startTestProxy(conf(`
    limit_req_zone $binary_remote_addr zone=one:1m rate=1r/m;
    log_format limits '$request $status $limit_req_status';
    server {
      listen 127.0.0.1:0;
      forward_proxy on;
      forward_proxy_allow 127.0.0.1:${backend.port};
      limit_req zone=one burst=3 delay=1;
      access_log ${log} limits;
    }`, 'error_log stderr info;'), { t });
  const target = `127.0.0.1:${backend.port}`;
  for (let i = 0; i < 2; i++) {
    const c = await connect(proxy.port, target);
    assert.equal(c.status, 200);
    c.socket.destroy();
  }
  await waitFor(() => fileLines(log).length === 2, { what: 'two tunnels logged' });
  // The third is over delay=1: delayed (a minute at 1r/m); its client gives up.
  const s = await rawConnect(proxy.port);
  s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  await proxy.waitForErrorLine(new RegExp(`\\[warn\\] .*delaying request, excess: \\d\\.\\d{3}, by zone "one", client: 127\\.0\\.0\\.1, server: , request: "CONNECT 127\\.0\\.0\\.1:${backend.port} HTTP/1\\.1"`));
  s.destroy();
  await waitForFileLine(log, `CONNECT ${target} HTTP/1.1 499 DELAYED`);
  assert.equal(backend.connections.length, 2);
  assert.deepEqual(fileLines(log), [`CONNECT ${target} HTTP/1.1 200 PASSED`, `CONNECT ${target} HTTP/1.1 200 PASSED`, `CONNECT ${target} HTTP/1.1 499 DELAYED`]);
});

test('forward_proxy client_max_body_size: 413 for a declared body over it before anything connects, and for a chunked one as it streams', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      forward_proxy on;
      forward_proxy_allow 127.0.0.1:${backend.port};
      client_max_body_size 10;
    }`), { t });
  const url = `http://127.0.0.1:${backend.port}/upload`;
  const small = await rawRequest(proxy.port, `POST ${url} HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello`);
  assert.equal(small.head?.statusCode, 200);
  assert.equal(backend.requests.at(-1)?.body, 'hello');
  const before = backend.requests.length;

  // Declared over the limit: refused at once (a client waiting for 100 Continue gets the 413).
  const large = await rawRequest(proxy.port, `POST ${url} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n`);
  assert.equal(large.head?.statusCode, 413);
  assert.equal(large.body.toString(), errorPage('413 Request Entity Too Large'));
  await proxy.waitForErrorLine(/\[error\] .*client intended to send too large body: 100 bytes, client: 127\.0\.0\.1, server: , request: "POST http:\/\/127\.0\.0\.1:\d+\/upload HTTP\/1\.1"/);

  // Chunked: counted as it streams, refused when it passes the limit.
  const chunked = await rawRequest(proxy.port, `POST ${url} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n${'x'.repeat(20)}\r\n0\r\n\r\n`);
  assert.equal(chunked.head?.statusCode, 413);
  await proxy.waitForErrorLine(/\[error\] .*client intended to send too large chunked body: \d+\+\d+ bytes, client: 127\.0\.0\.1/);
  assert.equal(backend.requests.length, before, 'no oversized body reached the destination');
});

test('forward_proxy client_body_timeout: an absolute-form body that stalls closes the connection, 408 in the access log', async (t) => {
  const backend = await startHttpBackend();
  t.after(() => backend.close());
  const log = tempDir(t).join('access.log');
  const proxy = await startTestProxy(conf(`
    log_format st '$request $status';
    server {
      listen 127.0.0.1:0;
      forward_proxy on;
      forward_proxy_allow 127.0.0.1:${backend.port};
      client_body_timeout 200ms;
      access_log ${log} st;
    }`), { t });
  const url = `http://127.0.0.1:${backend.port}/slow`;
  const s = await rawConnect(proxy.port);
  t.after(() => s.destroy());
  s.write(`POST ${url} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc`);
  await waitForClose(s);
  await waitForFileLine(log, `POST ${url} HTTP/1.1 408`);
  assert.equal(backend.requests.filter((r) => r.url === '/slow' && r.body === 'abc'.padEnd(10)).length, 0);
});
