/**
 * One error log, one wording per event (issue 18): with `error_log FILE notice` the process that
 * owns the signals (the primary, or the one process) writes its notices to the file in nginx's
 * master's words, beside the workers' lines, and a graceful quit or a stop leaves its lines there
 * ("gracefully shutting down", "exiting", "exit"); `-s` leaves "signal process started".
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHILD_MS, CliProcess, MAIN, httpGet, runCli } from '../helpers/cli-process.js';
import { fileLines, waitForFileLine } from '../helpers/log-files.js';
import { trackGroup } from '../helpers/process-groups.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

/** The messages one process wrote, in order: `2026/12/04 12:00:00 [notice] 1234#0: MESSAGE`. */
function messagesOf(lines: readonly string[], pid: number): string[] {
  const prefix = new RegExp(`^\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[(\\w+)\\] ${pid}#0: (.*)$`);
  return lines.flatMap((l) => {
    const m = prefix.exec(l);
    return m ? [`[${m[1]}] ${m[2]}`] : [];
  });
}

/** The pids that wrote lines to the file. */
function writers(lines: readonly string[]): Set<number> {
  return new Set(lines.flatMap((l) => {
    const m = /\] (\d+)#0: /.exec(l);
    return m ? [Number(m[1])] : [];
  }));
}

