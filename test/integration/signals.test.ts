/**
 * Signals, `-s` and the pid file (issue: operations), as nginx has them: `-s reload` (a bad
 * config keeps the old one and logs why), `-s reopen` (logrotate), `-s quit` (graceful: requests
 * in flight finish, tunnels get close 1001 after worker_shutdown_timeout), `-s stop`, nginx's
 * messages when no instance runs, and `sluice -t` saying what a reload would drain. Each runs in
 * one process (worker_processes 1) and with a primary and two workers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, renameSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startHttpBackend } from '../helpers/backends.js';
import { CHILD_MS, CliProcess, httpGet, okLines, runCli } from '../helpers/cli-process.js';
import { fileLines } from '../helpers/log-files.js';
import { tempDir } from '../helpers/temp.js';
import { escapeRegExp } from '../helpers/text.js';
import { once, waitFor, withTimeout } from '../helpers/wait.js';

/** Asks `/` on new connections until `count` distinct pids answered; returns them. */
async function answeringPids(port: number, count: number, expectBody: RegExp): Promise<Set<string>> {
  const pids = new Set<string>();
  await waitFor(async () => {
    const res = await httpGet(port, '/');
    assert.equal(res.status, 200);
    const m = expectBody.exec(res.body);
    assert.ok(m, `body ${res.body} matches ${expectBody}`);
    pids.add(m[1]!);
    return pids.size >= count;
  }, { timeoutMs: CHILD_MS, what: `${count} process(es) to answer` });
  return pids;
}

/** Opens a WebSocket through the proxy and waits for the echo's greeting. */
async function openTunnel(t: { after(fn: () => unknown): void }, url: string): Promise<{ ws: WebSocket; closed: Promise<unknown[]> }> {
  const ws = new WebSocket(url);
  ws.on('error', () => undefined);
  t.after(() => ws.terminate());
  const closed = new Promise<unknown[]>((resolve) => ws.once('close', (...args: unknown[]) => resolve(args)));
  await once(ws, 'message', CHILD_MS);
  return { ws, closed };
}

