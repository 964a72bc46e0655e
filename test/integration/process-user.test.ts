// `user USER [GROUP]` as nginx does it: the worker processes run as the user once the listen
// sockets exist, while the primary keeps root to bind what a reload adds and to read keys only
// root may read; log files are handed to the user. Without root the directive is ignored with
// nginx's warning. Unknown users and groups are `-t` errors in nginx's words.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { formatProblem, loadConfig } from '../../src/config/load.js';
import { testCerts } from '../helpers/certs.js';
import { CliProcess, MAIN, httpGet } from '../helpers/cli-process.js';
import { conf } from '../helpers/config-text.js';
import { privilegedPort } from '../helpers/ports.js';
import { tempDir } from '../helpers/temp.js';
import { tlsGet } from '../helpers/tls-client.js';
import { withTimeout } from '../helpers/wait.js';

const root = process.geteuid?.() === 0;

/** "Uid:" or "Gid:" of a process: its real, effective, saved and file-system ids. */
function ids(pid: number, which: 'Uid' | 'Gid'): number[] {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith(`${which}:`))!;
  return line.split(/\s+/).slice(1, 5).map(Number);
}

test('as root: workers run as "user nobody nogroup" after binding; the primary keeps root for a reload that adds a port below 1024 and re-reads a key only root can read', async (t) => {
  if (!root) {
    // Without root the directive changes nothing: the worker runs as this user.
    const plain = tempDir(t);
    const file = plain.write('sluice.conf', conf('server { listen 127.0.0.1:0; location / { return 200 "$pid"; } }', 'user nobody nogroup;\nworker_processes 2;'));
    const child = new CliProcess(t, ['-c', file], plain.path);
    const worker = Number((await httpGet(await child.port(), '/')).body);
    assert.equal(ids(worker, 'Uid')[1], process.geteuid?.());
    await child.stop('SIGTERM');
    return;
  }
  const certs = await testCerts();
  const dir = tempDir(t);
  chmodSync(dir.path, 0o755);
  const cert = dir.join('site.crt');
  const key = dir.join('site.key');
  copyFileSync(certs.localhost.certFile, cert);
  copyFileSync(certs.localhost.keyFile, key);
  chmodSync(key, 0o600);
  const port80 = (await privilegedPort())!;
  // The log directory exists (Sluice creates none); the primary makes the files and hands them to nobody.
  dir.write('logs/.keep', '');
  const server = (extra: string): string => `access_log ${dir.join('logs', 'access.log')};
    server { listen 127.0.0.1:0 ssl; ssl_certificate ${cert}; ssl_certificate_key ${key}; location / { return 200 "$pid"; } }
    ${extra}`;
  const file = dir.write('sluice.conf', conf(server(''), `user nobody nogroup;\npid ${dir.join('sluice.pid')};\nerror_log ${dir.join('logs', 'error.log')} info;`));
  const child = new CliProcess(t, ['-c', file], dir.path);
  const port = await child.port();
  const worker = Number((await tlsGet(port, '/', { servername: 'localhost' })).text);
  assert.notEqual(worker, child.pid);
  assert.deepEqual(ids(worker, 'Uid'), [65534, 65534, 65534, 65534]);
  assert.deepEqual(ids(worker, 'Gid'), [65534, 65534, 65534, 65534]);
  assert.deepEqual(ids(child.pid, 'Uid'), [0, 0, 0, 0]);
  // The worker's log files are the user's (it reopens them on USR1 without root).
  assert.equal(statSync(dir.join('logs', 'access.log')).uid, 65534);
  assert.equal(statSync(dir.join('logs', 'error.log')).uid, 65534);

  writeFileSync(file, conf(server(`server { listen 127.0.0.1:${port80}; location / { return 200 "low $pid"; } }`),
    `user nobody nogroup;\npid ${dir.join('sluice.pid')};\nerror_log ${dir.join('logs', 'error.log')} info;`));
  child.child.kill('SIGHUP');
  await child.output('stderr', /reconfigured: 1 listener\(s\) opened/);
  assert.equal((await httpGet(port80, '/')).body, `low ${worker}`);
  // The key was read again (by the primary) and the worker, still the same unprivileged process, serves it.
  assert.equal((await tlsGet(port, '/', { servername: 'localhost' })).text, String(worker));
  // The worker, no longer root, reads "user" as the primary did: no "ignored" warning.
  assert.doesNotMatch(readFileSync(dir.join('logs', 'error.log'), 'utf8'), /"user" directive makes sense only/);
  await child.stop('SIGTERM');
});

test('not root: "user" is ignored with nginx\'s warning, at -t and at start', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir.path, 0o777);
  const file = dir.write('sluice.conf', conf('server { listen 127.0.0.1:0; location / { return 200 "ok"; } }', 'user www-data;'));
  chmodSync(file, 0o644);
  const warning = `[warn] the "user" directive makes sense only if the master process runs with super-user privileges, ignored in ${file}:1`;
  // As root, run the check as nobody; otherwise this process is not root already.
  const child = spawn(process.execPath, [MAIN, '-t', '-c', file], { cwd: dir.path, stdio: ['ignore', 'pipe', 'pipe'], ...(root ? { uid: 65534, gid: 65534 } : {}) });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => void (stderr += d));
  const code = await withTimeout(new Promise<number | null>((resolve) => child.once('close', resolve)), 20_000, 'sluice -t');
  assert.equal(code, 0, stderr);
  assert.ok(stderr.includes(`sluice: ${warning}\n`), stderr);
  if (!root) {
    const r = await loadConfig({ file });
    assert.equal(r.ok && r.config.user, null);
  }
});

test('-t: an unknown user or group is refused with getpwnam()/getgrnam() failed (as root; otherwise only the warning)', async () => {
  const bad = async (line: string): Promise<string[]> => {
    const r = await loadConfig({ text: `${line}\nevents {}` });
    return r.ok ? [] : r.problems.map((p) => formatProblem(p));
  };
  if (!root) {
    const r = await loadConfig({ text: 'user no-such-user-here;\nevents {}' });
    assert.equal(r.ok && r.config.warnings.length, 1);
    return;
  }
  assert.deepEqual(await bad('user no-such-user-here;'), ['[emerg] getpwnam("no-such-user-here") failed in <inline>:1']);
  // nginx: without a group, the group named like the user ("nobody" has none on Debian).
  assert.deepEqual(await bad('user nobody no-such-group;'), ['[emerg] getgrnam("no-such-group") failed in <inline>:1']);
  const ok = await loadConfig({ text: 'user www-data;\nevents {}' });
  assert.deepEqual(ok.ok ? ok.config.user : null, { user: 'www-data', group: 'www-data', uid: 33, gid: 33 });
});
