/**
 * The process groups tests leave behind: written down by trackGroup, killed by the runner's sweep
 * (scripts/process-groups.mjs) after each pass.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { ROOT } from './cli-process.js';
import { GROUPS_ENV, trackGroup } from './process-groups.js';
import { tempDir } from './temp.js';
import { waitFor, withTimeout } from './wait.js';

const { killLeftGroups } = (await import(pathToFileURL(join(ROOT, 'scripts', 'process-groups.mjs')).href)) as { killLeftGroups: (dir: string) => number };

test('a group left running is killed by the sweep, with its members; one that ended is not counted', async (t) => {
  const dir = tempDir(t);
  const groups = dir.join('groups');
  mkdirSync(groups);
  const before = process.env[GROUPS_ENV];
  process.env[GROUPS_ENV] = groups;
  t.after(() => {
    if (before === undefined) delete process.env[GROUPS_ENV];
    else process.env[GROUPS_ENV] = before;
  });
  // A leader with a member of its group (as a primary and its worker), left running.
  // Node alone (npm test runs with only node, npm and sh on the PATH): a leader that starts a
  // member of its group, and both wait forever.
  const forever = 'setInterval(() => {}, 1e9)';
  const leader = `require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(forever)}], { stdio: 'ignore' }); ${forever}`;
  const left = spawn(process.execPath, ['-e', leader], { stdio: 'ignore', detached: true });
  trackGroup(left);
  const leftExit = new Promise<NodeJS.Signals | null>((resolve) => left.once('exit', (_code, signal) => resolve(signal)));
  // One that ends by itself, as a test's child should.
  const ended = spawn(process.execPath, ['-e', ''], { stdio: 'ignore', detached: true });
  trackGroup(ended);
  await new Promise((resolve) => ended.once('exit', resolve));
  assert.deepEqual(readdirSync(groups).sort(), [String(left.pid), String(ended.pid)].sort());

  assert.equal(killLeftGroups(groups), 1);
  assert.equal(await withTimeout(leftExit, 5_000, 'the left group to die'), 'SIGKILL');
  // The member went with its leader (once reaped: a zombie still counts as a member).
  const gone = (): boolean => {
    try {
      process.kill(-left.pid!, 0);
      return false;
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ESRCH';
    }
  };
  await waitFor(gone, { what: 'every member of the group to be gone' });
  assert.equal(killLeftGroups(groups), 0, 'the directory is gone, nothing more to kill');
});