for (const workers of [1, 2]) {
  const mode = workers === 1 ? 'one process' : 'primary and two workers';

  test(`-s reload (${mode}): a good config is served by the same processes at once; a bad one keeps the old and logs why`, async (t) => {
    const dir = tempDir(t);
    const pidFile = dir.join('run', 'sluice.pid');
    const config = (version: string, extra = ''): string => `worker_processes ${workers};
pid run/sluice.pid;
events {}
http {
  server {
    listen 127.0.0.1:0;
    ${extra}
    location / { return 200 "${version} $pid"; }
  }
}
`;
    dir.write('run/.keep', '');
    const conf = dir.write('sluice.conf', config('v1'));
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    const port = await proxy.port();
    assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.pid}\n`);
    const before = await answeringPids(port, workers, /^v1 (\d+)$/);

    dir.write('sluice.conf', config('v2'));
    const good = await runCli(['-s', 'reload', '-c', conf], dir.path);
    assert.deepEqual([good.code, good.stderr, good.stdout], [0, '', '']);
    await proxy.output('stderr', /^sluice: \[notice\] reconfigured: /m);
    // Every process reloaded in place: the same pids answer, all with the new config (new
    // connections until every one answered: the workers accept for themselves, and which one takes
    // a connection is their race).
    const after = new Set<string>();
    let asked = 0;
    await waitFor(async () => {
      const res = await httpGet(port, `/r${asked++}`);
      assert.equal(res.status, 200);
      const m = /^v2 (\d+)$/.exec(res.body);
      assert.ok(m, `served by the new config: ${res.body}`);
      after.add(m[1]!);
      return after.size >= before.size || after.size > workers;
    }, { timeoutMs: CHILD_MS, what: `the ${workers} process(es) to answer with the new config` });
    assert.deepEqual([...after].sort(), [...before].sort(), 'no new generation of processes');

    dir.write('sluice.conf', config('v3', 'bogus_directive on;'));
    const problem = `[emerg] unknown directive "bogus_directive" in ${conf}:7`;
    // nginx: -s reads the config to find the pid file, so a broken one is reported and not sent.
    const bad = await runCli(['-s', 'reload', '-c', conf], dir.path);
    assert.deepEqual([bad.code, bad.stderr.split('\n')[0]], [1, `sluice: ${problem}`]);
    // A HUP sent another way: the instance checks the config, logs every problem, keeps the old one.
    process.kill(proxy.pid, 'SIGHUP');
    // The default error log (stderr) has the problem's line; said once, not again by the command line.
    await proxy.output('stderr', new RegExp(`\\[emerg\\] \\d+#0: ${escapeRegExp(problem.slice('[emerg] '.length))}$`, 'm'));
    assert.ok(!proxy.stderr.includes(`sluice: ${problem}`), proxy.stderr);
    await proxy.output('stderr', /\[alert\] (\d+#0: )?reload failed: still serving the previous configuration$/m);
    for (let i = 0; i < 2 * workers; i++) {
      const res = await httpGet(port, `/b${i}`);
      assert.equal(res.status, 200);
      assert.match(res.body, /^v2 \d+$/, 'the old config still serves');
    }
    assert.equal(proxy.done, false);
    dir.write('sluice.conf', config('v2'));
    const stop = await runCli(['-s', 'stop', '-c', conf], dir.path);
    assert.equal(stop.code, 0);
    assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
    assert.equal(existsSync(pidFile), false, 'the pid file is removed');
  });

  test(`-s reopen (${mode}): after logrotate renames the access log, every process writes to a new file`, async (t) => {
    const dir = tempDir(t);
    const conf = dir.write('sluice.conf', `worker_processes ${workers};
pid sluice.pid;
events {}
http {
  log_format bypid '$pid $request_uri';
  access_log logs/access.log bypid;
  server { listen 127.0.0.1:0; location / { return 200 "$pid"; } }
}
`);
    dir.write('logs/.keep', '');
    const log = dir.join('logs', 'access.log');
    const rotated = dir.join('logs', 'access.log.1');
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    const port = await proxy.port();
    const pids = await answeringPids(port, workers, /^(\d+)$/);
    await waitFor(() => new Set(fileLines(log).map((l) => l.split(' ')[0])).size === workers, { what: 'a line from every process' });
    const written = fileLines(log).length;

    renameSync(log, rotated);
    const reopen = await runCli(['-s', 'reopen', '-c', conf], dir.path);
    assert.deepEqual([reopen.code, reopen.stderr], [0, '']);
    await proxy.output('stderr', /^sluice: \[notice\] signal 10 \(SIGUSR1\) received, reopening logs$/m);
    // Requests go on until each process has written to the new file.
    let n = 0;
    await waitFor(async () => {
      assert.equal((await httpGet(port, `/after${n++}`)).status, 200);
      return [...pids].every((pid) => fileLines(log).some((l) => l.startsWith(`${pid} `)));
    }, { timeoutMs: CHILD_MS, what: 'every process to write to the new access.log' });
    assert.ok(fileLines(log).every((l) => / \/after\d+$/.test(l)), `only new lines in the new file:\n${fileLines(log).join('\n')}`);
    const old = fileLines(rotated);
    assert.ok(old.length >= written, 'the rotated file keeps its lines');
    assert.ok(old.slice(0, written).every((l) => / \/$/.test(l)));
    assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
  });

  test(`-s quit (${mode}): graceful; a request in flight completes, a tunnel gets 1001 after worker_shutdown_timeout`, async (t) => {
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    const slow: ServerResponse[] = [];
    const backend = await startHttpBackend((req, res) => {
      if (req.url !== '/slow') {
        res.end('fast');
        return;
      }
      slow.push(res);
      void released.then(() => res.end('slow answer'));
    }, { id: 'quit-backend' });
    t.after(() => backend.close());
    const dir = tempDir(t);
    const pidFile = dir.join('sluice.pid');
    const conf = dir.write('sluice.conf', `worker_processes ${workers};
worker_shutdown_timeout 3s;
pid sluice.pid;
events {}
http { server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } } }
`);
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    const port = await proxy.port();
    const tunnel = await openTunnel(t, `ws://127.0.0.1:${port}/whoami`);
    const inFlight = httpGet(port, '/slow', { timeoutMs: CHILD_MS });
    await waitFor(() => slow.length === 1, { what: 'the slow request to reach the backend' });

    const quit = await runCli(['-s', 'quit', '-c', conf], dir.path);
    // Sluice says what nginx leaves unsaid: the stop may take worker_shutdown_timeout.
    assert.deepEqual([quit.code, quit.stderr], [0, `sluice: [notice] sent QUIT to pid ${proxy.pid}: it stops accepting and exits once requests are done; `
      + 'open tunnels may keep it up to worker_shutdown_timeout (3s) (--wait waits for the exit)\n']);
    await proxy.output('stderr', /^sluice: \[notice\] signal 3 \(SIGQUIT\) received, shutting down$/m);
    // It stops accepting first...
    await waitFor(async () => {
      try {
        await httpGet(port, '/probe');
        return false;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'ECONNREFUSED';
      }
    }, { timeoutMs: CHILD_MS, what: 'new connections to be refused' });
    assert.equal(proxy.done, false, 'still running for the work in flight');
    // ...and the request in flight still gets its whole answer.
    release();
    assert.deepEqual(await inFlight, { status: 200, body: 'slow answer' });
    // The tunnel stays open until worker_shutdown_timeout, then goes away with 1001.
    const [code] = await withTimeout(tunnel.closed, CHILD_MS, 'the tunnel to close');
    assert.equal(code, 1001);
    assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
    assert.equal(existsSync(pidFile), false, 'the pid file is removed');
    assert.doesNotMatch(proxy.stderr, /\[alert\]/);
  });

  test(`-s stop (${mode}): fast shutdown; tunnels get 1001, the pid file is removed, exit 0`, async (t) => {
    const backend = await startHttpBackend(undefined, { id: 'stop-backend' });
    t.after(() => backend.close());
    const dir = tempDir(t);
    const pidFile = dir.join('sluice.pid');
    const conf = dir.write('sluice.conf', `worker_processes ${workers};
pid sluice.pid;
events {}
http { server { listen 127.0.0.1:0; location / { proxy_pass http://${backend.addr}; } } }
`);
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    const port = await proxy.port();
    assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.pid}\n`);
    const tunnel = await openTunnel(t, `ws://127.0.0.1:${port}/whoami`);
    const stop = await runCli(['-s', 'stop', '-c', conf], dir.path);
    assert.deepEqual([stop.code, stop.stderr], [0, '']);
    const [code] = await withTimeout(tunnel.closed, CHILD_MS, 'the tunnel to close');
    assert.equal(code, 1001);
    assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
    assert.match(proxy.stderr, /^sluice: \[notice\] signal 15 \(SIGTERM\) received, exiting$/m);
    assert.equal(existsSync(pidFile), false, 'the pid file is removed');
    assert.equal(existsSync(`${pidFile}.sock`), false, 'the control socket is removed');
  });
}

