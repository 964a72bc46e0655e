/**
 * Response buffering (issue 14): proxy_buffering on (nginx's default) reads the upstream response
 * into proxy_buffers and then temp files under proxy_temp_path, so a slow client no longer holds
 * the upstream; proxy_max_temp_file_size 0 allows no file; the upstream's X-Accel-Buffering turns
 * buffering on or off per response unless proxy_ignore_headers names it. The slow client is
 * limit_rate's pacing, which holds the client side back by rule (nginx's limit_rate), not by luck.
 * The node-client pass reruns this file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import { startHttpBackend } from '../helpers/backends.js';
import { conf } from '../helpers/config-text.js';
import { startTestProxy } from '../helpers/proxy.js';
import { completeResponse } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { withTimeout } from '../helpers/wait.js';

const BODY = randomBytes(200 * 1024);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A backend sending BODY in 16 KiB writes; `?accel=` becomes its X-Accel-Buffering. Records, per path, how much the client had when the backend was done. */
async function bodyBackend(t: import('node:test').TestContext, clientHas: () => number) {
  const doneAt = new Map<string, number>();
  const backend = await startHttpBackend((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const accel = url.searchParams.get('accel');
    res.writeHead(200, { 'Content-Length': String(BODY.length), ...(accel === null ? {} : { 'X-Accel-Buffering': accel }) });
    let at = 0;
    const pump = (): void => {
      while (at < BODY.length) {
        const part = BODY.subarray(at, at + 16 * 1024);
        at += part.length;
        if (!res.write(part)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    res.once('finish', () => doneAt.set(url.pathname, clientHas()));
    pump();
  });
  t.after(() => backend.close());
  return { backend, doneAt };
}

/** GET `path` on a new connection; resolves with the response once the proxy closes it. `received` counts as bytes come. */
function fetchAll(port: number, path: string, counter: { received: number }): Promise<Buffer> {
  return withTimeout(new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(port, '127.0.0.1', () => s.write(`GET ${path} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`));
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      counter.received += c.length;
    });
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  }), 20_000, `GET ${path}`);
}

function bodyOf(raw: Buffer): Buffer {
  const r = completeResponse(raw);
  assert.ok(r, `a complete response: ${raw.subarray(0, 200).toString('latin1')}`);
  assert.equal(r.head.statusCode, 200);
  return r.body;
}

/** Files under `dir` (recursive), or null when the directory was never made. */
function tempFiles(dir: string): string[] | null {
  if (!existsSync(dir)) return null;
  return (readdirSync(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name);
}

test('proxy_buffering on: the upstream is read whole (memory, then a temp file) while the client is still slow; the file is gone after', async (t) => {
  const dir = tempDir(t);
  const counter = { received: 0 };
  const { backend, doneAt } = await bodyBackend(t, () => counter.received);
  const proxy = await startTestProxy(conf(`
    proxy_temp_path ${dir.join('proxy')} 1 2;
    server { listen 127.0.0.1:0; limit_rate 64k; location / { proxy_pass http://${backend.addr}; } }`), { t });
  const raw = await fetchAll(proxy.port, '/slow', counter);
  assert.equal(sha(bodyOf(raw)), sha(BODY));
  // The backend was done long before the client had it all (limit_rate sends 64k a second).
  assert.ok(doneAt.get('/slow')! < BODY.length, `the backend finished when the client had ${doneAt.get('/slow')} bytes`);
  assert.deepEqual(tempFiles(dir.join('proxy')), [], 'a temp directory was used, and no file is left');
  assert.equal(backend.openSockets(), 0);
});

test('X-Accel-Buffering no/yes switches buffering per response unless proxy_ignore_headers names it; proxy_max_temp_file_size 0 writes no file', async (t) => {
  const dir = tempDir(t);
  const { backend, doneAt } = await bodyBackend(t, () => 0);
  const proxy = await startTestProxy(conf(`
    server {
      listen 127.0.0.1:0;
      limit_rate 64k;
      location /no { proxy_pass http://${backend.addr}; proxy_temp_path ${dir.join('no')}; }
      location /yes { proxy_pass http://${backend.addr}; proxy_buffering off; proxy_temp_path ${dir.join('yes')}; }
      location /ignored { proxy_pass http://${backend.addr}; proxy_buffering off; proxy_ignore_headers X-Accel-Buffering; proxy_temp_path ${dir.join('ignored')}; }
      location /nofile { proxy_pass http://${backend.addr}; proxy_max_temp_file_size 0; proxy_temp_path ${dir.join('nofile')}; }
    }`), { t });
  const cases: [path: string, buffered: boolean][] = [['/no?accel=no', false], ['/yes?accel=yes', true], ['/ignored?accel=yes', false], ['/nofile', false]];
  await Promise.all(cases.map(async ([path]) => {
    const raw = await fetchAll(proxy.port, path, { received: 0 });
    assert.equal(sha(bodyOf(raw)), sha(BODY), path);
  }));
  for (const [path, buffered] of cases) {
    const name = path.split('?')[0]!;
    const files = tempFiles(dir.join(name.slice(1)));
    if (buffered) assert.deepEqual(files, [], `${path}: a temp file was used (and removed)`);
    else assert.equal(files, null, `${path}: no temp file`);
    assert.ok(doneAt.has(name), `${path} done`);
  }
});

test('proxy_buffering on: a body that fits proxy_buffers is read whole into memory while the client reads nothing; no temp file', async (t) => {
  // 16 MiB: more than the kernel's socket buffers take on loopback (a client that does not read
  // keeps its receive window small), less than proxy_buffers' 32 MiB. Unbuffered, the backend
  // could not finish before the client reads.
  const big = randomBytes(16 * 1024 * 1024);
  const dir = tempDir(t);
  let finished: () => void = () => undefined;
  const backendDone = new Promise<void>((r) => { finished = r; });
  const backend = await startHttpBackend((_req, res) => {
    res.writeHead(200, { 'Content-Length': String(big.length) });
    res.once('finish', () => finished());
    res.end(big);
  });
  t.after(() => backend.close());
  const proxy = await startTestProxy(conf(`
    server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; proxy_buffers 512 64k; proxy_temp_path ${dir.join('proxy')}; } }`), { t });
  const chunks: Buffer[] = [];
  const s = connect(proxy.port, '127.0.0.1', () => s.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
  t.after(() => s.destroy());
  s.pause();
  await withTimeout(backendDone, 20_000, 'the backend finishing while the client reads nothing');
  const all = withTimeout(new Promise<Buffer>((resolve, reject) => {
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks)));
  }), 20_000, 'the whole response');
  s.resume();
  assert.equal(sha(bodyOf(await all)), sha(big));
  assert.equal(tempFiles(dir.join('proxy')), null, 'no temp file: it fit in memory');
});
