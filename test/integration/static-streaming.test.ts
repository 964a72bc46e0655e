/**
 * Static bodies stream: a 2 GiB (sparse) file goes through with the process's memory bounded, a
 * client that does not read holds the file reading back (only a few chunks are read ahead) and
 * is dropped after send_timeout; a client that leaves closes the file. The same files over
 * HTTP/2, and on the raw socket of a request that came with an Upgrade header.
 */
import assert from 'node:assert/strict';
import { closeSync, ftruncateSync, openSync, readdirSync, readlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { test } from 'node:test';
import { testCerts } from '../helpers/certs.js';
import { conf } from '../helpers/config-text.js';
import { h2Connect, h2Request } from '../helpers/h2-client.js';
import { startTestProxy } from '../helpers/proxy.js';
import { rawConnect, readUntil, waitForClose } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { once, waitFor, withTimeout } from '../helpers/wait.js';
import { accessLines } from './static-support.js';

const GIB = 1024 * 1024 * 1024;

/** A sparse file of `size` bytes (zeros, no disk blocks). */
function sparse(path: string, size: number): void {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

test('a 2 GiB file streams through with memory bounded: the whole body arrives and RSS stays far below the file size', async (t) => {
  const dir = tempDir(t);
  dir.write('html/.keep', '');
  sparse(dir.join('html/big.bin'), 2 * GIB);
  const proxy = await startTestProxy(conf('server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  // A bare socket: the raw-client helpers record every byte, which here would be the 2 GiB.
  const socket = connect(proxy.port, '127.0.0.1');
  socket.on('error', () => undefined);
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => void (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  t.after(() => clearInterval(sampler));
  let received = 0;
  let headEnd = -1;
  let pending = Buffer.alloc(0);
  const done = new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      if (headEnd === -1) {
        pending = Buffer.concat([pending, chunk]);
        headEnd = pending.indexOf('\r\n\r\n');
        if (headEnd === -1) return;
        const head = pending.subarray(0, headEnd).toString('latin1');
        if (!/^HTTP\/1\.1 200 /.test(head) || !/\r\nContent-Length: 2147483648\r\n/i.test(head)) reject(new Error(`unexpected head: ${head}`));
        received = pending.length - headEnd - 4;
        pending = Buffer.alloc(0);
      } else {
        received += chunk.length;
      }
      if (received >= 2 * GIB) resolve();
    });
    socket.once('close', () => (received >= 2 * GIB ? resolve() : reject(new Error(`closed after ${received} bytes`))));
  });
  socket.write('GET /big.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  await withTimeout(done, 180_000, 'the 2 GiB body');
  clearInterval(sampler);
  assert.equal(received, 2 * GIB);
  const grown = peak - before;
  assert.ok(grown < 256 * 1024 * 1024, `RSS grew by ${Math.round(grown / 1048576)} MiB while 2048 MiB went through`);
});

test('a client that does not read holds the file back (a few chunks read ahead), is dropped after send_timeout, and the file is closed', async (t) => {
  const dir = tempDir(t);
  dir.write('html/.keep', '');
  const big = dir.join('html/big.bin');
  sparse(big, GIB);
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`
    log_format sent '$status $body_bytes_sent';
    server { listen 127.0.0.1:0; send_timeout 1s; access_log ${log} sent; }`, 'error_log stderr info;'), { t, prefix: dir.path });
  const socket = connect(proxy.port, '127.0.0.1');
  socket.on('error', () => undefined);
  t.after(() => socket.destroy());
  await once(socket, 'connect');
  let received = 0;
  let draining = false;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    // Read the first chunk only: the proxy may fill the socket buffers, then must stop reading the file.
    if (!draining) socket.pause();
  });
  socket.write('GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await waitFor(() => received > 0, { what: 'the first bytes' });
  assert.ok(openFilesNamed(big) <= 1, 'one descriptor for the file being served');
  assert.match(await proxy.waitForErrorLine('client timed out', 10_000), /\[info\] .*client timed out \(110: Connection timed out\) while sending to client, client: 127\.0\.0\.1/);
  const lines = await waitFor(() => (accessLines(log).length > 0 ? accessLines(log) : null), { what: 'the access log line' });
  const [status, sent] = lines[0]!.split(' ');
  assert.equal(status, '200');
  assert.ok(Number(sent) < 64 * 1024 * 1024, `${sent} bytes were read from the file for a client that read almost nothing`);
  assert.equal(openFilesNamed(big), 0, 'the file is closed');
  // The connection was closed: reading again drains what the kernel holds, then the end (short of the body).
  const closed = once(socket, 'close', 10_000);
  draining = true;
  socket.resume();
  await closed;
  assert.ok(received < GIB, `${received} bytes of ${GIB} arrived before the close`);
});

