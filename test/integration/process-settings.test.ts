// Process-level directives with nginx's meaning: env (the workers' environment), daemon (detach,
// with a pid file and `-s stop`), and the events settings Node.js decides for itself (accepted,
// checked). worker_rlimit_nofile and worker_cpu_affinity drive util-linux: test/e2e/.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { CliProcess, httpGet, runCli } from '../helpers/cli-process.js';
import { conf } from '../helpers/config-text.js';
import { tempDir } from '../helpers/temp.js';
import { waitFor } from '../helpers/wait.js';

const pidServer = 'server { listen 127.0.0.1:0; location / { return 200 "$pid"; } location /time { return 200 "$time_iso8601"; } }';

test('env TZ=... reaches the workers: $time_iso8601 is in that zone; a single process too', async (t) => {
  const dir = tempDir(t);
  for (const workers of [1, 2]) {
    const file = dir.write(`tz${workers}.conf`, conf(pidServer, `worker_processes ${workers};\nenv TZ=Asia/Tokyo;\nenv PATH;`));
    const child = new CliProcess(t, ['-c', file], dir.path, { TZ: 'UTC' });
    const port = await child.port();
    for (let i = 0; i < workers; i++) assert.match((await httpGet(port, '/time')).body, /\+09:00$/);
    await child.stop('SIGTERM');
  }
});

test('daemon on: the command returns once the detached process serves; its pid is in the pid file; -s stop ends it', async (t) => {
  const dir = tempDir(t);
  const pidFile = dir.join('sluice.pid');
  const file = dir.write('daemon.conf', conf(pidServer, `daemon on;\npid ${pidFile};`));
  const r = await runCli(['-c', file], dir.path);
  let daemon = 0;
  t.after(() => {
    try {
      if (daemon > 0) process.kill(daemon, 'SIGKILL');
    } catch {
      // Already gone.
    }
  });
  assert.equal(r.code, 0, r.stderr);
  const m = /listening on 127\.0\.0\.1:(\d+) \(pid (\d+)\)/.exec(r.stderr);
  assert.ok(m, r.stderr);
  daemon = Number(m[2]);
  assert.equal(readFileSync(pidFile, 'utf8').trim(), String(daemon));
  assert.equal(Number((await httpGet(Number(m[1]), '/')).body), daemon);
  // setsid: its own session, away from the terminal of whoever started it.
  const stat = readFileSync(`/proc/${daemon}/stat`, 'utf8');
  const sid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
  assert.equal(sid, daemon);
  const stop = await runCli(['-s', 'stop', '-c', file], dir.path);
  assert.equal(stop.code, 0, stop.stderr);
  await waitFor(() => {
    try {
      process.kill(daemon, 0);
      return null;
    } catch {
      return true;
    }
  }, { what: 'the daemon to exit' });

  // -g 'daemon off;' keeps it in the foreground; as in nginx, only when the file does not set it too.
  const fg = dir.write('fg.conf', conf(pidServer));
  const child = new CliProcess(t, ['-c', fg, '-g', 'daemon off;'], dir.path);
  const port = await child.port();
  assert.equal(Number((await httpGet(port, '/')).body), child.pid);
  await child.stop('SIGTERM');
  const both = await runCli(['-t', '-c', file, '-g', 'daemon off;'], dir.path);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /"daemon" directive is duplicate/);
});

test('daemon on: a start that fails (an address in use) is reported by the command, which exits 1', async (t) => {
  const dir = tempDir(t);
  const holder = new CliProcess(t, ['-c', dir.write('hold.conf', conf(pidServer))], dir.path);
  const port = await holder.port();
  const file = dir.write('daemon.conf', conf(`server { listen 127.0.0.1:${port}; return 200 "x"; }`, 'daemon on;'));
  const r = await runCli(['-c', file], dir.path);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`sluice: \\[emerg\\] bind\\(\\) to 127\\.0\\.0\\.1:${port} failed \\(98: Address already in use\\)`));
  await holder.stop('SIGTERM');
});

test('-t: events settings are accepted with their values checked; bad masks and event types are refused as nginx does', async () => {
  const ok = await loadConfig({ text: 'pcre_jit on;\nenv TZ=UTC;\nenv HOME;\nworker_cpu_affinity auto 11;\nworker_rlimit_nofile 65535;\n'
    + 'events { use epoll; multi_accept on; accept_mutex off; accept_mutex_delay 500ms; }' });
  assert.equal(ok.ok, true, ok.ok ? '' : ok.problems.map((p) => formatProblem(p)).join('\n'));
  const bad = await loadConfig({ text: 'worker_cpu_affinity 01x1;\nworker_rlimit_nofile lots;\npcre_jit maybe;\n'
    + 'events { use kqueue; multi_accept yes; accept_mutex_delay soon; }' });
  assert.deepEqual(bad.ok ? [] : bad.problems.map((p) => formatProblem(p)), [
    '[emerg] invalid character "x" in "worker_cpu_affinity" in <inline>:1',
    '[emerg] "worker_rlimit_nofile" directive invalid number in <inline>:2',
    '[emerg] invalid value "maybe" in "pcre_jit" directive, it must be "on" or "off" in <inline>:3',
    '[emerg] invalid event type "kqueue" in <inline>:4',
    '[emerg] invalid value "yes" in "multi_accept" directive, it must be "on" or "off" in <inline>:4',
    '[emerg] "accept_mutex_delay" directive invalid value in <inline>:4',
  ]);
  const auto = await loadConfig({ text: 'worker_cpu_affinity auto 01 10;\nevents {}' });
  assert.deepEqual(auto.ok ? [] : auto.problems.map((p) => formatProblem(p)), ['[emerg] invalid number of arguments in "worker_cpu_affinity" directive in <inline>:1']);
});
