/**
 * The proxy cache across processes (issue 19): entries are files, so a new Sluice process finds
 * what the last one stored (the loader indexes them at start), and with worker_processes 2 a
 * response one worker stored is a HIT in the other. Real child processes of the CLI.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { CHILD_MS, CliProcess, httpGetWithHeaders } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

async function countingBackend(t: import('node:test').TestContext) {
  let hits = 0;
  const backend = await startHttpBackend((_req, res) => {
    hits++;
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end('cached body');
  });
  t.after(() => backend.close());
  return { port: backend.port, hits: () => hits };
}

function config(dir: ReturnType<typeof tempDir>, backendPort: number, main = ''): string {
  return dir.write('sluice.conf', `${main}
pid ${dir.join('sluice.pid')};
events {}
http {
  proxy_cache_path ${dir.join('cache')} levels=1:2 keys_zone=shared:1m inactive=1h;
  server {
    listen 127.0.0.1:0;
    location / {
      proxy_pass http://127.0.0.1:${backendPort};
      proxy_cache shared;
      proxy_cache_valid 200 1h;
      add_header X-Cache-Status $upstream_cache_status always;
      add_header X-Pid $pid always;
    }
  }
}
`);
}

test('a cache survives a restart: the new process answers HIT from the entry the old one wrote', async (t) => {
  const b = await countingBackend(t);
  const dir = tempDir(t);
  const conf = config(dir, b.port);
  const first = new CliProcess(t, ['-c', conf], dir.path);
  const port1 = await first.port();
  const miss = await httpGetWithHeaders(port1, '/page');
  assert.equal(miss.headers['x-cache-status'], 'MISS');
  await first.stop('SIGTERM');

  const second = new CliProcess(t, ['-c', conf], dir.path);
  const port2 = await second.port();
  const hit = await httpGetWithHeaders(port2, '/page');
  assert.equal(hit.headers['x-cache-status'], 'HIT');
  assert.equal(hit.body, 'cached body');
  assert.equal(b.hits(), 1);
});

test('worker_processes 2: what one worker stored is a HIT in the other', async (t) => {
  const b = await countingBackend(t);
  const dir = tempDir(t);
  const conf = config(dir, b.port, 'worker_processes 2;');
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const started = await proxy.output('stderr', /listening on 127\.0\.0\.1:(\d+)/);
  const port = Number(started[1]);
  const miss = await httpGetWithHeaders(port, '/shared');
  assert.equal(miss.headers['x-cache-status'], 'MISS');
  const storedBy = miss.headers['x-pid'];
  // New connections until the other worker answers (the workers race for them).
  const other = await waitFor(async () => {
    const r = await httpGetWithHeaders(port, '/shared');
    return r.headers['x-pid'] !== storedBy ? r : null;
  }, { timeoutMs: CHILD_MS });
  assert.equal(other.headers['x-cache-status'], 'HIT');
  assert.equal(other.body, 'cached body');
  assert.equal(b.hits(), 1);
});