/** How many descriptors this process has open on `path` (Linux /proc; 0 where there is none). */
function openFilesNamed(path: string): number {
  let n = 0;
  try {
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`) === path) n++;
      } catch {
        // Closed meanwhile.
      }
    }
  } catch {
    return 0;
  }
  return n;
}

test('a client that leaves mid-body: the response is logged with what was sent, and the proxy serves on', async (t) => {
  const dir = tempDir(t);
  dir.write('html/small.txt', 'still here');
  sparse(dir.join('html/big.bin'), 256 * 1024 * 1024);
  const log = dir.join('access.log');
  const proxy = await startTestProxy(conf(`
    log_format sent '$request_uri $status $body_bytes_sent';
    server { listen 127.0.0.1:0; access_log ${log} sent; }`), { t, prefix: dir.path });
  const socket = await rawConnect(proxy.port);
  socket.write('GET /big.bin HTTP/1.1\r\nHost: localhost\r\n\r\n');
  await readUntil(socket, '\r\n\r\n');
  socket.destroy();
  const line = await waitFor(() => accessLines(log).find((l) => l.startsWith('/big.bin')) ?? null, { what: 'the access log line' });
  const sent = Number(line.split(' ')[2]);
  assert.ok(sent < 256 * 1024 * 1024, `body_bytes_sent ${sent} is what went out before the client left`);
  const again = await rawConnect(proxy.port);
  t.after(() => again.destroy());
  again.write('GET /small.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n');
  assert.match((await readUntil(again, 'still here')).toString(), /^HTTP\/1\.1 200 OK/);
});

test('over HTTP/2: files, HEAD, 304, ranges and 404 as over HTTP/1.1', async (t) => {
  const dir = tempDir(t);
  dir.write('html/h.txt', 'over h2\n');
  const certs = await testCerts();
  const proxy = await startTestProxy(conf(`
    types { text/plain txt; }
    server {
      listen 127.0.0.1:0 ssl http2;
      server_name localhost;
      ssl_certificate ${certs.localhost.certFile};
      ssl_certificate_key ${certs.localhost.keyFile};
    }`), { t, prefix: dir.path });
  const client = await h2Connect(proxy.port, { ca: certs.ca.cert });
  t.after(() => client.close());
  const ok = await h2Request(client, { ':path': '/h.txt' });
  assert.equal(ok.status, 200);
  assert.equal(ok.text, 'over h2\n');
  assert.equal(ok.headers['content-type'], 'text/plain');
  assert.equal(ok.headers['content-length'], '8');
  const etag = ok.headers['etag'] as string;
  assert.ok(etag);
  const head = await h2Request(client, { ':path': '/h.txt', ':method': 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body.length, 0);
  assert.equal((await h2Request(client, { ':path': '/h.txt', 'if-none-match': etag })).status, 304);
  const part = await h2Request(client, { ':path': '/h.txt', range: 'bytes=5-6' });
  assert.equal(part.status, 206);
  assert.equal(part.text, 'h2');
  assert.equal(part.headers['content-range'], 'bytes 5-6/8');
  assert.equal((await h2Request(client, { ':path': '/missing' })).status, 404);
});

test('a request with an Upgrade header to a file is served as nginx serves any GET, and the connection closes', async (t) => {
  const dir = tempDir(t);
  dir.write('html/page.html', '<p>hi</p>');
  const proxy = await startTestProxy(conf('server { listen 127.0.0.1:0; }'), { t, prefix: dir.path });
  const socket = await rawConnect(proxy.port);
  t.after(() => socket.destroy());
  socket.write('GET /page.html HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
  const got = (await readUntil(socket, '<p>hi</p>')).toString();
  assert.match(got, /^HTTP\/1\.1 200 OK\r\n/);
  assert.match(got, /\r\nContent-Length: 9\r\n/);
  assert.match(got, /\r\nConnection: close\r\n/);
  await waitForClose(socket);
});
