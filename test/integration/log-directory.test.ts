/**
 * A log file in a directory that does not exist fails the configuration, as in nginx (issue 18):
 * `sluice -t` says nginx's `open() "..." failed (2: No such file or directory)`, a start fails
 * the same way, and Sluice never creates the directory (nginx does not).
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import { ConfigError, startProxy } from '../../src/index.js';
import { CliProcess, okLines, runCli } from '../helpers/cli-process.js';
import { tempDir } from '../helpers/temp.js';

const HINT = (dir: string): string => `  hint: the directory "${dir}" must exist: Sluice does not create it (nginx neither); a relative path starts at the prefix\n`;

test('-t fails for an access_log or error_log whose directory is missing, with nginx\'s open() message; nothing is created', async (t) => {
  const dir = tempDir(t);
  const conf = dir.write('sluice.conf', `error_log nope/error.log;
events {}
http {
  access_log /dev/stdout;
  server {
    listen 127.0.0.1:0;
    access_log logs/access.log;
    location / { error_log ${dir.join('sluice.conf')}/x.log; return 200; }
  }
}
`);
  const res = await runCli(['-t', '-c', conf], dir.path);
  assert.equal(res.stderr, [
    `sluice: [emerg] open() "${dir.join('nope', 'error.log')}" failed (2: No such file or directory) in ${conf}:1\n${HINT(dir.join('nope'))}`,
    `sluice: [emerg] open() "${dir.join('logs', 'access.log')}" failed (2: No such file or directory) in ${conf}:7\n${HINT(dir.join('logs'))}`,
    `sluice: [emerg] open() "${conf}/x.log" failed (20: Not a directory) in ${conf}:8\n${HINT(conf)}`,
    `sluice: configuration file ${conf} test failed\n`,
  ].join(''));
  assert.equal(res.code, 1);
  assert.equal(existsSync(dir.join('nope')), false);
  assert.equal(existsSync(dir.join('logs')), false);

  // Running it fails the same way, before anything listens, and creates nothing either.
  const run = new CliProcess(t, ['-c', conf], dir.path);
  assert.deepEqual(await run.wait(), { code: 1, signal: null });
  assert.match(run.stderr, /\[emerg\] open\(\) ".*\/nope\/error\.log" failed \(2: No such file or directory\)/);
  assert.equal(existsSync(dir.join('nope')), false);
  assert.equal(existsSync(dir.join('logs')), false);
  assert.equal(existsSync(dir.join('sluice.pid')), false);

  // With the directories there, the same config passes and the files are made when it runs.
  dir.write('nope/.keep', '');
  dir.write('logs/.keep', '');
  const ok = await runCli(['-t', '-c', dir.write('good.conf', 'error_log nope/error.log;\nevents {}\nhttp { access_log logs/access.log; server { listen 127.0.0.1:0; } }\n')], dir.path);
  assert.equal(ok.stderr, okLines(dir.join('good.conf')));
});

test('the library refuses the same config with a ConfigError', async (t) => {
  const dir = tempDir(t);
  await assert.rejects(
    startProxy({ text: 'events {}\nhttp { server { listen 127.0.0.1:0; access_log missing/access.log; } }\n', prefix: dir.path }),
    (e: unknown) => e instanceof ConfigError && e.problems.length === 1
      && e.problems[0]!.message === `open() "${dir.join('missing', 'access.log')}" failed (2: No such file or directory)`,
  );
  assert.equal(existsSync(dir.join('missing')), false);
});
