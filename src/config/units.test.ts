import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration, parseNumber, parseSize } from './units.js';

test('durations: nginx units, combinations, bare seconds', () => {
  const cases: [string, number | null][] = [
    ['60', 60_000],
    ['0', 0],
    ['500ms', 500],
    ['7200s', 7_200_000],
    ['1m', 60_000],
    ['1h30m', 5_400_000],
    ['1m 30s', 90_000],
    ['1m30', 90_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1w', 604_800_000],
    ['1M', 2_592_000_000],
    ['1y', 31_536_000_000],
    ['1h1m1s1ms', 3_661_001],
    ['', null],
    ['abc', null],
    ['1.5s', null],
    ['-1s', null],
    ['s', null],
    ['30m1h', null],
    ['1s1s', null],
    ['10x', null],
    ['1s5', null],
    ['1 2', null],
  ];
  for (const [text, want] of cases) assert.equal(parseDuration(text), want, text);
});

test('durations in seconds mode reject ms', () => {
  assert.equal(parseDuration('10', true), 10_000);
  assert.equal(parseDuration('30s', true), 30_000);
  assert.equal(parseDuration('100ms', true), null);
});

test('sizes: bytes, k, m, g in either case', () => {
  const cases: [string, number | null][] = [
    ['512', 512], ['8k', 8192], ['8K', 8192], ['1m', 1_048_576], ['1M', 1_048_576], ['2g', 2_147_483_648],
    ['2G', 2_147_483_648], ['1kb', null], ['k', null], ['1.5m', null], ['', null],
  ];
  for (const [text, want] of cases) assert.equal(parseSize(text), want, text);
});

test('numbers are digits only', () => {
  assert.equal(parseNumber('42'), 42);
  assert.equal(parseNumber('0'), 0);
  assert.equal(parseNumber('-1'), null);
  assert.equal(parseNumber('1e3'), null);
  assert.equal(parseNumber(''), null);
});
