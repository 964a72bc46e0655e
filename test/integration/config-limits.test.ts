/**
 * Config input that used to hang or crash `sluice -t` and reload (issue 11, items 13 and 14):
 * files that include their own folder by mask, and blocks nested thousands deep. Each now either
 * works or gives `[emerg] MESSAGE in FILE:LINE` with a hint, from -t and from a reload, and a
 * failed reload keeps serving the old configuration.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError } from '../../src/index.js';
import { MAX_BLOCK_DEPTH } from '../../src/config/include.js';
import { CliProcess, httpGet, runCli } from '../helpers/cli-process.js';
import { startTestProxy } from '../helpers/proxy.js';
import { tempDir } from '../helpers/temp.js';

/** `depth` locations nested in one another; the innermost answers `body`. */
function nested(depth: number, body: string, head: readonly string[] = []): string {
  return [...head, 'events {}', 'http {', '  server {', '    listen 127.0.0.1:0;',
    ...Array<string>(depth).fill('location / {'), `return 200 "${body}";`, '}'.repeat(depth), '  }', '}', ''].join('\n');
}

/** The line of the first block past MAX_BLOCK_DEPTH in `nested()` text with `head` lines before it. */
function tooDeepLine(headLines: number): number {
  return headLines + 4 + MAX_BLOCK_DEPTH - 2 + 1;
}

/** N files in c/ that each include c/*.conf, and a main file that includes them too. */
function globCycle(dir: ReturnType<typeof tempDir>, n: number): { main: string; files: string[] } {
  const files: string[] = [];
  for (let i = 1; i <= n; i++) files.push(dir.write(`c/f${i}.conf`, 'include c/*.conf;\n'));
  const main = dir.write('sluice.conf', 'events {}\nhttp {\n  include c/*.conf;\n  server { listen 127.0.0.1:0; return 200 "ok"; }\n}\n');
  return { main, files };
}

function assertNoStackTrace(stderr: string): void {
  assert.doesNotMatch(stderr, /RangeError|Maximum call stack|^\s+at /m, stderr.slice(0, 2000));
}

test('-t: 3,000 and 5,000 nested locations pass; 100,000 fail with FILE:LINE and a hint, no stack trace', async (t) => {
  const dir = tempDir(t);
  for (const depth of [3_000, 5_000]) {
    const conf = dir.write(`nested${depth}.conf`, nested(depth, 'deep'));
    const res = await runCli(['-t', '-c', conf], dir.path);
    assert.deepEqual([res.code, res.stderr.split('\n')], [0, [
      `sluice: the configuration file ${conf} syntax is ok`, `sluice: configuration file ${conf} test is successful`, '',
    ]]);
  }
  const conf = dir.write('nested100000.conf', nested(100_000, 'deep'));
  const res = await runCli(['-t', '-c', conf], dir.path);
  assertNoStackTrace(res.stderr);
  const lines = res.stderr.split('\n');
  assert.deepEqual([res.code, lines[0], lines[2], lines.length], [
    1, `sluice: [emerg] too many nested blocks (more than ${MAX_BLOCK_DEPTH}) in ${conf}:${tooDeepLine(0)}`,
    `sluice: configuration file ${conf} test failed`, 4,
  ]);
  assert.match(lines[1]!, /^ {2}hint: Sluice reads at most \d+ blocks inside one another; nest fewer locations/);
});

test('-t: eight files that include their own folder fail at once, one message per include line', async (t) => {
  const dir = tempDir(t);
  const { main, files } = globCycle(dir, 8);
  const res = await runCli(['-t', '-c', main], dir.path);
  const emerg = res.stderr.split('\n').filter((l) => l.startsWith('sluice: [emerg]'));
  assert.deepEqual(emerg, files.map((f) => `sluice: [emerg] recursive include of "${files[0]}" in ${f}:1`));
  assert.equal(res.stderr.split('\n').length, 2 * files.length + 2);
  assert.equal(res.code, 1);
});

for (const workers of [1, 2]) {
  test(`reload (worker_processes ${workers}): into 100,000 nested blocks keeps the old config and logs FILE:LINE; into 5,000 it routes the innermost`, async (t) => {
    const dir = tempDir(t);
    const head = [`worker_processes ${workers};`];
    const conf = dir.write('sluice.conf', nested(1, 'v1', head));
    const proxy = new CliProcess(t, ['-c', conf], dir.path);
    const port = await proxy.port();
    assert.equal((await httpGet(port, '/x')).body, 'v1');

    dir.write('sluice.conf', nested(100_000, 'never', head));
    process.kill(proxy.pid, 'SIGHUP');
    await proxy.output('stderr', /\[alert\] (\d+#0: )?reload failed: still serving the previous configuration$/m);
    // The default error log (stderr) has the problem, once, in its own format.
    assert.match(proxy.stderr, new RegExp(`\\[emerg\\] \\d+#0: too many nested blocks \\(more than ${MAX_BLOCK_DEPTH}\\) in ${conf}:${tooDeepLine(head.length)}$`, 'm'));
    assertNoStackTrace(proxy.stderr);
    assert.equal((await httpGet(port, '/x')).body, 'v1', 'the old config still serves');

    dir.write('sluice.conf', nested(5_000, 'deep', head));
    process.kill(proxy.pid, 'SIGHUP');
    await proxy.output('stderr', /^sluice: \[notice\] reconfigured: /m);
    for (let i = 0; i < 2 * workers; i++) assert.deepEqual(await httpGet(port, `/a/b${i}`), { status: 200, body: 'deep' });
    assertNoStackTrace(proxy.stderr);
  });
}

test('reload into files that include their own folder fails at once with every include line, and keeps the old config', async (t) => {
  const dir = tempDir(t);
  const proxy = await startTestProxy('events {}\nhttp { server { listen 127.0.0.1:0; return 200 "old"; } }\n', { t, prefix: dir.path });
  const { files } = globCycle(dir, 8);
  const text = `events {}\nhttp {\n  include c/*.conf;\n  server { listen 127.0.0.1:${proxy.port}; return 200 "new"; }\n}\n`;
  const err = await proxy.handle.reload({ text }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof ConfigError, String(err));
  assert.deepEqual(err.problems.map((p) => `${p.message} in ${p.file}:${p.line}`),
    files.map((f) => `recursive include of "${files[0]}" in ${f}:1`));
  await proxy.waitForErrorLine('reload failed: still serving the previous configuration');
  assert.equal(proxy.errorLines.filter((l) => l.includes('recursive include of')).length, files.length);
  assert.equal(await (await fetch(proxy.url('/'))).text(), 'old');
});