test('a quit while a reload waits for a worker forks no worker: the primary exits 0 once its workers did', async (t) => {
  // The reload's end (resize) used to run after the stop had begun: with a stopped worker gone
  // from the list, it forked a new one for a primary that was leaving.
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_processes 2;
error_log stderr notice;
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  const pids = await answeringPids(port, 2, /^(\d+)$/);
  const [slow] = [...pids];
  // One worker cannot answer the reload until the stop has begun and the other has left.
  process.kill(Number(slow), 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(Number(slow), 'SIGCONT');
    } catch {
      // gone
    }
  });
  process.kill(proxy.pid, 'SIGHUP');
  await proxy.output('stderr', /\[notice\] \d+#0: reconfiguring$/m);
  process.kill(proxy.pid, 'SIGQUIT');
  await proxy.output('stderr', /worker process \d+ exited with code 0$/m);
  process.kill(Number(slow), 'SIGCONT');
  assert.deepEqual(await proxy.wait(), { code: 0, signal: null }, proxy.stderr);
  assert.doesNotMatch(proxy.stderr, /start worker process/, `a worker was started during the stop\n${proxy.stderr}`);
});

test('-s with no running instance: nginx\'s messages for a missing pid file and a dead pid', async (t) => {
  const dir = tempDir(t);
  const pidFile = dir.join('sluice.pid');
  const conf = dir.write('sluice.conf', 'pid sluice.pid;\nevents {}\nhttp { server { listen 127.0.0.1:0; return 200 "x"; } }\n');
  const missing = await runCli(['-s', 'reload', '-c', conf], dir.path);
  assert.equal(missing.stderr, `sluice: [error] open() "${pidFile}" failed (2: No such file or directory)\n`);
  assert.equal(missing.code, 1);

  // A pid file left behind by an instance that is gone.
  const gone = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await once(gone, 'exit', CHILD_MS);
  dir.write('sluice.pid', `${gone.pid!}\n`);
  for (const [signal, number] of [['reload', 1], ['stop', 15], ['quit', 3], ['reopen', 10]] as const) {
    const res = await runCli(['-s', signal, '-c', conf], dir.path);
    assert.equal(res.stderr, `sluice: [alert] kill(${gone.pid!}, ${number}) failed (3: No such process)\n`, signal);
    assert.equal(res.code, 1, signal);
  }
  // -t does not mind a stale pid file.
  const tested = await runCli(['-t', '-c', conf], dir.path);
  assert.equal(tested.stderr, okLines(conf));
  assert.equal(tested.code, 0);
});

