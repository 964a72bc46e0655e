import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloseCode, isValidCloseCode, parseClosePayload } from './close-codes.js';

test('isValidCloseCode follows RFC 6455 section 7.4', () => {
  for (const code of [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999]) {
    assert.equal(isValidCloseCode(code), true, String(code));
  }
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 1000.5]) {
    assert.equal(isValidCloseCode(code), false, String(code));
  }
});

test('parseClosePayload decodes empty, code-only and code+reason bodies', () => {
  assert.deepEqual(parseClosePayload(Buffer.alloc(0)), { kind: 'close', code: CloseCode.NO_STATUS, reason: '' });
  assert.deepEqual(parseClosePayload(Buffer.from([0x03, 0xe9])), { kind: 'close', code: 1001, reason: '' });
  const body = Buffer.concat([Buffer.from([0x0f, 0xa0]), Buffer.from('au revoir é')]);
  assert.deepEqual(parseClosePayload(body), { kind: 'close', code: 4000, reason: 'au revoir é' });
});

test('parseClosePayload reports bad bodies as error values', () => {
  const short = parseClosePayload(Buffer.from([0x03]));
  assert.equal(short.kind === 'error' && short.closeCode, 1002);
  const reserved = parseClosePayload(Buffer.from([0x03, 0xed])); // 1005
  assert.equal(reserved.kind === 'error' && reserved.closeCode, 1002);
  const badUtf8 = parseClosePayload(Buffer.from([0x03, 0xe8, 0xff]));
  assert.equal(badUtf8.kind === 'error' && badUtf8.closeCode, 1007);
});
