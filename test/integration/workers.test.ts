/**
 * Worker processes (issue: operations): `worker_processes 2` runs a primary that forks two
 * workers sharing the listener; connections spread across them, a killed worker is replaced,
 * worker_connections caps each worker, the status and metrics sum every worker's figures, and
 * `sluice -t` asks every worker what a reload would drain. Real child processes of the CLI.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { test } from 'node:test';
import WebSocket from 'ws';
import { startHttpBackend } from '../helpers/backends.js';
import { CHILD_MS, CliProcess, httpGet, httpGetWithHeaders, runCli } from '../helpers/cli-process.js';
import { unusedPort } from '../helpers/ports.js';
import { parsePrometheus, sampleValue } from '../helpers/prometheus.js';
import { headerValue, rawConnect, rawRequest, readUntil } from '../helpers/raw-client.js';
import { tempDir } from '../helpers/temp.js';
import { once, waitFor } from '../helpers/wait.js';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Asks `/` on new connections until `count` distinct worker pids answered (bounded). */
async function workerPids(port: number, count: number): Promise<Set<string>> {
  const seen = new Set<string>();
  await waitFor(async () => {
    const res = await httpGet(port, '/');
    assert.equal(res.status, 200);
    seen.add(res.body);
    return seen.size >= count;
  }, { timeoutMs: CHILD_MS, what: `${count} worker processes to answer` });
  return seen;
}

test('worker_processes 2: a primary and two workers share the listener; connections spread across them', async (t) => {
  const dir = tempDir(t);
  const pidFile = dir.join('sluice.pid');
  const conf = dir.write('sluice.conf', `worker_processes 2;
pid ${pidFile};
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const started = await proxy.output('stderr', /^sluice: sluice\/\S+ running (.+), listening on 127\.0\.0\.1:(\d+) \(pid (\d+)\)$/m);
  assert.equal(started[1], conf);
  assert.equal(Number(started[3]), proxy.pid, 'the primary names itself');
  assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.pid}\n`, 'the pid file holds the primary');
  const port = Number(started[2]);

  // New connections (ten at least, more until both answered) land on both workers, never the
  // primary: the workers accept for themselves and race for each.
  const answers = new Map<string, number>();
  let asked = 0;
  await waitFor(async () => {
    const res = await httpGet(port, `/n${asked++}`);
    assert.equal(res.status, 200);
    answers.set(res.body, (answers.get(res.body) ?? 0) + 1);
    return asked >= 10 && answers.size >= 2;
  }, { timeoutMs: CHILD_MS, what: 'both workers to answer' });
  const pids = [...answers.keys()];
  assert.equal(pids.length, 2, `answers by pid: ${JSON.stringify([...answers])}`);
  assert.ok(!answers.has(String(proxy.pid)));
  for (const pid of pids) assert.ok(alive(Number(pid)), `worker ${pid} is a live process`);

  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
  assert.equal(existsSync(pidFile), false, 'the pid file is removed');
  // The primary waits for its workers before it exits.
  for (const pid of pids) assert.equal(alive(Number(pid)), false, `worker ${pid} is gone`);
  assert.doesNotMatch(proxy.stderr, /\[alert\]/, 'a requested stop is not an unexpected exit');
});

