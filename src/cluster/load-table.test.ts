import assert from 'node:assert/strict';
import { fstatSync, readSync, writeSync } from 'node:fs';
import { test } from 'node:test';
import { LOAD_TABLE_CHILD_FD, LOAD_TABLE_SLOTS, LoadTable } from './load-table.js';

test('the load table: a slot of 32 bytes per worker index, unlinked at once, cleared when its worker exits', (t) => {
  const table = LoadTable.open();
  t.after(() => table.close());
  const st = fstatSync(table.fd);
  assert.equal(st.size, LOAD_TABLE_SLOTS * 32);
  assert.equal(st.nlink, 0, 'no file is left behind');
  assert.equal(table.envFor(0), `${LOAD_TABLE_CHILD_FD}:0`);
  assert.equal(table.envFor(LOAD_TABLE_SLOTS - 1), `${LOAD_TABLE_CHILD_FD}:${LOAD_TABLE_SLOTS - 1}`);
  assert.equal(table.envFor(LOAD_TABLE_SLOTS), null, 'a worker index beyond the table has no slot');
  // Two workers' slots written (as their addons do), one cleared: the other keeps its figures.
  writeSync(table.fd, Buffer.alloc(64, 7), 0, 64, 32);
  table.clear(1);
  const back = Buffer.alloc(96);
  readSync(table.fd, back, 0, 96, 0);
  assert.deepEqual(back.subarray(32, 64), Buffer.alloc(32));
  assert.deepEqual(back.subarray(64, 96), Buffer.alloc(32, 7));
  assert.deepEqual(back.subarray(0, 32), Buffer.alloc(32));
});

test('the load table: where no file can be made, opening throws (the primary warns and the workers accept without it)', () => {
  assert.throws(() => LoadTable.open('/nonexistent-dir-for-sluice'), /ENOENT/);
});
