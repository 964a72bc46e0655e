import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHttpTime } from '../proxy/answer/http-date.js';

test('the three formats of RFC 9110 5.6.7 as nginx reads them; anything else is -1', () => {
  const t = Date.UTC(1994, 10, 6, 8, 49, 37) / 1000;
  assert.equal(parseHttpTime('Sun, 06 Nov 1994 08:49:37 GMT'), t);
  assert.equal(parseHttpTime('Sunday, 06-Nov-94 08:49:37 GMT'), t);
  assert.equal(parseHttpTime('Sun Nov  6 08:49:37 1994'), t);
  assert.equal(parseHttpTime('Sun Nov 16 08:49:37 1994'), t + 10 * 86400);
  // Two-digit years below 70 are 20xx; a leap day only in a leap year.
  assert.equal(parseHttpTime('Thursday, 01-Jan-30 00:00:00 GMT'), Date.UTC(2030, 0, 1) / 1000);
  assert.equal(parseHttpTime('Thu, 29 Feb 2024 00:00:00 GMT'), Date.UTC(2024, 1, 29) / 1000);
  for (const bad of ['', 'yesterday', 'Thu, 29 Feb 2023 00:00:00 GMT', 'Sun, 06 Nov 1994 24:00:00 GMT', 'Sun, 32 Nov 1994 08:49:37 GMT', 'Sun, 06 Xyz 1994 08:49:37 GMT', '1994-11-06T08:49:37Z']) {
    assert.equal(parseHttpTime(bad), -1, bad);
  }
});