test('sluice -t with an instance running prints how many open tunnels the config would drain', async (t) => {
  const a = await startHttpBackend(undefined, { id: 'A' });
  t.after(() => a.close());
  const b = await startHttpBackend(undefined, { id: 'B' });
  t.after(() => b.close());
  const dir = tempDir(t);
  const config = (bServer: string): string => `pid sluice.pid;
events {}
http {
  upstream to_a { server ${a.addr}; }
  upstream to_b { server ${bServer}; }
  server {
    listen 127.0.0.1:0;
    location /a { proxy_pass http://to_a; }
    location /b { proxy_pass http://to_b; }
  }
}
`;
  const conf = dir.write('sluice.conf', config(b.addr));
  const candidate = dir.write('candidate.conf', config('127.0.0.1:9'));
  // Without a running instance -t is what it always was.
  const alone = await runCli(['-t', '-c', candidate], dir.path);
  assert.equal(alone.stderr, okLines(candidate));

  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  const idle = await runCli(['-t', '-c', candidate], dir.path);
  assert.equal(idle.stderr, `${okLines(candidate)}sluice: the running instance (pid ${proxy.pid}) has 0 open tunnel(s); this configuration would drain 0 of them\n`);
  for (const path of ['/a', '/a', '/a', '/b', '/b']) await openTunnel(t, `ws://127.0.0.1:${port}${path}?whoami`);
  const res = await runCli(['-t', '-c', candidate], dir.path);
  assert.equal(res.stderr, `${okLines(candidate)}sluice: the running instance (pid ${proxy.pid}) has 5 open tunnel(s); this configuration would drain 2 of them\n`);
  assert.equal(res.stdout, '');
  assert.equal(res.code, 0);
  // -q keeps -t silent.
  const quiet = await runCli(['-tq', '-c', candidate], dir.path);
  assert.deepEqual([quiet.stderr, quiet.code], ['', 0]);
  // A config that fails its test says only that.
  const broken = dir.write('broken.conf', config(b.addr).replace('events {}', 'events {}\nbogus;'));
  const failed = await runCli(['-t', '-c', broken], dir.path);
  assert.doesNotMatch(failed.stderr, /running instance/);
  assert.equal(failed.code, 1);

  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
  const after = await runCli(['-t', '-c', candidate], dir.path);
  assert.equal(after.stderr, okLines(candidate), 'no instance, no impact line');
});
