import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';
import { tempDir } from './temp.js';

let fromHook = '';

test('tempDir writes files under os.tmpdir() and cleanup removes them', () => {
  const dir = tempDir();
  try {
    assert.ok(dir.path.startsWith(tmpdir()));
    const file = dir.write('conf/sluice.conf', 'events {}\n');
    assert.equal(file, dir.join('conf', 'sluice.conf'));
    assert.equal(readFileSync(file, 'utf8'), 'events {}\n');
  } finally {
    dir.cleanup();
  }
  assert.equal(existsSync(dir.path), false);
  dir.cleanup();
});

test('tempDir(t) is removed by t.after', (t) => {
  fromHook = tempDir(t).path;
  assert.ok(existsSync(fromHook));
});

test('...and is gone once that test finished', () => {
  assert.notEqual(fromHook, '');
  assert.equal(existsSync(fromHook), false);
});