for (const workers of [1, 2]) {
  const mode = workers === 1 ? 'one process' : 'primary and two workers';

  test(`error_log FILE notice (${mode}): reload, reopen and quit are in the file in nginx's words`, async (t) => {
    const dir = tempDir(t);
    // Sluice, like nginx, creates no log directory.
    mkdirSync(dir.join('logs'));
    const log = dir.join('logs', 'error.log');
    const conf = dir.write('sluice.conf', `worker_processes ${workers};
worker_shutdown_timeout 2s;
pid sluice.pid;
error_log logs/error.log notice;
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`);
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    const port = await proxy.port();
    assert.equal((await httpGet(port, '/')).status, 200);

    const reload = await runCli(['-s', 'reload', '-c', conf], dir.path);
    assert.deepEqual([reload.code, reload.stderr], [0, '']);
    await waitForFileLine(log, `${proxy.pid}#0: reconfigured: `);
    const reopen = await runCli(['-s', 'reopen', '-c', conf], dir.path);
    assert.deepEqual([reopen.code, reopen.stderr], [0, '']);
    // Every process reopens (the primary and each worker say so).
    await waitFor(() => fileLines(log).filter((l) => l.endsWith(': reopening logs')).length === (workers === 1 ? 1 : 1 + workers),
      { timeoutMs: CHILD_MS, what: 'every process to say it reopened its logs' });
    const quit = await runCli(['-s', 'quit', '-c', conf], dir.path);
    assert.equal(quit.code, 0);
    assert.deepEqual(await proxy.wait(), { code: 0, signal: null });

    const lines = fileLines(log);
    const own = messagesOf(lines, proxy.pid);
    const expected = [
      '[notice] signal 1 (SIGHUP) received, reconfiguring',
      '[notice] reconfiguring',
      '[notice] signal 10 (SIGUSR1) received, reopening logs',
      '[notice] reopening logs',
      '[notice] signal 3 (SIGQUIT) received, shutting down',
      '[notice] exit',
    ];
    // The primary's lines, in order (others, such as "reconfigured: ...", may come between).
    let at = -1;
    for (const e of expected) {
      const next = own.indexOf(e, at + 1);
      assert.ok(next > at, `"${e}" after line ${at} of the primary's:\n${own.join('\n')}`);
      at = next;
    }
    assert.equal(own.at(-1), '[notice] exit', 'the last line is the primary\'s exit');
    // One wording per event: the file has no second version of a signal line.
    assert.equal(lines.filter((l) => /received/.test(l)).length, 3, lines.join('\n'));
    // A reload is told once, by the process that owns the signals: the workers, reloading in
    // place, add no "reconfiguring" or "reloaded" of their own (nginx's workers say nothing).
    assert.equal(lines.filter((l) => l.endsWith(': reconfiguring')).length, 1, lines.join('\n'));
    assert.deepEqual(lines.filter((l) => /: reloaded /.test(l)), []);
    // The signaller's line, once per -s.
    assert.equal(lines.filter((l) => l.endsWith(': signal process started')).length, 3);
    const workerPids = [...writers(lines)].filter((pid) => pid !== proxy.pid && messagesOf(lines, pid).includes('[notice] exit'));
    assert.equal(workerPids.length, workers === 1 ? 0 : workers, 'each worker leaves its exit in the file');
    for (const pid of workerPids) {
      const theirs = messagesOf(lines, pid);
      assert.deepEqual(theirs.slice(-3), ['[notice] gracefully shutting down', '[notice] exiting', '[notice] exit']);
      assert.ok(own.includes(`[notice] worker process ${pid} exited with code 0`), `the primary logs worker ${pid}'s exit`);
    }
    if (workers === 1) {
      assert.ok(own.indexOf('[notice] gracefully shutting down') > own.indexOf('[notice] signal 3 (SIGQUIT) received, shutting down'));
      assert.deepEqual(own.slice(-2), ['[notice] exiting', '[notice] exit']);
    }
    // The command line's stderr tells the same events in the same words.
    assert.match(proxy.stderr, /^sluice: \[notice\] signal 3 \(SIGQUIT\) received, shutting down$/m);
  });

  test(`error_log FILE notice (${mode}): a stop leaves its lines in the file`, async (t) => {
    const dir = tempDir(t);
    const log = dir.join('error.log');
    const conf = dir.write('sluice.conf', `worker_processes ${workers};
pid sluice.pid;
error_log error.log notice;
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`);
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    await proxy.port();
    const stop = await runCli(['-s', 'stop', '-c', conf], dir.path);
    assert.equal(stop.code, 0);
    assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
    const own = messagesOf(fileLines(log), proxy.pid);
    assert.ok(own.includes('[notice] signal 15 (SIGTERM) received, exiting'), own.join('\n'));
    assert.equal(own.at(-1), '[notice] exit');
    assert.ok(!own.includes('[notice] gracefully shutting down'), 'a stop is not graceful');
  });

  test(`a failed reload in the default setup (${mode}): each problem once on stderr, with its hint`, async (t) => {
    const dir = tempDir(t);
    const good = `worker_processes ${workers};
pid sluice.pid;
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`;
    const conf = dir.write('sluice.conf', good);
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    const port = await proxy.port();
    dir.write('sluice.conf', good.replace('return 200', 'retrun 200'));
    process.kill(proxy.pid, 'SIGHUP');
    await waitFor(() => proxy.stderr.includes('reload failed'), { timeoutMs: CHILD_MS, what: 'the failed reload on stderr' });
    // Still serving the previous configuration.
    assert.equal((await httpGet(port, '/')).status, 200);
    process.kill(proxy.pid, 'SIGQUIT');
    assert.deepEqual(await proxy.wait(), { code: 0, signal: null });
    const stderr = proxy.stderr.split('\n');
    // The default error log is stderr at level error: the problem's line is the error log's, and
    // the command line adds only the hint, naming the same place.
    const problem = stderr.filter((l) => l.includes('unknown directive "retrun"'));
    assert.equal(problem.length, 1, proxy.stderr);
    assert.match(problem[0]!, /^\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d \[emerg\] \d+#0: unknown directive "retrun" in .*sluice\.conf:4$/);
    assert.deepEqual(stderr.filter((l) => l.includes('did you mean')), [`sluice: hint for ${conf}:4: did you mean "return"?`]);
    assert.equal(stderr.filter((l) => l.includes('reload failed: still serving the previous configuration')).length, 1, proxy.stderr);
  });
}

for (const workers of [1, 2]) {
  test(`standard error closed under a running Sluice (${workers} process(es)): it serves on and a quit still ends it`, async (t) => {
    const dir = tempDir(t);
    const conf = dir.write('sluice.conf', `worker_processes ${workers};
pid sluice.pid;
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "up"; } } }
`);
    // As `sluice -c FILE 2>&1 | head -1`: the reader goes away after the first line.
    const child = spawn(process.execPath, [MAIN, '-c', conf], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    trackGroup(child);
    t.after(() => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // gone already
      }
    });
    const first = await new Promise<string>((resolve) => child.stderr.once('data', (d: Buffer) => resolve(d.toString())));
    child.stderr.destroy();
    child.stdout.destroy();
    const port = Number(/127\.0\.0\.1:(\d+)/.exec(first)?.[1]);
    assert.ok(port > 0, first);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Each of these writes lines to the closed stderr (EPIPE): before, the failed write's report
    // failed again, a loop that kept the process busy and deaf to signals.
    process.kill(child.pid!, 'SIGHUP');
    process.kill(child.pid!, 'SIGUSR1');
    await waitFor(async () => (await httpGet(port, '/')).body === 'up', { timeoutMs: CHILD_MS, what: 'an answer after the writes failed' });
    process.kill(child.pid!, 'SIGQUIT');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running'), CHILD_MS).unref())]);
    assert.equal(code, 0);
  });
}
