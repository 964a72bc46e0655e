/**
 * The C handshake experiment (bench/experiments/c-handshake; docs/benchmarks.md, "The handshake in
 * C: a prototype measured") builds and does what the benchmark's `sluice-c-handshake` targets are
 * measured doing: a WebSocket handshake answered 101, messages relayed both ways, the backends
 * taken in turn, the end of each tunnel reported to JavaScript, anything else 400, an unreachable
 * upstream 502. An end-to-end test (`npm run test:e2e`): it needs node-gyp and a C compiler, as
 * `npm ci`'s native build does; the experiment is Linux-only.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { startHttpBackend } from '../helpers/backends.js';
import { ROOT } from '../helpers/cli-process.js';
import { refusedPort } from '../helpers/ports.js';
import { trackGroup } from '../helpers/process-groups.js';
import { SAMPLE_ACCEPT, headerValue, maskedFrame, rawRequest, rawWebSocket, readFrame, waitForClose } from '../helpers/raw-client.js';
import { waitFor, withTimeout } from '../helpers/wait.js';
import type { AfterHook } from '../helpers/temp.js';

const DIR = join(ROOT, 'bench/experiments/c-handshake');

/** The experiment's proxy in its own process group, killed by `t.after`; its port and its stderr. */
async function startExperiment(t: AfterHook, route: 'js' | 'c', backends: readonly number[]): Promise<{ port: number; stderr: () => string; stats: () => Promise<Record<string, number>> }> {
  const args = [join(DIR, 'server.mjs'), '--route', route, ...backends.flatMap((p) => ['--backend', `127.0.0.1:${p}`])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  trackGroup(child);
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
  const exited = new Promise((resolve) => child.once('close', resolve));
  t.after(async () => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // gone
    }
    await withTimeout(exited, 10_000, 'the experiment to exit');
  });
  const m = await waitFor(() => /listening on 127\.0\.0\.1:(\d+)/.exec(stderr), { timeoutMs: 20_000, what: `the experiment to listen (stderr: ${stderr})` });
  let asked = 0;
  const stats = async (): Promise<Record<string, number>> => {
    const n = ++asked;
    process.kill(child.pid!, 'SIGUSR2');
    const lines = await waitFor(() => {
      const all = [...stderr.matchAll(/^c-handshake: (\{.*\})$/gm)];
      return all.length >= n ? all : null;
    }, { what: 'the stats line' });
    return JSON.parse(lines[n - 1]![1]!) as Record<string, number>;
  };
  return { port: Number(m[1]), stderr: () => stderr, stats };
}

test('the C handshake experiment', { timeout: 240_000 }, async (t) => {
  const built = spawnSync(process.execPath, [join(DIR, 'build.mjs')], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(built.status, 0, `node bench/experiments/c-handshake/build.mjs failed:\n${built.stderr}`);

  for (const route of ['js', 'c'] as const) {
    await t.test(`route in ${route === 'js' ? 'JavaScript' : 'C'}`, async (t) => {
      const a = await startHttpBackend(undefined, { id: 'a' });
      const b = await startHttpBackend(undefined, { id: 'b' });
      t.after(() => Promise.all([a.close(), b.close()]));
      const proxy = await startExperiment(t, route, [a.port, b.port]);

      for (const [i, backend] of [a, b].entries()) {
        const ws = await rawWebSocket(proxy.port, { path: `/chat/${i}?q=1`, extraHeaders: [['Sec-WebSocket-Protocol', 'chat'], ['X-Trace', `t${i}`]] });
        t.after(() => ws.socket.destroy());
        assert.equal(ws.head.statusCode, 101);
        assert.equal(headerValue(ws.head, 'sec-websocket-accept'), SAMPLE_ACCEPT);
        assert.equal(headerValue(ws.head, 'server'), 'sluice');
        assert.equal(headerValue(ws.head, 'x-echo-id'), backend.id, 'round robin over the two backends');
        const seen = backend.requests.at(-1)!;
        assert.equal(seen.url, `/chat/${i}?q=1`);
        assert.equal(seen.headers['host'], 'echo');
        assert.equal(seen.headers['sec-websocket-protocol'], 'chat');
        assert.equal(seen.headers['x-trace'], `t${i}`);
        ws.socket.write(maskedFrame(0x1, `hello ${i}`));
        const echoed = await readFrame(ws.socket);
        assert.equal(echoed.opcode, 0x1);
        assert.equal(Buffer.from(echoed.payload).toString(), `hello ${i}`);
        ws.socket.end(maskedFrame(0x8, Buffer.from([0x03, 0xe8])));
        await waitForClose(ws.socket);
      }
      await waitFor(async () => ((await proxy.stats())['ended'] === 2 ? true : null), { what: 'two end reports' });

      const notUpgrade = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.equal(notUpgrade.head?.statusCode, 400);
      const post = await rawRequest(proxy.port, 'POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n');
      assert.equal(post.head?.statusCode, 400);
      const bareLf = await rawRequest(proxy.port, 'GET / HTTP/1.1\r\nHost: x\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Key: k\r\nSec-WebSocket-Version: 13\r\n\r\n');
      assert.equal(bareLf.head?.statusCode, 400);
      assert.equal(a.requests.length + b.requests.length, 2, 'nothing refused reached a backend');
    });
  }

  await t.test('an upstream that refuses connections: 502', async (t) => {
    const proxy = await startExperiment(t, 'js', [await refusedPort()]);
    const ws = await rawWebSocket(proxy.port);
    t.after(() => ws.socket.destroy());
    assert.equal(ws.head.statusCode, 502);
  });
});
