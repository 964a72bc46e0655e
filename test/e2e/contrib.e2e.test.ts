/**
 * The files in contrib/ and man/ with the programs that read them (issue 18): the systemd unit
 * passes `systemd-analyze verify` (its Documentation= man page found), the man page renders with
 * `man -l` without a groff warning, and the logrotate rule rotates a running Sluice's access log
 * (the postrotate USR1 makes it write to the new file). End-to-end: they need systemd, man-db and
 * logrotate (.ci/run installs them). The Dockerfile and compose file need a Docker daemon and are
 * not run anywhere (test/integration/packaging.test.ts checks them as text).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { CliProcess, MAIN, ROOT, httpGet } from '../helpers/cli-process.js';
import { fileLines, waitForFileLine } from '../helpers/log-files.js';
import { requireProgram } from '../helpers/programs.js';
import { tempDir } from '../helpers/temp.js';

const UNIT = readFileSync(join(ROOT, 'contrib/systemd/sluice.service'), 'utf8');
const MAN_PAGE = readFileSync(join(ROOT, 'man/sluice.1'), 'utf8');

test('systemd-analyze verify passes the unit, its man:sluice(1) documentation included', (t) => {
  const analyze = requireProgram('systemd-analyze', 'systemd');
  requireProgram('man', 'man-db');
  const dir = tempDir(t);
  // verify checks that ExecStart's program exists: the built command line stands in for
  // /usr/local/bin/sluice; and that `man sluice.1` finds the page: MANPATH has it.
  const command = dir.write('bin/sluice', `#!/bin/sh\nexec "${process.execPath}" "${MAIN}" "$@"\n`);
  chmodSync(command, 0o755);
  dir.write('man/man1/sluice.1', MAN_PAGE);
  assert.ok(UNIT.includes('/usr/local/bin/sluice '));
  const unit = dir.write('sluice.service', UNIT.replaceAll('/usr/local/bin/sluice ', `${command} `));
  const r = spawnSync(analyze, ['verify', '--man=yes', unit], { encoding: 'utf8', env: { ...process.env, MANPATH: dir.join('man') }, timeout: 60_000 });
  assert.deepEqual([r.status, r.stderr, r.stdout], [0, '', '']);
  // And it does fail without the page (so that the check above means something).
  const without = spawnSync(analyze, ['verify', '--man=yes', unit], { encoding: 'utf8', env: { ...process.env, MANPATH: dir.join('bin') }, timeout: 60_000 });
  assert.match(without.stderr, /man sluice\(1\)/);
});

test('man -l renders man/sluice.1 without a warning: name, synopsis, options, signals, files', () => {
  const man = requireProgram('man', 'man-db');
  const r = spawnSync(man, ['--warnings=all', '-l', join(ROOT, 'man/sluice.1')], {
    encoding: 'utf8', env: { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat', LANG: 'C.UTF-8' }, timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'groff has nothing to warn about');
  const text = r.stdout.replace(/.\x08/g, '');
  assert.match(text, /^SLUICE\(1\) +User Commands +SLUICE\(1\)$/m);
  assert.match(text, /^NAME\n {7}sluice - a WebSocket-aware reverse proxy that runs nginx configurations$/m);
  for (const heading of ['SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'COMMANDS', 'SIGNALS', 'FILES', 'ENVIRONMENT', 'EXIT STATUS', 'EXAMPLES', 'SEE ALSO']) {
    assert.match(text, new RegExp(`^${heading}$`, 'm'), heading);
  }
  // Options as typed (hyphens, not Unicode dashes), and every option of the usage text.
  for (const option of ['-c FILE', '-p PREFIX', '-g DIRECTIVES', '-t', '-T', '-q', '-s SIGNAL', '--wait', 'PREFIX/sluice.pid']) {
    assert.match(text, new RegExp(`^ {7}${option.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'm'), option);
  }
});

test('the logrotate rule rotates a running Sluice\'s access log, and its USR1 makes Sluice write to the new file', async (t) => {
  const logrotate = requireProgram('logrotate', 'logrotate');
  const dir = tempDir(t);
  dir.write('logs/.keep', '');
  dir.write('run/.keep', '');
  const conf = dir.write('sluice.conf', `events {}
http {
  log_format uri '$request_uri';
  access_log logs/access.log uri;
  server { listen 127.0.0.1:0; location / { return 200 "ok"; } }
}
`);
  // As the unit runs it: the pid file set with -g (here in the test's directory, not /run/sluice).
  const pidFile = dir.join('run', 'sluice.pid');
  const proxy = new CliProcess(t, ['-c', conf, '-g', `pid ${pidFile};`], dir.path);
  const port = await proxy.port();
  await httpGet(port, '/before');
  const log = dir.join('logs', 'access.log');
  await waitForFileLine(log, '/before');

  // The rule with this test's paths: its log directory, its pid file; the new file's owner is
  // the old one's (the rule's "sluice adm" needs that user).
  const rule = readFileSync(join(ROOT, 'contrib/logrotate/sluice'), 'utf8');
  assert.ok(rule.includes('/var/log/sluice/*.log') && rule.includes('/run/sluice/sluice.pid') && rule.includes('create 0640 sluice adm'));
  const local = dir.write('logrotate.conf', rule
    .replaceAll('/var/log/sluice/', `${dir.join('logs')}/`)
    .replaceAll('/run/sluice/sluice.pid', pidFile)
    .replace('create 0640 sluice adm', 'create 0640'));
  const r = spawnSync(logrotate, ['--force', '--state', dir.join('logrotate.state'), local], { encoding: 'utf8', timeout: 60_000 });
  assert.deepEqual([r.status, r.stderr], [0, '']);
  // The postrotate signal arrived (the wording of the notice is the error log's business).
  await proxy.output('stderr', /SIGUSR1/);

  await httpGet(port, '/after');
  await waitForFileLine(log, '/after');
  assert.deepEqual(fileLines(log), ['/after'], 'the new file has only what came after the rotation');
  assert.deepEqual(fileLines(`${log}.1`), ['/before'], 'the rotated file (compressed at the next rotation: delaycompress)');
});
