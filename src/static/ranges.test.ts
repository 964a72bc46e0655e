import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileDefaults } from '../config/files.js';
import type { FileSettings } from '../config/types.js';
import { ifRangeHolds, parseRanges } from './ranges.js';

const FILES = fileDefaults('/');
const limited = (maxRanges: number): FileSettings => ({ ...FILES, maxRanges });

test('ngx_http_range_parse: ranges, suffixes, open ends, and what makes nginx send the whole file or 416', () => {
  assert.deepEqual(parseRanges('bytes=0-4', 10, FILES), { kind: 'ranges', ranges: [{ start: 0, end: 5 }] });
  assert.deepEqual(parseRanges('bytes=-3', 10, FILES), { kind: 'ranges', ranges: [{ start: 7, end: 10 }] });
  assert.deepEqual(parseRanges('bytes=-30', 10, FILES), { kind: 'ranges', ranges: [{ start: 0, end: 10 }] });
  assert.deepEqual(parseRanges('bytes=8-', 10, FILES), { kind: 'ranges', ranges: [{ start: 8, end: 10 }] });
  assert.deepEqual(parseRanges('BYTES= 1 - 2 , 4-4', 10, FILES), { kind: 'ranges', ranges: [{ start: 1, end: 3 }, { start: 4, end: 5 }] });
  assert.deepEqual(parseRanges('bytes=10-20', 10, FILES), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRanges('bytes=a-', 10, FILES), { kind: 'unsatisfiable' });
  assert.deepEqual(parseRanges('bytes=99999999999999999999-', 10, FILES), { kind: 'unsatisfiable' });
  // Malformed in the ways nginx ignores, or more than the file: the whole file.
  assert.deepEqual(parseRanges(undefined, 10, FILES), { kind: 'whole' });
  assert.deepEqual(parseRanges('bytes=', 10, FILES), { kind: 'whole' });
  assert.deepEqual(parseRanges('lines=1-2', 10, FILES), { kind: 'whole' });
  assert.deepEqual(parseRanges('bytes=0-', 0, FILES), { kind: 'whole' });
  assert.deepEqual(parseRanges('bytes=0-8,1-9', 10, FILES), { kind: 'whole' });
  // With max_ranges unset, parts that cost more than the file plus 4 KiB: the whole file.
  const many = `bytes=${Array.from({ length: 30 }, (_, i) => `${i}-${i}`).join(',')}`;
  assert.equal(parseRanges(many, 1000, FILES).kind, 'whole');
  assert.equal(parseRanges(many, 1000, limited(100)).kind, 'ranges');
  assert.equal(parseRanges(many, 10_000, FILES).kind, 'ranges');
  assert.equal(parseRanges('bytes=0-0,2-2', 10, limited(1)).kind, 'whole');
  assert.equal(parseRanges('bytes=0-0', 10, limited(0)).kind, 'whole');
});

test('If-Range: a quoted value is an entity tag compared exactly, anything else a date equal to Last-Modified', () => {
  assert.equal(ifRangeHolds(undefined, null, -1), true);
  assert.equal(ifRangeHolds('"a-1"', '"a-1"', 5), true);
  assert.equal(ifRangeHolds('W/"a-1"', '"a-1"', 5), false);
  assert.equal(ifRangeHolds('"a-1"', null, 5), false);
  assert.equal(ifRangeHolds('Thu, 01 Jan 1970 00:00:05 GMT', '"a-1"', 5), true);
  assert.equal(ifRangeHolds('Thu, 01 Jan 1970 00:00:06 GMT', '"a-1"', 5), false);
});