test('a worker killed with SIGKILL is logged at alert and replaced; traffic keeps flowing', async (t) => {
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_processes 2;
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  const [victim, survivor] = [...await workerPids(port, 2)];
  process.kill(Number(victim), 'SIGKILL');
  // nginx: "[alert] 1234#0: worker process 5678 exited on signal 9".
  await proxy.output('stderr', new RegExp(`^\\d{4}/\\d\\d/\\d\\d \\d\\d:\\d\\d:\\d\\d \\[alert\\] ${proxy.pid}#0: worker process ${victim} exited on signal 9$`, 'm'));

  // A new worker takes its place: answers come from the survivor and a third pid.
  const seen = new Set<string>();
  await waitFor(async () => {
    const res = await httpGet(port, '/');
    if (res.status === 200) seen.add(res.body);
    return seen.has(survivor!) && [...seen].some((p) => p !== survivor && p !== victim);
  }, { timeoutMs: CHILD_MS, what: 'the replacement worker to answer' });
  for (let i = 0; i < 6; i++) {
    const res = await httpGet(port, `/after${i}`);
    assert.equal(res.status, 200);
    assert.notEqual(res.body, victim);
  }
  assert.equal(proxy.done, false, 'the primary keeps running');
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
  assert.equal([...proxy.stderr.matchAll(/\[alert\]/g)].length, 1, proxy.stderr);
});

test('events { worker_connections 2; } caps each worker, not the whole proxy', async (t) => {
  const dir = tempDir(t);
  // accept_mutex on: connections in turn, so the four below fill both workers (with it off, the
  // default, the first connections go to whichever worker wakes first while their loads are
  // within the table's slack of 2).
  const conf = dir.write('sluice.conf', `worker_processes 2;
events { worker_connections 2; accept_mutex on; }
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  // Four connections held open, one after another: round robin gives each worker two.
  const held: Socket[] = [];
  const byPid = new Map<string, number>();
  t.after(() => { for (const s of held) s.destroy(); });
  for (let i = 0; i < 4; i++) {
    const socket = await rawConnect(port);
    held.push(socket);
    socket.write('GET / HTTP/1.1\r\nHost: cap.test\r\n\r\n');
    const text = (await readUntil(socket, (b) => /\r\n\r\n\d+$/.test(b.toString('latin1')))).toString('latin1');
    assert.match(text, /^HTTP\/1\.1 200 OK\r\n/, `held connection ${i}`);
    const pid = /\r\n\r\n(\d+)$/.exec(text)![1]!;
    byPid.set(pid, (byPid.get(pid) ?? 0) + 1);
  }
  assert.deepEqual([...byPid.values()], [2, 2], `held connections by worker: ${JSON.stringify([...byPid])}`);
  // Both workers are full now: a fifth connection is refused with 503 by whichever gets it.
  const fifth = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: cap.test\r\n\r\n', { until: 'close' });
  assert.equal(fifth.head?.statusCode, 503);
  await proxy.output('stderr', / \[alert\] \d+#0: 2 worker_connections are not enough$/m);
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('sluice_status and sluice_metrics served by any worker sum the figures of every worker', async (t) => {
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_processes 2;
events {}
http {
  server { listen 127.0.0.1:0; server_name app; location / { return 200 "$pid"; } }
  server {
    listen 127.0.0.1:0;
    server_name admin;
    location = /status { sluice_status; }
    location = /metrics { sluice_metrics; }
  }
}
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  // At least 12 requests, and more until both workers served some (which worker takes a new
  // connection is the workers' race).
  const perWorker = new Map<string, number>();
  let total = 0;
  await waitFor(async () => {
    const res = await httpGet(port, '/', { host: 'app' });
    assert.equal(res.status, 200);
    perWorker.set(res.body, (perWorker.get(res.body) ?? 0) + 1);
    total++;
    return total >= 12 && perWorker.size >= 2;
  }, { timeoutMs: CHILD_MS, what: 'both workers to serve the app' });
  const workers = [...perWorker.keys()].sort();
  assert.equal(workers.length, 2, 'both workers served the app');

  // Each worker alone saw fewer than `total`; the status (from whichever worker answers) has all.
  interface Status { workers: number; pids: number[]; servers: Record<string, { requests: Record<string, number> }> }
  for (let i = 0; i < 4; i++) {
    const status = await waitFor(async () => {
      const res = await httpGet(port, '/status', { host: 'admin' });
      assert.equal(res.status, 200);
      const s = JSON.parse(res.body) as Status;
      return s.servers['app']?.requests['200'] === total ? s : null;
    }, { timeoutMs: CHILD_MS, what: `the status to count ${total} requests` });
    assert.equal(status.workers, 2);
    assert.deepEqual(status.pids.map(String).sort(), workers);
  }
  const metrics = await httpGet(port, '/metrics', { host: 'admin' });
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^sluice_workers 2$/m);
  // One instance, two workers: sluice_info stays 1.
  assert.match(metrics.body, /^sluice_info\{version="[^"]+"\} 1$/m);
  assert.match(metrics.body, new RegExp(`^sluice_http_requests_total\\{server_name="app",status="200"\\} ${total}$`, 'm'));
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('sluice -t with workers running: the impact of a config sums the open tunnels of every worker', async (t) => {
  const a = await startHttpBackend(undefined, { id: 'A' });
  t.after(() => a.close());
  const b = await startHttpBackend(undefined, { id: 'B' });
  t.after(() => b.close());
  const dir = tempDir(t);
  const pidFile = dir.join('sluice.pid');
  const config = (bServer: string): string => `worker_processes 2;
pid ${pidFile};
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
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();

  const tunnels: WebSocket[] = [];
  t.after(() => { for (const ws of tunnels) ws.terminate(); });
  for (const path of ['/a', '/b', '/a', '/b', '/a']) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}?whoami`);
    ws.on('error', () => undefined);
    tunnels.push(ws);
    const [hello] = await once(ws, 'message', CHILD_MS);
    assert.equal((JSON.parse(String(hello)) as { id: string }).id, path === '/a' ? 'A' : 'B');
  }

  const candidate = dir.write('candidate.conf', config('127.0.0.1:9'));
  const res = await runCli(['-t', '-c', candidate], dir.path);
  assert.equal(res.stderr, `sluice: the configuration file ${candidate} syntax is ok
sluice: configuration file ${candidate} test is successful
sluice: the running instance (pid ${proxy.pid}) has 5 open tunnel(s); this configuration would drain 2 of them
`);
  assert.equal(res.code, 0);
  // The same file drains nothing.
  const same = await runCli(['-t', '-c', conf], dir.path);
  assert.match(same.stderr, /has 5 open tunnel\(s\); this configuration would drain 0 of them\n$/);
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
  assert.equal(existsSync(`${pidFile}.sock`), false, 'the control socket is removed');
});

test('a listen address in use: the primary reports the bind error once and exits 1', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => taken.close(resolve)));
  const port = (taken.address() as AddressInfo).port;
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_processes 2;
pid sluice.pid;
events {}
http { server { listen 127.0.0.1:${port}; location / { return 200 "$pid"; } } }
`);
  const res = await runCli(['-c', conf], dir.path);
  assert.deepEqual(res.stderr.split('\n').filter((l) => l.includes('bind()')), [`sluice: [emerg] bind() to 127.0.0.1:${port} failed (98: Address already in use)`]);
  assert.equal(res.code, 1);
  assert.equal(existsSync(dir.join('sluice.pid')), false, 'no pid file is left behind');
});

