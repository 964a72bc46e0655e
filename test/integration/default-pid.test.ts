/**
 * The pid file without a `pid` line (issue 18): like nginx's compiled-in `logs/nginx.pid`, Sluice
 * writes `sluice.pid` in the prefix (the config file's directory, or -p), so `sluice -s` works on
 * any config; and `-s quit|stop --wait` returns only once the instance has exited.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startHttpBackend } from '../helpers/backends.js';
import { CHILD_MS, CliProcess, httpGet, runCli } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp.js';
import { once } from '../helpers/wait.js';

const NO_PID = (body: string, extra = ''): string => `${extra}events {}
http { server { listen 127.0.0.1:0; location / { return 200 "${body}"; } } }
`;

test('a config without "pid" writes sluice.pid next to it; -s reload and -s quit --wait work on it', async (t) => {
  const dir = tempDir(t);
  const conf = dir.write('site.conf', NO_PID('v1'));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  const pidFile = dir.join('sluice.pid');
  assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.pid}\n`);

  dir.write('site.conf', NO_PID('v2'));
  const reload = await runCli(['-s', 'reload', '-c', conf], dir.path);
  assert.deepEqual([reload.code, reload.stderr], [0, '']);
  await proxy.output('stderr', /^sluice: \[notice\] reconfigured: /m);
  assert.deepEqual(await httpGet(port, '/'), { status: 200, body: 'v2' });

  // --wait: when the command returns, the instance is gone and its pid file with it.
  const quit = await runCli(['-s', 'quit', '--wait', '-c', conf], dir.path);
  assert.equal(quit.code, 0, quit.stderr);
  assert.equal(quit.stderr, `sluice: [notice] sent QUIT to pid ${proxy.pid}: it stops accepting and exits once requests are done; `
    + 'open tunnels may keep it up to worker_shutdown_timeout (10s)\n');
  // This test process is the instance's parent: it has reaped it by the time --wait saw it gone.
  assert.throws(() => process.kill(proxy.pid, 0), { code: 'ESRCH' }, 'exited when --wait returned');
  assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
  assert.equal(existsSync(pidFile), false, 'the pid file is removed');
});

test('-p moves the default pid file into the prefix; -s stop --wait returns after the exit', async (t) => {
  const dir = tempDir(t);
  const conf = dir.write('conf/site.conf', NO_PID('p'));
  dir.write('prefix/.keep', '');
  const proxy = new CliProcess(t, ['-p', dir.join('prefix'), '-c', conf], dir.path);
  await proxy.port();
  assert.equal(readFileSync(dir.join('prefix', 'sluice.pid'), 'utf8'), `${proxy.pid}\n`);
  assert.equal(existsSync(dir.join('conf', 'sluice.pid')), false);
  const stop = await runCli(['-s', 'stop', '--wait', '-p', dir.join('prefix'), '-c', conf], dir.path);
  assert.deepEqual([stop.code, stop.stderr], [0, '']);
  assert.equal(existsSync(dir.join('prefix', 'sluice.pid')), false);
  assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
});

test('-s quit --wait waits while a tunnel holds the instance for worker_shutdown_timeout', async (t) => {
  const backend = await startHttpBackend(undefined, { id: 'wait-backend' });
  t.after(() => backend.close());
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_shutdown_timeout 2s;
events {}
http { server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } } }
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/whoami`);
  ws.on('error', () => undefined);
  t.after(() => ws.terminate());
  const closed = new Promise<number>((resolve) => ws.once('close', (code: number) => resolve(code)));
  await once(ws, 'message', CHILD_MS);
  const quit = await runCli(['-s', 'quit', '--wait', '-c', conf], dir.path);
  assert.equal(quit.code, 0, quit.stderr);
  assert.match(quit.stderr, /worker_shutdown_timeout \(2s\)\n$/);
  // The command returned after the exit, so the tunnel had been closed (1001) by then.
  assert.equal(await closed, 1001);
  assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
});

test('--wait goes with -s stop or -s quit only', async () => {
  for (const args of [['--wait'], ['-s', 'reload', '--wait'], ['-t', '--wait']]) {
    const res = await runCli(args);
    assert.equal(res.code, 1, args.join(' '));
    assert.match(res.stderr, /^sluice: option "--wait" goes with "-s stop" or "-s quit"\n/, args.join(' '));
  }
});

test('a default pid file that cannot be written stops the start, as nginx\'s does', async (t) => {
  const dir = tempDir(t);
  // The prefix is a file's directory that does not exist (-p): nothing can be written there.
  const conf = dir.write('site.conf', NO_PID('x'));
  const res = await runCli(['-p', dir.join('missing'), '-c', conf], dir.path);
  assert.equal(res.code, 1);
  assert.match(res.stderr, new RegExp(`\\[emerg\\] open\\(\\) "${dir.join('missing', 'sluice.pid')}" failed \\(2: No such file or directory\\)`));
  assert.equal(existsSync(dir.join('missing')), false, 'no directory is made');
});