test('a reload the workers cannot apply (a listen address in use) is rolled back; replacements start from the old config', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => taken.close(resolve)));
  const busy = (taken.address() as AddressInfo).port;
  const dir = tempDir(t);
  const config = (version: string, extra = ''): string => `worker_processes 2;
events {}
http {
  server { listen 127.0.0.1:0; location / { return 200 "${version} $pid"; } }
  ${extra}
}
`;
  const conf = dir.write('sluice.conf', config('v1'));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  const [victim] = [...await workerPids(port, 2)].map((b) => b.replace(/^v1 /, ''));
  dir.write('sluice.conf', config('v2', `server { listen 127.0.0.1:${busy}; return 200 "busy"; }`));
  process.kill(proxy.pid, 'SIGHUP');
  await proxy.output('stderr', new RegExp(`\\[alert\\] (\\d+#0: )?a worker process could not reload: bind\\(\\) to 127\\.0\\.0\\.1:${busy} failed \\(98: Address already in use\\)$`, 'm'));
  await proxy.output('stderr', /\[alert\] (\d+#0: )?reload failed: still serving the previous configuration$/m);
  // A worker started now runs what the others run.
  process.kill(Number(victim), 'SIGKILL');
  await proxy.output('stderr', new RegExp(`worker process ${victim} exited on signal 9$`, 'm'));
  const seen = new Set<string>();
  await waitFor(async () => {
    const res = await httpGet(port, '/');
    if (res.status !== 200) return false;
    assert.match(res.body, /^v1 \d+$/);
    seen.add(res.body);
    return [...seen].some((b) => b !== `v1 ${victim}`) && seen.size >= 2;
  }, { timeoutMs: CHILD_MS, what: 'the replacement to answer' });
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('workers that keep dying right after they start are restarted with a delay, not in a loop', async (t) => {
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_processes 2;
error_log stderr notice;
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();
  let [next] = [...await workerPids(port, 2)];
  const backoff = /\[alert\] \d+#0: worker processes keep exiting soon after they start; starting another in [\d.]+s$/m;
  // Kill each replacement as soon as it is forked, until the primary slows down.
  for (let kills = 1; !backoff.test(proxy.stderr); kills++) {
    assert.ok(kills <= 6, `no back-off after ${kills - 1} quick deaths:\n${proxy.stderr}`);
    process.kill(Number(next), 'SIGKILL');
    await proxy.output('stderr', new RegExp(`worker process ${next} exited on signal 9$`, 'm'));
    const started = await waitFor(() => {
      const all = [...proxy.stderr.matchAll(/ \[notice\] \d+#0: start worker process (\d+)$/gm)];
      return all.length >= kills ? all[kills - 1]![1] : null;
    }, { timeoutMs: CHILD_MS, what: `replacement number ${kills}` });
    next = started;
  }
  // After the pause a worker starts again, and two serve.
  await workerPids(port, 2);
  assert.equal(proxy.done, false);
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

async function getWithCookie(port: number, cookie: string | null): Promise<{ body: string; setCookie: string[]; pid: string }> {
  const r = await httpGetWithHeaders(port, '/', cookie === null ? {} : { headers: { cookie } });
  return { body: r.body, setCookie: r.headers['set-cookie'] ?? [], pid: String(r.headers['x-worker'] ?? '') };
}

test('sticky cookie with workers: a cookie set by one worker routes the same in every worker', async (t) => {
  const a = await startHttpBackend(undefined, { id: 'A' });
  const b = await startHttpBackend(undefined, { id: 'B' });
  t.after(() => Promise.all([a.close(), b.close()]));
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_processes 2;
events {}
http {
  upstream app { server ${a.addr}; server ${b.addr}; sticky cookie srv; }
  server { listen 127.0.0.1:0; location / { proxy_pass http://app; add_header X-Worker $pid; } }
}
`);
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const started = await proxy.output('stderr', /listening on 127\.0\.0\.1:(\d+) /);
  const port = Number(started[1]);
  const first = await getWithCookie(port, null);
  assert.equal(first.setCookie.length, 1);
  const cookie = (first.setCookie[0] as string).split(';')[0] as string;
  const home = (JSON.parse(first.body) as { id: string }).id;
  // Twelve requests at least, more until both workers served one.
  const workers = new Set<string>();
  let i = 0;
  await waitFor(async () => {
    const r = await getWithCookie(port, cookie);
    workers.add(r.pid);
    assert.equal((JSON.parse(r.body) as { id: string }).id, home, `request ${i} stays on ${home}`);
    assert.deepEqual(r.setCookie, [], 'the cookie already names the server: no new one');
    return ++i >= 12 && workers.size >= 2;
  }, { timeoutMs: CHILD_MS, what: 'both workers to serve requests with the cookie' });
  assert.equal(workers.size, 2, 'both workers served requests with the cookie');
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

interface ReloadFigures {
  ok: number;
  failed: number;
  drained: number;
  lastTime: number;
  lastOk: number;
  recent: { ok: boolean; file: string; problems: string[] }[];
}

/**
 * GETs `path` (HTTP/1.0) on new connections until each of `workers` answered (the admin
 * locations add `X-Worker: $pid`), then hands every answer to `check`. An event stream stays
 * open: its answer is read up to the first event.
 */
async function askEachWorker(port: number, path: string, workers: number, check: (body: string, pid: string) => void): Promise<void> {
  const answers: { pid: string; body: string }[] = [];
  const until = path.includes('?events') ? (b: Buffer) => /\r\n\r\n[^]*\ndata: [^\n]*\n\n/.test(b.toString('latin1')) : 'response' as const;
  await waitFor(async () => {
    const res = await rawRequest(port, `GET ${path} HTTP/1.0\r\n\r\n`, { until });
    assert.ok(res.head, res.data.toString('latin1'));
    assert.equal(res.head.statusCode, 200, res.data.toString('latin1'));
    answers.push({ pid: headerValue(res.head, 'x-worker') ?? '', body: res.body.toString('utf8') });
    return new Set(answers.map((a) => a.pid)).size >= workers;
  }, { timeoutMs: CHILD_MS, what: `${workers} workers to answer ${path}` });
  for (const a of answers) check(a.body, a.pid);
}

test('reloads with workers: a refused and an applied HUP are counted in /metrics, /status and the dashboard of every worker', async (t) => {
  const dir = tempDir(t);
  const config = (body: string): string => `worker_processes 2;
events {}
http {
  server {
    listen 127.0.0.1:0;
    add_header X-Worker $pid always;
    location = /metrics { sluice_metrics; }
    location = /status { sluice_status; }
    location = /dashboard { sluice_dashboard; }
    ${body}
  }
}
`;
  const conf = dir.write('sluice.conf', config('location / { return 200 "v1"; }'));
  const proxy = new CliProcess(t, ['-c', conf], dir.path);
  const port = await proxy.port();

  const metrics = (body: string): { ok: number; failed: number; success: number; time: number; drained: number } => {
    const p = parsePrometheus(body);
    return {
      ok: sampleValue(p, 'sluice_reloads_total', { result: 'ok' }) ?? -1,
      failed: sampleValue(p, 'sluice_reloads_total', { result: 'failed' }) ?? -1,
      success: sampleValue(p, 'sluice_last_reload_success') ?? -1,
      time: sampleValue(p, 'sluice_last_reload_timestamp_seconds') ?? -1,
      drained: sampleValue(p, 'sluice_reload_drained_tunnels_total') ?? -1,
    };
  };
  const before = Date.now() / 1000;
  await askEachWorker(port, '/metrics', 2, (body) => {
    assert.deepEqual(metrics(body), { ok: 0, failed: 0, success: 1, time: 0, drained: 0 });
  });

  // The primary refuses this one: the workers never see it, yet they must report it.
  dir.write('sluice.conf', config('location / { retrun 200 "v2"; }'));
  process.kill(proxy.pid, 'SIGHUP');
  await proxy.output('stderr', /\[alert\] (\d+#0: )?reload failed: still serving the previous configuration$/m);
  const refused = (r: ReloadFigures): void => {
    assert.equal(r.failed, 1);
    assert.equal(r.ok, 0);
    assert.equal(r.lastOk, 0);
    assert.ok(r.lastTime / 1000 >= Math.floor(before), `last reload time ${r.lastTime}`);
    assert.equal(r.recent.length, 1, 'the dashboard lists the failed reload (not "No reloads yet")');
    assert.equal(r.recent[0]!.ok, false);
    assert.equal(r.recent[0]!.file, conf);
    assert.match(r.recent[0]!.problems.join('\n'), /unknown directive "retrun"/);
  };
  await askEachWorker(port, '/metrics', 2, (body, pid) => {
    const m = metrics(body);
    assert.deepEqual({ ok: m.ok, failed: m.failed, success: m.success }, { ok: 0, failed: 1, success: 0 }, `worker ${pid}`);
    assert.ok(m.time >= Math.floor(before), `worker ${pid}: last reload time ${m.time}`);
  });
  await askEachWorker(port, '/status', 2, (body) => refused((JSON.parse(body) as { reloads: ReloadFigures }).reloads));
  // The dashboard draws its reload list from its event stream's snapshots.
  await askEachWorker(port, '/dashboard?events', 2, (body) => {
    const data = /^data: (.*)$/m.exec(body);
    assert.ok(data, body);
    refused((JSON.parse(data[1]!) as { reloads: ReloadFigures }).reloads);
  });
  assert.equal((await httpGet(port, '/')).body, 'v1');

  // An applied one counts once (not once per worker) and makes the last reload a success.
  dir.write('sluice.conf', config('location / { return 200 "v3"; }'));
  process.kill(proxy.pid, 'SIGHUP');
  await proxy.output('stderr', /^sluice: \[notice\] reconfigured: /m);
  await askEachWorker(port, '/metrics', 2, (body, pid) => {
    const m = metrics(body);
    assert.deepEqual({ ok: m.ok, failed: m.failed, success: m.success, drained: m.drained }, { ok: 1, failed: 1, success: 1, drained: 0 }, `worker ${pid}`);
  });
  await askEachWorker(port, '/status', 2, (body) => {
    const r = (JSON.parse(body) as { reloads: ReloadFigures }).reloads;
    assert.deepEqual(r.recent.map((x) => x.ok), [true, false], 'newest first, each reload once');
    assert.equal(r.lastOk, 1);
  });
  assert.equal((await httpGet(port, '/')).body, 'v3');
  assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
});

test('the pid file appears only once the port accepts connections (worker_processes 2 and 1)', async (t) => {
  // A script that waits for the pid file and connects at once must get through: nginx binds its
  // listeners before it writes the pid file.
  for (const [round, workers] of [2, 2, 2, 1].entries()) {
    const dir = tempDir(t);
    const port = await unusedPort();
    const pidFile = dir.join('sluice.pid');
    const conf = dir.write('sluice.conf', `worker_processes ${workers};
pid ${pidFile};
events {}
http { server { listen 127.0.0.1:${port}; location / { return 200 "up"; } } }
`);
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    await waitFor(() => existsSync(pidFile) || proxy.done, { timeoutMs: CHILD_MS, intervalMs: 1, what: 'the pid file' });
    assert.equal(proxy.done, false, proxy.stderr);
    assert.equal(readFileSync(pidFile, 'utf8'), `${proxy.pid}\n`, 'the pid file is whole when it appears');
    const res = await httpGet(port, '/').catch((e: unknown) => ({ status: 0, body: (e as Error).message }));
    assert.deepEqual(res, { status: 200, body: 'up' }, `round ${round + 1} (worker_processes ${workers}): a request right after the pid file appeared`);
    assert.deepEqual(await proxy.stop('SIGTERM'), { code: 0, signal: null });
    assert.equal(existsSync(pidFile), false, 'the pid file is removed at exit');
  }
});

test('worker_processes 2: a pid file that cannot be written stops the start-up with nginx\'s message', async (t) => {
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `worker_processes 2;
pid missing/dir/sluice.pid;
events {}
http { server { listen 127.0.0.1:0; location / { return 200 "$pid"; } } }
`);
  const res = await runCli(['-c', conf], dir.path);
  assert.equal(res.stderr, `sluice: [emerg] open() "${dir.join('missing', 'dir', 'sluice.pid')}" failed (2: No such file or directory)\n`);
  assert.equal(res.code, 1);
});
